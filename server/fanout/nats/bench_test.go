package nats

import (
	"slices"
	"testing"
	"time"

	"github.com/parley-chat/parley/server/delivery"
)

// chanSub forwards events to a channel without blocking.
type chanSub chan delivery.Event

func (c chanSub) Notify(e delivery.Event) {
	select {
	case c <- e:
	default:
	}
}

// BenchmarkRemoteLatency measures one wake-up from Publish on node A to
// Notify on node B, one at a time (ns/op is the round of one event).
func BenchmarkRemoteLatency(b *testing.B) {
	u, p := testURL(b), testPrefix()
	na, nb := newNode(b, u, p, "a", nil), newNode(b, u, p, "b", nil)
	ch := make(chanSub, 1)
	nb.Subscribe(conv(1), ch)
	e := delivery.Event{Topic: conv(1)}
	var lat []time.Duration
	b.ReportAllocs()
	for b.Loop() {
		start := time.Now()
		na.Publish(e)
		<-ch
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
	b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
}

// BenchmarkRemoteThroughput publishes wake-ups for distinct topics on node
// A as fast as the caller can and waits until node B received them all,
// or until what was not received is accounted for by A's drops.
func BenchmarkRemoteThroughput(b *testing.B) {
	u, p := testURL(b), testPrefix()
	na, nb := newNode(b, u, p, "a", nil), newNode(b, u, p, "b", nil)
	b.ReportAllocs()
	start := time.Now()
	i := int64(0)
	for b.Loop() {
		i++
		na.Publish(delivery.Event{Topic: conv(i)})
	}
	// Wait until every event is accounted for (received by B, dropped by
	// A's queue or by B's client) or nothing moved for a second.
	last, lastChange := uint64(0), time.Now()
	for {
		sa, sb := na.Stats(), nb.Stats()
		n := sb.Received + sb.DroppedReceived + sa.DroppedWakeups + sa.Coalesced
		if n >= uint64(i) || time.Since(lastChange) > time.Second {
			break
		}
		if n != last {
			last, lastChange = n, time.Now()
		}
		time.Sleep(time.Millisecond)
	}
	el := lastChange.Sub(start)
	sa, sb := na.Stats(), nb.Stats()
	b.ReportMetric(float64(sb.Received)/el.Seconds(), "received/s")
	b.ReportMetric(float64(sa.DroppedWakeups)/float64(i), "dropped/op")
	b.ReportMetric(float64(sa.Published)/el.Seconds(), "published/s")
	b.ReportMetric(float64(sb.DroppedReceived)/float64(i), "slow-consumer-drops/op")
}

// BenchmarkPublishLocal measures Publish with one local subscriber while
// connected: the cost the writer pays.
func BenchmarkPublishLocal(b *testing.B) {
	u, p := testURL(b), testPrefix()
	na := newNode(b, u, p, "a", nil)
	ch := make(chanSub, 1)
	na.Subscribe(conv(1), ch)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i++
		na.Publish(delivery.Event{Topic: conv(i % 1024)})
	}
}

// BenchmarkHubPublish is the in-process Hub for comparison.
func BenchmarkHubPublish(b *testing.B) {
	h := delivery.NewHub()
	ch := make(chanSub, 1)
	h.Subscribe(conv(1), ch)
	b.ReportAllocs()
	i := int64(0)
	for b.Loop() {
		i++
		h.Publish(delivery.Event{Topic: conv(i % 1024)})
	}
}
