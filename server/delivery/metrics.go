package delivery

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the service's Prometheus collectors.
type metrics struct {
	appended      prometheus.Counter
	refused       *prometheus.CounterVec
	batchSize     prometheus.Histogram
	batchTime     prometheus.Histogram
	ackBatchSize  prometheus.Histogram
	ackBatchTime  prometheus.Histogram
	handshakes    *prometheus.CounterVec
	commitBytes   prometheus.Histogram
	treeLoads     *prometheus.CounterVec // a conversation's group loaded from the store, by how
	treeSnapshots *prometheus.CounterVec // ratchet-tree snapshots, by result
	claims        prometheus.Counter
	ephemeral     *prometheus.CounterVec // ephemeral messages received, by result
	ephemeralOut  *prometheus.CounterVec // ephemeral messages for a connection, queued or dropped
}

func newMetrics(reg prometheus.Registerer, s *Service) (*metrics, error) {
	m := &metrics{
		appended: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_entries_appended_total", Help: "Application entries appended durably."}),
		refused:  prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_entries_refused_total", Help: "Application submissions refused, by code."}, []string{"code"}),
		batchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_append_batch_entries", Help: "Entries per group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 2, 10)}),
		batchTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_append_batch_seconds", Help: "Duration of a group-commit transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		ackBatchSize: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_ack_batch_cursors", Help: "Cursors per acknowledgement transaction.",
			Buckets: prometheus.ExponentialBuckets(1, 4, 8)}),
		ackBatchTime: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_ack_batch_seconds", Help: "Duration of an acknowledgement transaction.",
			Buckets: prometheus.ExponentialBuckets(0.0001, 2, 14)}),
		handshakes: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_handshakes_total", Help: "Handshake messages, by result."}, []string{"result"}),
		commitBytes: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "parley_commit_stored_bytes",
			Help:    "Bytes an accepted commit stores: the commit, its GroupInfo, the follower state, the changed tree nodes and the Welcomes.",
			Buckets: prometheus.ExponentialBuckets(4096, 2, 10)}),
		treeLoads: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_follower_tree_loads_total",
			Help: "Handshakes whose conversation's group was not in this node's memory at its epoch, by how it was loaded: whole (the epoch's whole tree), changes (the nodes changed since an earlier epoch held in memory: another node accepted the commits between; one that does not give the stored state is followed by a whole load)."}, []string{"how"}),
		treeSnapshots: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_tree_snapshots_total",
			Help: "Snapshots of conversations' ratchet trees, which the store reads trees from with the changes since, by result: stored, or failed (retried after the next commit)."}, []string{"result"}),
		claims: prometheus.NewCounter(prometheus.CounterOpts{Name: "parley_key_package_claims_total", Help: "KeyPackage claims served."}),
		ephemeral: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ephemeral_total",
			Help: "Ephemeral messages (typing indicators) received from devices, by result: relayed, or the code of the refusal (dropped)."}, []string{"result"}),
		ephemeralOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ephemeral_deliveries_total",
			Help: "Ephemeral messages for this node's connections, by result: queued, or dropped (the sender, not a member, not subscribed, queue full)."}, []string{"result"}),
	}
	if reg == nil {
		return m, nil
	}
	for _, c := range []prometheus.Collector{m.appended, m.refused, m.batchSize, m.batchTime, m.ackBatchSize, m.ackBatchTime, m.handshakes, m.commitBytes, m.treeLoads, m.treeSnapshots, m.claims, m.ephemeral, m.ephemeralOut,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_connections", Help: "Attached device connections."}, func() float64 { return float64(s.conns.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_submit_queue", Help: "Submissions waiting for the writer."}, func() float64 { return float64(len(s.submit)) }),
	} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("delivery: register metrics: %v", err)
		}
	}
	return m, nil
}
