package client

import (
	"testing"
	"time"
)

// TestEventQueueBound: the queue never holds more than its limit; on
// overflow the queued events become one EventOverflow counting them and
// every later event until it is read; then events queue again.
func TestEventQueueBound(t *testing.T) {
	t.Parallel()
	e := newEventQueue(3)
	defer e.close()
	e.push(Event{Kind: EventConnection, Connection: Connected})
	// The pump takes the first event and waits to hand it over.
	waitLen := func(n int) {
		t.Helper()
		for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
			e.mu.Lock()
			l := len(e.q)
			e.mu.Unlock()
			if l == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("queue length %d, want %d", l, n)
			}
		}
	}
	waitLen(0)
	for range 3 {
		e.push(Event{Kind: EventMessage})
	}
	waitLen(3)
	for range 10 {
		e.push(Event{Kind: EventMessage})
		e.mu.Lock()
		if len(e.q) > 3 {
			t.Fatalf("queue holds %d events, limit 3", len(e.q))
		}
		e.mu.Unlock()
	}
	waitLen(1)
	if ev := <-e.ch; ev.Kind != EventConnection {
		t.Fatalf("first event %v, want connection", ev.Kind)
	}
	ev := <-e.ch
	if ev.Kind != EventOverflow || ev.Dropped != 13 || ev.Connection != Connected {
		t.Fatalf("got %v dropped %d connection %v, want overflow dropped 13 connected", ev.Kind, ev.Dropped, ev.Connection)
	}
	e.push(Event{Kind: EventEdited})
	if ev := <-e.ch; ev.Kind != EventEdited {
		t.Fatalf("after the overflow got %v, want edited", ev.Kind)
	}
}
