package e2e_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/internal/browsertest"
)

// TestWebClientLongOpen: a conversation left open while many messages
// come keeps at most 100 entries in the page (twice the 50 it loads at
// a time), so each new message costs the same however long the page
// has been open; scrolling up brings the dropped ones back, in order,
// and a message that comes while the person reads above stays in the
// page with them.
func TestWebClientLongOpen(t *testing.T) {
	alice, dc, conv := teamOfTwo(t, "long 0")
	ctx := context.Background()
	const n = 130
	const quoted, reply = 40, 90 // message reply answers message quoted
	shown := fmt.Sprintf(`document.querySelectorAll(%q).length`, sel("message"))
	most := 0
	var ids [n]content.MessageID
	for i := 1; i < n; i++ {
		text := fmt.Sprintf("long %d", i)
		var opts client.SendOptions
		if i == reply {
			opts.ReplyTo = ids[quoted]
		}
		m, err := dc.Send(ctx, conv, text, opts)
		if err != nil {
			t.Fatal(err)
		}
		ids[i] = m.ID
		alice.p.UntilMutation(browsertest.LastHasText(sel("message-text"), text))
		most = max(most, browsertest.Eval[int](alice.p, shown))
	}
	if most > 100 || most < 51 {
		t.Errorf("the page held up to %d messages while %d came to its open conversation; want at most 100 (and more than 50)", most, n)
	}
	// The reply still shows what it answers, which left the page.
	quote := fmt.Sprintf(`document.querySelector(%q)?.textContent`, messageWith(ids[reply].String())+" "+sel("message-quote"))
	if got := browsertest.Eval[string](alice.p, quote); got != fmt.Sprintf("carol: long %d", quoted) {
		t.Errorf("the quote of the reply to a message no longer in the page shows %q", got)
	}

	// Scrolling up loads the older ones again, in order.
	toTop := chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`document.querySelector(%q).scrollTop = 0`, sel("history")))(ctx, tg)
		return err
	})
	first := fmt.Sprintf(`document.querySelector(%q)?.textContent`, sel("message")+" "+sel("message-text"))
	for browsertest.Eval[string](alice.p, first) != "long 0" {
		before := browsertest.Eval[int](alice.p, shown)
		alice.p.Run(toTop)
		alice.p.Until(fmt.Sprintf(`%s > %d || %s === "long 0"`, shown, before, first))
	}
	order := fmt.Sprintf(`[...document.querySelectorAll(%q)].map(e => e.textContent).every((s, i) => s === "long " + i)`, sel("message-text"))
	if got := browsertest.Eval[int](alice.p, shown); got != n || !browsertest.Eval[bool](alice.p, order) {
		t.Errorf("after scrolling to the start the page shows %d messages (in order: %v), want all %d in order", got, browsertest.Eval[bool](alice.p, order), n)
	}

	// A message that comes while alice reads at the top joins the page
	// without dropping what she scrolled back to.
	if _, err := dc.Send(ctx, conv, fmt.Sprintf("long %d", n), client.SendOptions{}); err != nil {
		t.Fatal(err)
	}
	alice.p.UntilMutation(browsertest.LastHasText(sel("message-text"), fmt.Sprintf("long %d", n)))
	if got := browsertest.Eval[int](alice.p, shown); got != n+1 || !browsertest.Eval[bool](alice.p, order) {
		t.Errorf("after a new message while reading above, the page shows %d messages (in order: %v), want %d in order", got, browsertest.Eval[bool](alice.p, order), n+1)
	}
	alice.checkOrigins()
}
