package delivery

import (
	"context"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// A conversation's ratchet tree is stored as snapshots and the changes of
// each epoch since (store.Store.SnapshotTree). Commits store only their
// changes; after each one, the snapshot loop asks the store to snapshot
// the conversation's tree when one is due, off the commit's path: at
// 10,000 members a snapshot reads, encodes and writes about 26 MB, once
// every ~1,400 commits.

// snapshotQueue bounds the conversations waiting for the snapshot loop; a
// commit that finds it full leaves its conversation to the next commit
// (what is due stays due).
const snapshotQueue = 256

// snapshotTimeout bounds one snapshot.
const snapshotTimeout = 5 * time.Minute

// snapshotSoon queues conversation id for the snapshot loop. It never
// blocks.
func (s *Service) snapshotSoon(id store.ConversationID) {
	select {
	case s.snapshots <- id:
	default:
	}
}

// snapshotLoop runs the store's SnapshotTree for the conversations that
// commits queue, one at a time, until ctx ends.
func (s *Service) snapshotLoop(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case id := <-s.snapshots:
			s.snapshotTree(ctx, id)
		}
	}
}

// snapshotTree snapshots conversation id's tree if one is due, and logs
// and counts what happened.
func (s *Service) snapshotTree(ctx context.Context, id store.ConversationID) {
	ctx, cancel := context.WithTimeout(ctx, snapshotTimeout)
	defer cancel()
	start := time.Now()
	wrote, err := s.st.SnapshotTree(ctx, id)
	switch {
	case err != nil && ctx.Err() == nil:
		s.metrics.treeSnapshots.WithLabelValues("failed").Inc()
		s.log.Warn("tree snapshot failed; the next commit tries again", "conversation", id, "err", err)
	case wrote:
		s.metrics.treeSnapshots.WithLabelValues("stored").Inc()
		s.log.Debug("tree snapshot stored", "conversation", id, "took", time.Since(start))
	}
}
