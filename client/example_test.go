package client_test

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/internal/tlsutil"
	"github.com/parley-chat/parley/server/blob"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/follower"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/store/sqlite"
)

// Two users on one server: each opens a profile and registers, alice
// opens a 1:1 conversation with bob and sends a message, and bob fetches
// and reads it. A program that stays connected calls Run and reads
// Events instead of calling Sync.
func Example() {
	ctx := context.Background()
	// The server: here a parleyd core on loopback with a self-signed
	// certificate, pinned by its fingerprint.
	serverURL, fingerprint, stop := exampleServer()
	defer stop()
	dir, err := os.MkdirTemp("", "parley-example-")
	checkExample(err)
	defer os.RemoveAll(dir)

	open := func(name string) *client.Client {
		c, err := client.Open(ctx, client.Config{
			ProfileDir:     filepath.Join(dir, name),
			Passphrase:     []byte("correct horse battery staple " + name),
			KDF:            store.KDFParams{Time: 1, MemoryKiB: 1024, Threads: 1}, // cheap for the example; keep the default
			ServerURL:      serverURL,
			TLSFingerprint: fingerprint,
		})
		checkExample(err)
		// The server allows open registration, so no invite is needed.
		_, err = c.Register(ctx, serverURL, "", name)
		checkExample(err)
		return c
	}
	alice, bob := open("alice"), open("bob")
	defer alice.Close()
	defer bob.Close()

	conv, err := alice.NewDirect(ctx, "bob")
	checkExample(err)
	_, err = alice.Send(ctx, conv, "hello bob", client.SendOptions{})
	checkExample(err)

	checkExample(bob.Sync(ctx))
	msgs, err := bob.Messages(ctx, conv, 0, 10)
	checkExample(err)
	for _, m := range msgs {
		if m.Text != "" {
			fmt.Printf("%s: %s\n", m.Sender, m.Text)
		}
	}
	// Output: alice: hello bob
}

// checkExample ends the example on an unexpected error; an application would
// handle it.
func checkExample(err error) {
	if err != nil {
		panic(err)
	}
}

// exampleServer starts a parleyd core with open registration on a SQLite
// file, behind a loopback TLS server, and returns its URL, its
// certificate's fingerprint and the function that stops it.
func exampleServer() (url, fingerprint string, stop func()) {
	ctx, cancel := context.WithCancel(context.Background())
	dir, err := os.MkdirTemp("", "parley-example-server-")
	checkExample(err)
	st, err := sqlite.Open(ctx, sqlite.NewConfig(filepath.Join(dir, "parley.db")))
	checkExample(err)
	blobs, err := blob.NewDisk(filepath.Join(dir, "blobs"))
	checkExample(err)
	dcfg := delivery.DefaultConfig()
	dcfg.ServerName = "example.test"
	dcfg.OpenRegistration = true
	svc, err := delivery.New(dcfg, st, blobs, follower.New(nil), delivery.Options{})
	checkExample(err)
	ran := make(chan struct{})
	go func() {
		svc.Run(ctx)
		close(ran)
	}()
	api, err := httpapi.New(httpapi.DefaultConfig(), svc, nil, nil)
	checkExample(err)
	srv := httptest.NewTLSServer(api)
	return srv.URL, tlsutil.Fingerprint(srv.Certificate().Raw), func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		api.Shutdown(sctx)
		scancel()
		srv.Close()
		cancel()
		<-ran
		st.Close()
		os.RemoveAll(dir)
	}
}
