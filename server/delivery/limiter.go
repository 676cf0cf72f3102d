package delivery

import (
	"sync"
	"time"

	"golang.org/x/time/rate"
)

// Limiter is a set of token-bucket rate limiters keyed by a string (an IP
// address, a user, a (claimer, target) pair). Idle keys are forgotten, so
// its memory is bounded by the keys active within a few minutes.
type Limiter struct {
	limit rate.Limit
	burst int
	now   func() time.Time

	mu      sync.Mutex
	buckets map[string]*bucket
	swept   time.Time
}

type bucket struct {
	l    *rate.Limiter
	seen time.Time
}

// NewLimiter returns a Limiter allowing perSecond events per key with the
// burst. now is the clock (nil: time.Now).
func NewLimiter(perSecond float64, burst int, now func() time.Time) *Limiter {
	if now == nil {
		now = time.Now
	}
	return &Limiter{limit: rate.Limit(perSecond), burst: burst, now: now, buckets: make(map[string]*bucket)}
}

// Allow reports whether one event for key may happen now, and if not, how
// long to wait before retrying.
func (l *Limiter) Allow(key string) (bool, time.Duration) {
	return l.AllowN(key, 1)
}

// Burst returns the most events one key may have at once: AllowN of more
// is never allowed.
func (l *Limiter) Burst() int { return l.burst }

// AllowN reports whether n events for key may happen now (all or none),
// and if not, how long to wait before retrying. n above Burst is never
// allowed (the wait is then a second).
func (l *Limiter) AllowN(key string, n int) (bool, time.Duration) {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.swept) > time.Minute {
		idle := time.Duration(float64(l.burst)/float64(l.limit)*float64(time.Second)) + time.Minute
		for k, b := range l.buckets {
			if now.Sub(b.seen) > idle {
				delete(l.buckets, k)
			}
		}
		l.swept = now
	}
	b := l.buckets[key]
	if b == nil {
		b = &bucket{l: rate.NewLimiter(l.limit, l.burst)}
		l.buckets[key] = b
	}
	b.seen = now
	r := b.l.ReserveN(now, n)
	if !r.OK() {
		return false, time.Second
	}
	if d := r.DelayFrom(now); d > 0 {
		r.CancelAt(now)
		return false, d
	}
	return true, 0
}
