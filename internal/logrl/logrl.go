// Package logrl rate-limits repeated log records, so that a client that
// can make the server log (a malformed frame, a failing request, a store
// fault it keeps triggering) cannot flood the log.
//
// [NewHandler] wraps a slog.Handler: records are grouped by level and
// message (their attributes, which name devices and conversations, are
// ignored, so a caller with many devices cannot vary them), and at most
// Burst records of one group pass per Interval. The others are dropped and
// counted; once the interval is over, the count is written as one summary
// record, at the same level, with the message [SuppressedMsg] and the
// attributes "repeated" (the suppressed message), "suppressed" (the
// count) and "interval". A summary is written when the next record of any group
// arrives after the interval ended, so the last one of a flood waits for
// the next log record.
//
// Handlers derived with WithAttrs and WithGroup share the limits of the
// handler they derive from; the summary goes through the handler that
// dropped the group's last record.
package logrl

import (
	"context"
	"log/slog"
	"sync"
	"time"
)

// SuppressedMsg is the message of the summary records.
const SuppressedMsg = "log records suppressed"

// maxGroups bounds the groups tracked at once: messages are constants of
// the program, so this is never reached in practice; beyond it, new
// groups of a level share one.
const maxGroups = 4096

// overflowMsg is the message key of the shared group beyond maxGroups.
const overflowMsg = "(other messages)"

// Config configures the limits.
type Config struct {
	// Burst is how many records of one level and message pass per
	// Interval; zero passes every record (no limit).
	Burst int
	// Interval is the length of a window.
	Interval time.Duration
}

// key identifies a group of identical records.
type key struct {
	level slog.Level
	msg   string
}

// window counts one group's records in the current interval.
type window struct {
	start   time.Time
	n       int
	dropped int
	h       slog.Handler // h dropped the last record: it writes the summary
}

// state is shared by a handler and the handlers derived from it.
type state struct {
	cfg Config
	now func() time.Time

	mu     sync.Mutex
	groups map[key]*window
	swept  time.Time
}

// handler is the rate-limiting slog.Handler.
type handler struct {
	inner slog.Handler
	st    *state
}

// NewHandler returns h limited by cfg. now is the clock (nil: time.Now).
// A cfg with Burst 0 or a non-positive Interval returns h itself.
func NewHandler(h slog.Handler, cfg Config, now func() time.Time) slog.Handler {
	if cfg.Burst <= 0 || cfg.Interval <= 0 {
		return h
	}
	if now == nil {
		now = time.Now
	}
	return &handler{inner: h, st: &state{cfg: cfg, now: now, groups: make(map[key]*window)}}
}

// Enabled reports whether the wrapped handler handles the level.
func (h *handler) Enabled(ctx context.Context, l slog.Level) bool { return h.inner.Enabled(ctx, l) }

// WithAttrs returns a handler with the attributes that shares h's limits.
func (h *handler) WithAttrs(as []slog.Attr) slog.Handler {
	return &handler{inner: h.inner.WithAttrs(as), st: h.st}
}

// WithGroup returns a handler with the group that shares h's limits.
func (h *handler) WithGroup(name string) slog.Handler {
	return &handler{inner: h.inner.WithGroup(name), st: h.st}
}

// summary is a pending summary record.
type summary struct {
	h     slog.Handler
	level slog.Level
	msg   string
	n     int
}

// Handle passes the record on unless its group used its burst in the
// current interval; it first writes the summaries of ended intervals.
func (h *handler) Handle(ctx context.Context, r slog.Record) error {
	st := h.st
	now := st.now()
	st.mu.Lock()
	sums := st.sweep(now)
	k := key{r.Level, r.Message}
	w := st.groups[k]
	if w == nil && len(st.groups) >= maxGroups {
		k.msg = overflowMsg
		w = st.groups[k]
	}
	if w != nil && now.Sub(w.start) >= st.cfg.Interval {
		if w.dropped > 0 {
			sums = append(sums, summary{w.h, k.level, k.msg, w.dropped})
		}
		w = nil
	}
	if w == nil {
		w = &window{start: now}
		st.groups[k] = w
	}
	w.n++
	pass := w.n <= st.cfg.Burst
	if !pass {
		w.dropped++
		w.h = h.inner
	}
	st.mu.Unlock()

	for _, s := range sums {
		sr := slog.NewRecord(now, s.level, SuppressedMsg, 0)
		sr.AddAttrs(slog.String("repeated", s.msg), slog.Int("suppressed", s.n), slog.Duration("interval", st.cfg.Interval))
		s.h.Handle(ctx, sr) // a failed summary must not hide the record
	}
	if !pass {
		return nil
	}
	return h.inner.Handle(ctx, r)
}

// sweep, at most once per interval, forgets the groups whose interval
// ended and returns their summaries. st.mu must be held.
func (st *state) sweep(now time.Time) []summary {
	if now.Sub(st.swept) < st.cfg.Interval {
		return nil
	}
	st.swept = now
	var sums []summary
	for k, w := range st.groups {
		if now.Sub(w.start) < st.cfg.Interval {
			continue
		}
		if w.dropped > 0 {
			sums = append(sums, summary{w.h, k.level, k.msg, w.dropped})
		}
		delete(st.groups, k)
	}
	return sums
}
