package sqlstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/parley-chat/parley/server/store"
)

// A conversation's ratchet tree is stored as a log: snapshots of the whole
// tree (tree_snapshots, a row per snapshot, its encoding in
// tree_snapshot_parts of about 1 MiB) and, for each epoch, the nodes its
// commit changed (tree_changes, a row per epoch; blank nodes included).
// The tree of epoch E is the latest snapshot at or before E with the
// changes of the epochs after it up to E applied.
//
// A commit appends its changes as one value. SnapshotTree, which the
// delivery service runs after commits outside them, writes a snapshot of
// the current tree when the changes since the last snapshot add up to its
// size: so what a commit writes grows with the nodes it changed (a
// snapshot costs at most as much again, spread over the commits before
// it), and reading a tree reads at most about twice its size. Nothing is
// rewritten or deleted row by row: the rows that no epoch from the tree
// floor (conversations.tree_floor, the oldest epoch whose tree can still
// be read) on needs, the snapshots before the latest one at or before the
// floor and the changes up to it, are deleted whole. (Versions kept per
// node, as before, cost a 10,000-member conversation 357 KiB per commit on
// SQLite, most of it rewriting old pages to delete superseded versions:
// see docs/performance.md.)
//
// conversations.tree_snapshot is the epoch of the latest snapshot,
// tree_snapshot_bytes its size and tree_log_bytes the size of the changes
// stored since.

// insertSnapshot stores nodes (blank ones left out) as the tree of
// conversation id's epoch and makes it the latest snapshot, all in tx.
func insertSnapshot(ctx context.Context, tx Querier, id store.ConversationID, epoch uint64, nodes []store.TreeNode) error {
	data, err := encodeNodes(nonBlank(nodes))
	if err != nil {
		return err
	}
	parts := splitNodes(data)
	for i, p := range parts {
		if err := insertSnapshotPart(ctx, tx, id, epoch, i, p); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET tree_snapshot = $1, tree_snapshot_bytes = $2, tree_log_bytes = 0 WHERE id = $3`, epoch, len(data), id); err != nil {
		return fmt.Errorf("store the tree of conversation %d at epoch %d: %w", id, epoch, err)
	}
	return insertSnapshotHeader(ctx, tx, id, epoch, len(parts))
}

// insertSnapshotPart stores part i of the snapshot of conversation id's
// epoch.
func insertSnapshotPart(ctx context.Context, tx Querier, id store.ConversationID, epoch uint64, i int, data []byte) error {
	if _, err := tx.Exec(ctx, `INSERT INTO tree_snapshot_parts (conversation_id, epoch, part, data) VALUES ($1, $2, $3, $4)`, id, epoch, i, data); err != nil {
		return fmt.Errorf("store part %d of the tree of conversation %d at epoch %d: %w", i, id, epoch, err)
	}
	return nil
}

// insertSnapshotHeader makes the snapshot of conversation id's epoch,
// whose parts are stored, readable.
func insertSnapshotHeader(ctx context.Context, tx Querier, id store.ConversationID, epoch uint64, parts int) error {
	if _, err := tx.Exec(ctx, `INSERT INTO tree_snapshots (conversation_id, epoch, parts) VALUES ($1, $2, $3)`, id, epoch, parts); err != nil {
		return fmt.Errorf("store the tree of conversation %d at epoch %d: %w", id, epoch, err)
	}
	return nil
}

// storeTreeChanges stores the tree nodes commit c changed as the new
// epoch's changes and deletes the rows that only epochs before the tree
// floor (c's, which the backend's AdvanceEpoch stored) need. Snapshots
// are SnapshotTree's, outside the commit.
func (s *Store) storeTreeChanges(ctx context.Context, tx Querier, c store.Commit) error {
	next := c.Epoch + 1
	data, err := encodeNodes(c.Tree)
	if err != nil {
		return err
	}
	if err := insertTreeChanges(ctx, tx, c.Conversation, next, data); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET tree_log_bytes = tree_log_bytes + $1 WHERE id = $2`, len(data), c.Conversation); err != nil {
		return fmt.Errorf("store the tree changes of conversation %d at epoch %d: %w", c.Conversation, next, err)
	}
	return pruneTree(ctx, tx, c.Conversation, c.TreeFloor())
}

// insertTreeChanges stores data, encoded nodes, as the tree changes of
// conversation id's epoch.
func insertTreeChanges(ctx context.Context, tx Querier, id store.ConversationID, epoch uint64, data []byte) error {
	if _, err := tx.Exec(ctx, `INSERT INTO tree_changes (conversation_id, epoch, data) VALUES ($1, $2, $3)`, id, epoch, data); err != nil {
		return fmt.Errorf("store the tree changes of conversation %d at epoch %d: %w", id, epoch, err)
	}
	return nil
}

// SnapshotTree implements store.Store. The tree is read and encoded
// outside a transaction (the tree of an epoch never changes); only
// storing it takes the writer.
func (s *Store) SnapshotTree(ctx context.Context, id store.ConversationID) (bool, error) {
	wrote, err := s.snapshotTree(ctx, id)
	if err != nil {
		return false, s.errorf("snapshot the tree of conversation %d: %w", id, err)
	}
	return wrote, nil
}

func (s *Store) snapshotTree(ctx context.Context, id store.ConversationID) (bool, error) {
	q := s.b.Read()
	var epoch, snap, snapBytes, logBytes uint64
	var legacy int64
	if err := q.QueryRow(ctx, `SELECT epoch, tree_snapshot, tree_snapshot_bytes, tree_log_bytes, legacy_tree FROM conversations WHERE id = $1`, id).
		Scan(&epoch, &snap, &snapBytes, &logBytes, &legacy); err != nil {
		return false, notFound(err)
	}
	if legacy != 0 || epoch <= snap || logBytes < snapBytes {
		return false, nil
	}
	nodes, err := readTree(ctx, q, id, epoch)
	if errors.Is(err, store.ErrGone) {
		return false, nil // commits since pruned what was read: a later call snapshots
	}
	if err != nil {
		return false, err
	}
	data, err := encodeNodes(nodes)
	if err != nil {
		return false, err
	}
	// Each part in a transaction of its own, so that the store's writer
	// is never held for long; parts left by an attempt that did not
	// finish are replaced.
	parts := splitNodes(data)
	for i, p := range parts {
		err := s.b.Write(ctx, func(tx Querier) error {
			if i == 0 {
				if _, err := tx.Exec(ctx, `DELETE FROM tree_snapshot_parts WHERE conversation_id = $1 AND epoch = $2`, id, epoch); err != nil {
					return err
				}
			}
			return insertSnapshotPart(ctx, tx, id, epoch, i, p)
		})
		if err != nil {
			return false, err
		}
	}
	wrote := false
	err = s.b.Write(ctx, func(tx Querier) error {
		wrote = false
		var stored int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM tree_snapshot_parts WHERE conversation_id = $1 AND epoch = $2`, id, epoch).Scan(&stored); err != nil {
			return err
		}
		if stored != int64(len(parts)) {
			// Another node's attempt at the same epoch replaced parts:
			// the next commit tries again.
			return fmt.Errorf("%d of the %d parts of epoch %d's snapshot stored", stored, len(parts), epoch)
		}
		// The changes after the snapshot stay to be counted: commits
		// may have come since the tree was read.
		n, err := tx.Exec(ctx, `UPDATE conversations SET tree_snapshot = $2, tree_snapshot_bytes = $3,
			tree_log_bytes = (SELECT coalesce(sum(length(data)), 0) FROM tree_changes WHERE conversation_id = $1 AND epoch > $2)
			WHERE id = $1 AND tree_snapshot < $2`, id, epoch, len(data))
		if err != nil || n == 0 {
			return err // n == 0: another node stored a later snapshot
		}
		wrote = true
		return insertSnapshotHeader(ctx, tx, id, epoch, len(parts))
	})
	if err != nil {
		return false, fmt.Errorf("store the snapshot of epoch %d: %w", epoch, err)
	}
	return wrote, nil
}

// pruneTree deletes the rows of conversation id's tree log that no epoch
// from floor on needs.
func pruneTree(ctx context.Context, tx Querier, id store.ConversationID, floor uint64) error {
	var keep *uint64
	if err := tx.QueryRow(ctx, `SELECT max(epoch) FROM tree_snapshots WHERE conversation_id = $1 AND epoch <= $2`, id, floor).Scan(&keep); err != nil {
		return fmt.Errorf("prune the tree of conversation %d: %w", id, err)
	}
	if keep == nil {
		return nil
	}
	for _, q := range []string{
		`DELETE FROM tree_snapshots WHERE conversation_id = $1 AND epoch < $2`,
		// Parts of unfinished snapshots too.
		`DELETE FROM tree_snapshot_parts WHERE conversation_id = $1 AND epoch < $2`,
		`DELETE FROM tree_changes WHERE conversation_id = $1 AND epoch <= $2`,
	} {
		if _, err := tx.Exec(ctx, q, id, *keep); err != nil {
			return fmt.Errorf("prune the tree of conversation %d: %w", id, err)
		}
	}
	return nil
}

// readTree reads the tree of conversation id's epoch from its log, with
// no check that the epoch is kept (treesKept).
func readTree(ctx context.Context, q Querier, id store.ConversationID, epoch uint64) ([]store.TreeNode, error) {
	var snap uint64
	var parts int
	err := q.QueryRow(ctx, `SELECT epoch, parts FROM tree_snapshots WHERE conversation_id = $1 AND epoch <= $2 ORDER BY epoch DESC LIMIT 1`, id, epoch).Scan(&snap, &parts)
	if isNoRows(err) {
		return nil, fmt.Errorf("no stored tree at or before epoch %d: %w", epoch, store.ErrGone)
	}
	if err != nil {
		return nil, err
	}
	var base []store.TreeNode
	read := 0
	err = q.Query(ctx, `SELECT data FROM tree_snapshot_parts WHERE conversation_id = $1 AND epoch = $2 ORDER BY part`, []any{id, snap}, func(r Row) error {
		var data []byte
		if err := r.Scan(&data); err != nil {
			return err
		}
		nodes, err := decodeNodes(data)
		if err != nil {
			return fmt.Errorf("snapshot of epoch %d, part %d: %w", snap, read, err)
		}
		if len(base) > 0 && len(nodes) > 0 && nodes[0].Index <= base[len(base)-1].Index {
			return fmt.Errorf("snapshot of epoch %d, part %d: node %d after node %d", snap, read, nodes[0].Index, base[len(base)-1].Index)
		}
		base = append(base, nodes...)
		read++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if read != parts {
		return nil, fmt.Errorf("snapshot of epoch %d: %d of %d parts stored", snap, read, parts)
	}
	changes, err := readChanges(ctx, q, id, snap, epoch)
	if err != nil {
		return nil, err
	}
	return applyChanges(base, changes), nil
}

// readChanges reads and folds the tree changes of conversation id's
// epochs after since up to epoch.
func readChanges(ctx context.Context, q Querier, id store.ConversationID, since, epoch uint64) ([]store.TreeNode, error) {
	if since == epoch {
		return nil, nil
	}
	folded := nodeChanges{}
	want := since + 1
	err := q.Query(ctx, `SELECT epoch, data FROM tree_changes WHERE conversation_id = $1 AND epoch > $2 AND epoch <= $3 ORDER BY epoch`, []any{id, since, epoch}, func(r Row) error {
		var e uint64
		var data []byte
		if err := r.Scan(&e, &data); err != nil {
			return err
		}
		if e != want {
			return fmt.Errorf("tree changes of epoch %d missing: %w", want, store.ErrGone)
		}
		if err := folded.add(data); err != nil {
			return fmt.Errorf("tree changes of epoch %d: %w", e, err)
		}
		want++
		return nil
	})
	if err != nil {
		return nil, err
	}
	if want != epoch+1 {
		return nil, fmt.Errorf("tree changes of epoch %d missing: %w", want, store.ErrGone)
	}
	return folded.sorted(), nil
}

// Tree implements store.Store.
func (s *Store) Tree(ctx context.Context, id store.ConversationID, epoch uint64) ([]store.TreeNode, error) {
	out, err := s.tree(ctx, id, epoch)
	if err != nil {
		return nil, s.errorf("tree of conversation %d at epoch %d: %w", id, epoch, err)
	}
	return out, nil
}

func (s *Store) tree(ctx context.Context, id store.ConversationID, epoch uint64) ([]store.TreeNode, error) {
	q := s.b.Read()
	out, err := readTree(ctx, q, id, epoch)
	// Checked after the read, and first: an epoch not kept, or not yet
	// reached, explains rows the read did not find.
	if err := treesKept(ctx, q, id, epoch, epoch); err != nil {
		return nil, err
	}
	return out, err
}

// treesKept checks that the trees of the epochs from oldest to newest
// can be read: newest is not after the conversation's epoch (ErrInvalid)
// and oldest not before its tree floor (ErrGone). It is checked after
// the nodes were read, so that a commit whose pruning the read saw has
// moved the floor this reads.
func treesKept(ctx context.Context, q Querier, id store.ConversationID, oldest, newest uint64) error {
	var cur, floor uint64
	var legacy int64
	if err := q.QueryRow(ctx, `SELECT epoch, tree_floor, legacy_tree FROM conversations WHERE id = $1`, id).Scan(&cur, &floor, &legacy); err != nil {
		return notFound(err)
	}
	switch {
	case newest > cur:
		return fmt.Errorf("the conversation is at epoch %d: %w", cur, store.ErrInvalid)
	case legacy != 0 || oldest < floor:
		return fmt.Errorf("trees are kept from epoch %d: %w", floor, store.ErrGone)
	}
	return nil
}

// TreeChanges implements store.Store: the changes of the epochs after
// since up to epoch, folded. Pruning (see storeTreeChanges) deletes only
// changes up to a snapshot at or before the tree floor, so none after
// since while the tree of since is kept.
func (s *Store) TreeChanges(ctx context.Context, id store.ConversationID, since, epoch uint64) ([]store.TreeNode, error) {
	out, err := s.treeChanges(ctx, id, since, epoch)
	if err != nil {
		return nil, s.errorf("tree changes of conversation %d from epoch %d to %d: %w", id, since, epoch, err)
	}
	return out, nil
}

func (s *Store) treeChanges(ctx context.Context, id store.ConversationID, since, epoch uint64) ([]store.TreeNode, error) {
	if since > epoch {
		return nil, fmt.Errorf("epoch %d is before %d: %w", epoch, since, store.ErrInvalid)
	}
	q := s.b.Read()
	out, err := readChanges(ctx, q, id, since, epoch)
	if err := treesKept(ctx, q, id, since, epoch); err != nil {
		return nil, err
	}
	return out, err
}

// MoveTree implements store.Store.
func (s *Store) MoveTree(ctx context.Context, id store.ConversationID, epoch uint64, state []byte, nodes []store.TreeNode) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		n, err := tx.Exec(ctx, `UPDATE conversations SET follower_state = $1, legacy_tree = 0, tree_floor = $2 WHERE id = $3 AND epoch = $2 AND legacy_tree = 1`,
			NonNil(state), epoch, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrStaleState
		}
		return insertSnapshot(ctx, tx, id, epoch, nodes)
	})
	if err != nil {
		return s.errorf("move the tree of conversation %d at epoch %d into the tree log: %w", id, epoch, err)
	}
	return nil
}

// LegacyTrees implements store.Store.
func (s *Store) LegacyTrees(ctx context.Context) ([]store.ConversationID, error) {
	out, err := collect(ctx, s.b.Read(), func(r Row) (store.ConversationID, error) {
		var id store.ConversationID
		return id, r.Scan(&id)
	}, `SELECT id FROM conversations WHERE legacy_tree = 1 ORDER BY id`)
	if err != nil {
		return nil, s.errorf("conversations with a whole stored tree: %v", err)
	}
	return out, nil
}

// ConvertTreeNodes moves the trees of the conversations stored before
// the tree log (tree_converted = 0) from their versions per node
// (tree_nodes) into the log: the tree of the floor becomes a snapshot
// and the versions after it each epoch's changes. Once none is left it
// drops tree_nodes. Each conversation moves in a transaction of its own;
// when several nodes of a cluster open the store at once, each
// conversation is moved by one of them.
func (s *Store) ConvertTreeNodes(ctx context.Context) error {
	ids, err := collect(ctx, s.b.Read(), func(r Row) (store.ConversationID, error) {
		var id store.ConversationID
		return id, r.Scan(&id)
	}, `SELECT id FROM conversations WHERE tree_converted = 0 ORDER BY id`)
	if err != nil {
		return s.errorf("conversations to move into the tree log: %v", err)
	}
	for _, id := range ids {
		if err := s.b.Write(ctx, func(tx Querier) error { return convertTreeNodes(ctx, tx, id) }); err != nil {
			return s.errorf("move the tree of conversation %d into the tree log: %w", id, err)
		}
	}
	err = s.b.Write(ctx, func(tx Querier) error {
		var left int64
		if err := tx.QueryRow(ctx, `SELECT count(*) FROM conversations WHERE tree_converted = 0`).Scan(&left); err != nil || left > 0 {
			return err
		}
		_, err := tx.Exec(ctx, `DROP TABLE IF EXISTS tree_nodes`)
		return err
	})
	if err != nil {
		return s.errorf("drop tree_nodes: %v", err)
	}
	return nil
}

// convertTreeNodes moves one conversation's tree into the log.
func convertTreeNodes(ctx context.Context, tx Querier, id store.ConversationID) error {
	var floor, epoch uint64
	// Claimed by the update: a node of a cluster moving it at the same
	// time waits, then finds it moved.
	switch err := tx.QueryRow(ctx, `UPDATE conversations SET tree_converted = 1 WHERE id = $1 AND tree_converted = 0 RETURNING tree_floor, epoch`, id).Scan(&floor, &epoch); {
	case isNoRows(err):
		return nil // moved by another node
	case err != nil:
		return err
	}
	base := nodeChanges{}
	later := map[uint64][]store.TreeNode{}
	err := tx.Query(ctx, `SELECT node, epoch, data FROM tree_nodes WHERE conversation_id = $1 ORDER BY epoch, node`, []any{id}, func(r Row) error {
		var node int64
		var e uint64
		var data []byte
		if err := r.Scan(&node, &e, &data); err != nil {
			return err
		}
		if len(data) == 0 {
			data = nil
		}
		if e <= floor {
			base[uint32(node)] = data
		} else {
			later[e] = append(later[e], store.TreeNode{Index: uint32(node), Data: data})
		}
		return nil
	})
	if err != nil {
		return err
	}
	if err := insertSnapshot(ctx, tx, id, floor, base.sorted()); err != nil {
		return err
	}
	var logBytes int
	for e := floor + 1; e <= epoch; e++ {
		data, err := encodeNodes(later[e])
		if err != nil {
			return err
		}
		if err := insertTreeChanges(ctx, tx, id, e, data); err != nil {
			return err
		}
		logBytes += len(data)
	}
	if _, err := tx.Exec(ctx, `UPDATE conversations SET tree_log_bytes = $1 WHERE id = $2`, logBytes, id); err != nil {
		return err
	}
	_, err = tx.Exec(ctx, `DELETE FROM tree_nodes WHERE conversation_id = $1`, id)
	return err
}
