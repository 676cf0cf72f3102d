// Package latency summarises latency samples for the benchmarks that
// report percentiles (p50-ms, p99-ms) with testing.B.ReportMetric.
package latency

import (
	"slices"
	"testing"
	"time"
)

// Samples are latencies in milliseconds.
type Samples []float64

// Add records a latency.
func (s *Samples) Add(d time.Duration) { *s = append(*s, Millis(d)) }

// Millis converts a duration to (fractional) milliseconds.
func Millis(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Percentile returns the p-th percentile (nearest rank) of s; 0 for no
// samples.
func (s Samples) Percentile(p float64) float64 {
	if len(s) == 0 {
		return 0
	}
	sorted := slices.Clone(s)
	slices.Sort(sorted)
	k := int(p/100*float64(len(sorted))+0.999999) - 1
	return sorted[min(max(k, 0), len(sorted)-1)]
}

// Report reports the 50th and 99th percentiles of s as prefix+"p50-ms"
// and prefix+"p99-ms".
func (s Samples) Report(b *testing.B, prefix string) {
	b.ReportMetric(s.Percentile(50), prefix+"p50-ms")
	b.ReportMetric(s.Percentile(99), prefix+"p99-ms")
}
