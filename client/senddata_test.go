package client_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"os"
	"testing"

	"github.com/parley-chat/parley/client"
)

// TestSendData: a file sent from memory (SendData) arrives as SendFile's
// do, with its name, size and the type guessed from the name; the
// receiver reads it into memory (DownloadData) or into a directory
// (Download), and DownloadData of an unknown attachment fails with
// ErrUnknownAttachment, writing nothing.
func TestSendData(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	alice, bob, conv := directPair(t, newServer(t))

	file := make([]byte, 100<<10+17)
	rand.Read(file)
	sent, err := alice.c.SendData(ctx, conv, bytes.NewReader(file), "notes.txt", client.SendOptions{Caption: "notes"})
	if err != nil {
		t.Fatal(err)
	}
	a := sent.Attachment
	if a == nil || a.FileName != "notes.txt" || a.Size != int64(len(file)) || a.MediaType != "text/plain; charset=utf-8" || sent.Text != "notes" {
		t.Fatalf("sent %+v with attachment %+v; want notes.txt, %d bytes, text/plain", sent, a, len(file))
	}
	ev := bob.waitEvent("the file", func(ev client.Event) bool {
		return ev.Kind == client.EventMessage && ev.Message.ID == sent.ID
	})
	if got := ev.Message.Attachment; got == nil || *got != *a {
		t.Fatalf("bob's attachment %+v, want %+v", got, a)
	}

	var buf bytes.Buffer
	got, err := bob.c.DownloadData(ctx, a.ID, &buf)
	if err != nil {
		t.Fatal(err)
	}
	if *got != *a || !bytes.Equal(buf.Bytes(), file) {
		t.Errorf("DownloadData = %+v and %d bytes; want %+v and the file sent", got, buf.Len(), a)
	}
	path, err := bob.c.Download(ctx, a.ID, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || !bytes.Equal(b, file) {
		t.Errorf("Download to %s: %d bytes, %v; want the file sent", path, len(b), err)
	}

	buf.Reset()
	if _, err := bob.c.DownloadData(ctx, "00", &buf); !errors.Is(err, client.ErrUnknownAttachment) || buf.Len() != 0 {
		t.Errorf("DownloadData of an unknown attachment: %v, %d bytes written; want ErrUnknownAttachment and none", err, buf.Len())
	}
	empty, err := alice.c.SendData(ctx, conv, bytes.NewReader(nil), "empty", client.SendOptions{MediaType: "application/x-empty"})
	if err != nil {
		t.Fatal(err)
	}
	if empty.Attachment.Size != 0 || empty.Attachment.MediaType != "application/x-empty" {
		t.Errorf("empty file: %+v", empty.Attachment)
	}
}
