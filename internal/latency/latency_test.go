package latency

import (
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var s Samples
	if got := s.Percentile(50); got != 0 {
		t.Errorf("no samples: p50 = %v, want 0", got)
	}
	for i := 100; i >= 1; i-- { // unsorted on purpose
		s.Add(time.Duration(i) * time.Millisecond)
	}
	for _, c := range []struct{ p, want float64 }{{50, 50}, {99, 99}, {100, 100}, {0, 1}, {1, 1}} {
		if got := s.Percentile(c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if s[0] != 100 {
		t.Error("Percentile sorted the samples in place")
	}
	if got := Millis(1500 * time.Microsecond); got != 1.5 {
		t.Errorf("Millis(1.5ms) = %v", got)
	}
}
