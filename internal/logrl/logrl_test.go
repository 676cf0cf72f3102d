package logrl_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/internal/logrl"
)

// capture records what reaches it, with the attributes of WithAttrs.
type capture struct {
	mu    *sync.Mutex
	recs  *[]rec
	attrs []slog.Attr
}

type rec struct {
	level slog.Level
	msg   string
	attrs map[string]string
}

func newCapture() *capture { return &capture{mu: new(sync.Mutex), recs: new([]rec)} }

func (c *capture) Enabled(context.Context, slog.Level) bool { return true }
func (c *capture) WithAttrs(as []slog.Attr) slog.Handler {
	return &capture{mu: c.mu, recs: c.recs, attrs: append(append([]slog.Attr(nil), c.attrs...), as...)}
}
func (c *capture) WithGroup(string) slog.Handler { return c }
func (c *capture) Handle(_ context.Context, r slog.Record) error {
	m := map[string]string{}
	for _, a := range c.attrs {
		m[a.Key] = a.Value.String()
	}
	r.Attrs(func(a slog.Attr) bool {
		m[a.Key] = a.Value.String()
		return true
	})
	c.mu.Lock()
	*c.recs = append(*c.recs, rec{r.Level, r.Message, m})
	c.mu.Unlock()
	return nil
}

func (c *capture) take() []rec {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := *c.recs
	*c.recs = nil
	return out
}

// clock is a settable test clock.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

func count(rs []rec, msg string) int {
	n := 0
	for _, r := range rs {
		if r.msg == msg {
			n++
		}
	}
	return n
}

// A flood of one message passes Burst records per interval, and the next
// interval starts with one summary counting the rest; other messages and
// levels have their own budget.
func TestBurstAndSummary(t *testing.T) {
	c, clk := newCapture(), &clock{t: time.Unix(1e9, 0)}
	log := slog.New(logrl.NewHandler(c, logrl.Config{Burst: 3, Interval: time.Minute}, clk.now))
	for i := range 1000 {
		log.Error("frame failed", "i", i)
	}
	log.Warn("frame failed")
	log.Error("other")
	got := c.take()
	if n := count(got, "frame failed"); n != 4 { // 3 errors + 1 warning
		t.Fatalf("%d records of the flood passed, want 3 errors and 1 warning: %v", n, got)
	}
	if n := count(got, logrl.SuppressedMsg); n != 0 {
		t.Fatalf("summary before the interval ended: %v", got)
	}
	if got[2].attrs["i"] != "2" {
		t.Fatalf("third record %v, want the third of the flood", got[2])
	}

	clk.advance(time.Minute)
	log.Error("frame failed", "i", 1000)
	got = c.take()
	if len(got) != 2 || got[0].msg != logrl.SuppressedMsg || got[1].msg != "frame failed" {
		t.Fatalf("after the interval: %v, want a summary then the record", got)
	}
	if s := got[0]; s.level != slog.LevelError || s.attrs["repeated"] != "frame failed" || s.attrs["suppressed"] != "997" || s.attrs["interval"] != "1m0s" {
		t.Fatalf("summary %+v", s)
	}
}

// A summary is written on the next record of any message, once the
// interval is over, and groups with nothing dropped write none.
func TestSummaryOnOtherMessage(t *testing.T) {
	c, clk := newCapture(), &clock{t: time.Unix(1e9, 0)}
	log := slog.New(logrl.NewHandler(c, logrl.Config{Burst: 1, Interval: 10 * time.Second}, clk.now))
	log.Info("quiet")
	for range 5 {
		log.Info("loud")
	}
	c.take()
	clk.advance(11 * time.Second)
	log.Info("unrelated")
	got := c.take()
	if len(got) != 2 || got[0].msg != logrl.SuppressedMsg || got[0].attrs["repeated"] != "loud" || got[0].attrs["suppressed"] != "4" || got[1].msg != "unrelated" {
		t.Fatalf("got %v, want one summary of loud then unrelated", got)
	}
}

// Derived handlers share the budget; the summary carries the attributes
// of the handler that dropped the last record.
func TestDerivedHandlersShare(t *testing.T) {
	c, clk := newCapture(), &clock{t: time.Unix(1e9, 0)}
	base := slog.New(logrl.NewHandler(c, logrl.Config{Burst: 2, Interval: time.Second}, clk.now))
	a, b := base.With("node", "a"), base.WithGroup("g").With("node", "b")
	a.Error("x")
	b.Error("x")
	a.Error("x")
	b.Error("x")
	if got := c.take(); len(got) != 2 {
		t.Fatalf("%d records passed, want 2: %v", len(got), got)
	}
	clk.advance(time.Second)
	base.Error("y")
	got := c.take()
	if len(got) != 2 || got[0].attrs["suppressed"] != "2" || got[0].attrs["node"] != "b" {
		t.Fatalf("got %v, want a summary of 2 through node b", got)
	}
}

// A zero burst disables the limit.
func TestDisabled(t *testing.T) {
	c := newCapture()
	h := logrl.NewHandler(c, logrl.Config{Burst: 0, Interval: time.Second}, nil)
	if h != slog.Handler(c) {
		t.Fatal("a zero burst wraps the handler")
	}
}

// Many distinct messages stay bounded in memory and in output: past the
// group limit they share one budget per level.
func TestManyMessages(t *testing.T) {
	c, clk := newCapture(), &clock{t: time.Unix(1e9, 0)}
	log := slog.New(logrl.NewHandler(c, logrl.Config{Burst: 1, Interval: time.Minute}, clk.now))
	const n = 10000
	for i := range n {
		log.Info(fmt.Sprintf("message %d", i))
	}
	if got := len(c.take()); got < 4096 || got > 4097 {
		t.Fatalf("%d of %d distinct messages passed, want the 4096 tracked plus 1 shared", got, n)
	}
}

// Concurrent use is safe (run with -race) and the budget is exact.
func TestConcurrent(t *testing.T) {
	c := newCapture()
	log := slog.New(logrl.NewHandler(c, logrl.Config{Burst: 5, Interval: time.Hour}, nil))
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("g", g)
			for range 500 {
				l.Warn("same")
			}
		}()
	}
	wg.Wait()
	if got := len(c.take()); got != 5 {
		t.Fatalf("%d records passed, want 5", got)
	}
}
