package nats

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"
)

// register adds the notifier's collectors to reg. They read the counters
// of [Notifier.Stats].
func (n *Notifier) register(reg prometheus.Registerer) error {
	counter := func(name, help string, labels prometheus.Labels, f func(Stats) uint64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help, ConstLabels: labels},
			func() float64 { return float64(f(n.Stats())) })
	}
	dropped := func(reason string, f func(Stats) uint64) prometheus.Collector {
		return counter("parley_fanout_dropped_total", "Events the NATS fan-out dropped, by reason.", prometheus.Labels{"reason": reason}, f)
	}
	for _, c := range []prometheus.Collector{
		counter("parley_fanout_published_total", "Records published to NATS.", nil, func(s Stats) uint64 { return s.Published }),
		counter("parley_fanout_received_total", "Remote events dispatched to local subscribers.", nil, func(s Stats) uint64 { return s.Received }),
		counter("parley_fanout_coalesced_total", "Wake-ups merged into one already waiting for NATS.", nil, func(s Stats) uint64 { return s.Coalesced }),
		dropped("wakeup", func(s Stats) uint64 { return s.DroppedWakeups }),
		dropped("typing", func(s Stats) uint64 { return s.DroppedTyping }),
		dropped("received", func(s Stats) uint64 { return s.DroppedReceived }),
		dropped("unroutable", func(s Stats) uint64 { return s.Unroutable }),
		dropped("invalid", func(s Stats) uint64 { return s.Invalid }),
		counter("parley_fanout_resync_requests_sent_total", "Resync requests published to the other nodes.", nil, func(s Stats) uint64 { return s.ResyncRequestsSent }),
		counter("parley_fanout_resync_requests_received_total", "Resync requests received from other nodes.", nil, func(s Stats) uint64 { return s.ResyncRequestsReceived }),
		counter("parley_fanout_resyncs_total", "Passes that woke every local subscriber.", nil, func(s Stats) uint64 { return s.Resyncs }),
		counter("parley_fanout_reconnects_total", "Reconnections to NATS.", nil, func(s Stats) uint64 { return s.Reconnects }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "parley_fanout_connected", Help: "1 when connected to NATS."}, func() float64 {
			if n.Healthy() == nil {
				return 1
			}
			return 0
		}),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("fanout/nats: register metrics: %v", err)
		}
	}
	return nil
}
