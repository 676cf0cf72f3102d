package httpapi

import (
	"bytes"
	"net"
	"testing"
	"time"
)

// writeLog is a connection that records each write it is given.
type writeLog struct {
	net.Conn
	writes [][]byte
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, bytes.Clone(p))
	return len(p), nil
}

func (w *writeLog) SetWriteDeadline(time.Time) error { return nil }

// gatherLog is a writeLog that writes several buffers as one write, as
// connlimit's connection over TCP does.
type gatherLog struct{ writeLog }

func (g *gatherLog) WriteBuffers(b *net.Buffers) (int64, error) {
	var all []byte
	for _, p := range *b {
		all = append(all, p...)
	}
	g.writes = append(g.writes, all)
	*b = nil
	return int64(len(all)), nil
}

// TestCorkWritesGathered: where the connection gathers buffers, the
// held-back bytes and a large write go out as one write.
func TestCorkWritesGathered(t *testing.T) {
	gl := &gatherLog{}
	c := &corkConn{Conn: gl}
	small, large := bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{3}, corkDirect)
	c.cork()
	c.Write(small)
	if n, err := c.Write(large); err != nil || n != len(large) {
		t.Fatalf("large write: %d, %v", n, err)
	}
	c.Write(small)
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{append(bytes.Clone(small), large...), small}
	if len(gl.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(gl.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(gl.writes[i], want[i]) {
			t.Errorf("write %d: %d bytes, want %d", i, len(gl.writes[i]), len(want[i]))
		}
	}
}

// TestCorkWrites: small writes to a corked connection go out together at
// uncork; a large one goes out as it is, after what was held back, so
// the order of the bytes is kept and the large one is not copied.
func TestCorkWrites(t *testing.T) {
	wl := &writeLog{}
	c := &corkConn{Conn: wl}
	small1, small2 := bytes.Repeat([]byte{1}, 100), bytes.Repeat([]byte{2}, 200)
	large := bytes.Repeat([]byte{3}, corkDirect)
	c.cork()
	for _, p := range [][]byte{small1, large, small2, small1} {
		if n, err := c.Write(p); err != nil || n != len(p) {
			t.Fatalf("write of %d bytes: %d, %v", len(p), n, err)
		}
	}
	if len(wl.writes) != 2 {
		t.Fatalf("%d writes before uncork, want 2 (the held-back bytes, then the large write)", len(wl.writes))
	}
	if err := c.uncork(time.Second); err != nil {
		t.Fatal(err)
	}
	want := [][]byte{small1, large, append(bytes.Clone(small2), small1...)}
	if len(wl.writes) != len(want) {
		t.Fatalf("%d writes, want %d", len(wl.writes), len(want))
	}
	for i := range want {
		if !bytes.Equal(wl.writes[i], want[i]) {
			t.Errorf("write %d: %d bytes, want %d", i, len(wl.writes[i]), len(want[i]))
		}
	}
	// Uncorked, writes pass straight through.
	c.Write(small1)
	if len(wl.writes) != 4 || !bytes.Equal(wl.writes[3], small1) {
		t.Errorf("uncorked write: %d writes", len(wl.writes))
	}
}
