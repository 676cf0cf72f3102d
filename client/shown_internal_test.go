package client

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/parley-chat/parley/protocol"
)

// TestShownLogSurvivesTornRecordAndCompacts reopens the shown file after
// a torn last record (a kill in the middle of a write): the positions
// written whole are kept, the torn one is dropped, and the file is
// rewritten with one record per conversation, as it is when it grows
// long.
func TestShownLogSurvivesTornRecordAndCompacts(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	l, err := openShownLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	for seq := int64(1); seq <= shownCompactAt+10; seq++ {
		if err := l.advance(protocol.ConversationID(1+seq%2), seq); err != nil {
			t.Fatal(err)
		}
	}
	if err := l.advance(1, 3); err != nil { // never back
		t.Fatal(err)
	}
	if err := l.close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, ShownFile)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(appendShown(nil, 1, 1<<40)[:10]) // torn
	f.Close()

	l, err = openShownLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer l.close()
	if got, want := l.position(1), int64(shownCompactAt+10); got != want {
		t.Errorf("conversation 1 shown up to %d, want %d", got, want)
	}
	if got, want := l.position(2), int64(shownCompactAt+9); got != want {
		t.Errorf("conversation 2 shown up to %d, want %d", got, want)
	}
	if got := l.position(3); got != 0 {
		t.Errorf("conversation 3 shown up to %d, want 0", got)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 2*shownRecordSize || fi.Mode().Perm() != 0o600 {
		t.Errorf("shown file after reopening: %d bytes, mode %v; want %d bytes, 0600", fi.Size(), fi.Mode().Perm(), 2*shownRecordSize)
	}
	if err := l.advance(1, shownCompactAt+20); err != nil {
		t.Fatal(err)
	}
}
