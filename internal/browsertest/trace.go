package browsertest

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/tracing"
	"github.com/chromedp/chromedp"
)

// traceCategories are what a trace of the web client records by
// default: the DevTools timeline (tasks, script, layout, paint,
// IndexedDB), the compositor, raster and display work, V8's sampling
// profiler and the page's and worker's performance.measure spans.
var traceCategories = []string{
	"devtools.timeline", "disabled-by-default-devtools.timeline",
	"disabled-by-default-devtools.timeline.frame", "toplevel", "blink",
	"cc", "viz", "gpu", "v8.execute", "IndexedDB",
	"disabled-by-default-v8.cpu_profiler", "blink.user_timing",
}

// StartTrace records a Chromium trace of the page's browser (every
// process) when PARLEY_WEB_TRACE names a file, and returns the function
// that stops it and writes the trace there in Chromium's JSON format, for
// chrome://tracing or Perfetto. PARLEY_WEB_TRACE_CATEGORIES, a comma-
// separated list, replaces traceCategories. Without PARLEY_WEB_TRACE both
// do nothing.
func (p *Page) StartTrace(tb testing.TB) (stop func()) {
	ctx := p.ctx
	path := os.Getenv("PARLEY_WEB_TRACE")
	if path == "" {
		return func() {}
	}
	var mu sync.Mutex
	var events []json.RawMessage
	done := make(chan struct{})
	lctx, cancel := context.WithCancel(ctx)
	if err := chromedp.Listen(lctx, func(ev any) {
		switch ev := ev.(type) {
		case *tracing.EventDataCollected:
			mu.Lock()
			for _, v := range ev.Value {
				events = append(events, json.RawMessage(v))
			}
			mu.Unlock()
		case *tracing.EventTracingComplete:
			close(done)
		}
	}); err != nil {
		tb.Fatal(err)
	}
	cats := traceCategories
	if c := os.Getenv("PARLEY_WEB_TRACE_CATEGORIES"); c != "" {
		cats = strings.Split(c, ",")
	}
	cfg := &tracing.TraceConfig{EnableSampling: true, IncludedCategories: cats}
	if _, err := chromedp.Call(ctx, tracing.Start, tracing.StartParams{TraceConfig: cfg, TransferMode: tracing.StartTransferModeReportEvents}); err != nil {
		tb.Fatalf("start tracing: %v", err)
	}
	return func() {
		defer cancel()
		if _, err := chromedp.Call(ctx, tracing.End, cdp.Empty{}); err != nil {
			tb.Fatalf("end tracing: %v", err)
		}
		select {
		case <-done:
		case <-time.After(Timeout):
			tb.Fatal("tracing did not complete")
		}
		mu.Lock()
		defer mu.Unlock()
		b, err := json.Marshal(map[string]any{"traceEvents": events})
		if err != nil {
			tb.Fatal(err)
		}
		if err := os.WriteFile(path, b, 0o644); err != nil {
			tb.Fatal(err)
		}
		tb.Logf("trace of %d events in %s", len(events), path)
	}
}
