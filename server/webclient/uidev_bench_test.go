//go:build uidev

package webclient

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"slices"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/profiler"
	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/internal/browsertest"
)

// BenchmarkPageMessage measures what a message that comes into the open
// conversation costs the page's main thread (median per message: the
// time it was busy, Chromium's TaskDuration, and the CPU time it used,
// ThreadTime) with the fake bridge in place of the program: the
// page's own work and the browser's drawing, without decryption or
// storage, with the five canned conversations in the list and with 300
// more (?fake=many). The harness's calls are in the figure, the same in
// both. PARLEY_UIDEV_PROFILE=PREFIX writes V8's profile of the page's
// script as PREFIX-NAME.cpuprofile (for Chromium's DevTools);
// PARLEY_WEB_TRACE=FILE a Chromium trace of the messages
// (browsertest.Page.StartTrace; the last sub-benchmark's is kept).
//
//	go test -tags uidev -run '^$' -bench PageMessage -benchtime 100x ./server/webclient
func BenchmarkPageMessage(b *testing.B) {
	srv := httptest.NewServer(devHandler(b))
	b.Cleanup(srv.Close)
	br := browsertest.Start(b, "")
	for _, c := range []struct{ name, query string }{{"5-conversations", "/"}, {"305-conversations", "/?fake=many"}} {
		b.Run(c.name, func(b *testing.B) {
			p := br.NewPage(b, "bench", 1280, 800)
			p.Open(srv.URL + c.query + "#c=1")
			p.Until(`document.querySelectorAll('[data-testid=message]').length > 5`)
			busy, cpu := p.BusyMeter(), p.CPUMeter()
			if os.Getenv("PARLEY_UIDEV_PROFILE") != "" {
				if _, err := chromedp.Call(p.Context(), profiler.Enable, cdp.Empty{}); err != nil {
					b.Fatal(err)
				}
				if _, err := chromedp.Call(p.Context(), profiler.Start, cdp.Empty{}); err != nil {
					b.Fatal(err)
				}
				defer func() {
					res, err := chromedp.Call(p.Context(), profiler.Stop, cdp.Empty{})
					if err != nil {
						b.Fatal(err)
					}
					data, err := json.Marshal(res.Profile)
					if err == nil {
						err = os.WriteFile(os.Getenv("PARLEY_UIDEV_PROFILE")+"-"+c.name+".cpuprofile", data, 0o644)
					}
					if err != nil {
						b.Errorf("write the profile: %v", err)
					}
				}()
			}
			ms, cpuMs := make([]float64, 0, b.N), make([]float64, 0, b.N)
			stopTrace := p.StartTrace(b)
			defer stopTrace()
			for i := range b.N {
				text := fmt.Sprintf("bench %d", i)
				b0, c0 := busy(), cpu()
				browsertest.Eval[bool](p, fmt.Sprintf("parleyFake.incoming(1, %q)", text))
				p.UntilMutation(fmt.Sprintf(`document.querySelector('[data-testid=history]').lastElementChild?.querySelector('[data-testid=message-text]')?.textContent === %q`, text))
				ms = append(ms, busy()-b0)
				cpuMs = append(cpuMs, cpu()-c0)
			}
			slices.Sort(ms)
			slices.Sort(cpuMs)
			b.ReportMetric(ms[len(ms)/2], "page-busy-median-ms")
			b.ReportMetric(cpuMs[len(cpuMs)/2], "page-cpu-median-ms")
		})
	}
}
