package httpapi_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/store/postgres"
)

// gatedBlobs holds every Put until gate opens: an upload that the
// server lets past its quota check waits there for the others.
type gatedBlobs struct {
	delivery.BlobStore
	arrived func()
	gate    <-chan struct{}
}

func (g *gatedBlobs) Put(ctx context.Context, r io.Reader, max int64) (string, int64, error) {
	g.arrived()
	select {
	case <-g.gate:
	case <-ctx.Done():
		return "", 0, ctx.Err()
	case <-time.After(time.Minute):
		return "", 0, errors.New("gate never opened")
	}
	return g.BlobStore.Put(ctx, r, max)
}

// parallelUploads uploads n distinct attachments of size bytes at once
// as user d, to the nodes in turn; half announce their length, half are
// chunked. The nodes' blob stores hold every upload that got past the
// quota check until each of the n uploads has either reached the blob
// store or been answered, so that every upload the server lets through is
// in progress at the same time. It returns how many were stored.
func parallelUploads(t *testing.T, nodes []*env, d *device, n int, size int) int {
	t.Helper()
	var mu sync.Mutex
	arrived, finished, stored := 0, 0, 0
	gate := make(chan struct{})
	step := func(f func()) {
		mu.Lock()
		defer mu.Unlock()
		f()
		if arrived+finished == n {
			select {
			case <-gate:
			default:
				close(gate)
			}
		}
	}
	for _, e := range nodes {
		e.stop()
		e.blobs = &gatedBlobs{BlobStore: e.blobs, arrived: func() { step(func() { arrived++ }) }, gate: gate}
		e.start()
	}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			defer step(func() { finished++ })
			data := make([]byte, size)
			rand.Read(data)
			var body io.Reader = bytes.NewReader(data)
			if i%2 == 1 {
				body = io.MultiReader(body) // no length: chunked
			}
			req, err := http.NewRequest("POST", nodes[i%len(nodes)].srv.URL+"/v1/attachments", body)
			if err != nil {
				t.Error(err)
				return
			}
			req.Header.Set("Authorization", "Bearer "+d.token)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				// A refused upload may see its connection closed while
				// it still sends the body.
				t.Logf("upload %d: %v", i, err)
				return
			}
			defer resp.Body.Close()
			msg, _ := io.ReadAll(resp.Body)
			switch {
			case resp.StatusCode < 300:
				mu.Lock()
				stored++
				mu.Unlock()
			case resp.StatusCode == http.StatusInsufficientStorage:
			default:
				t.Errorf("upload %d: status %d: %s", i, resp.StatusCode, msg)
			}
		})
	}
	wg.Wait()
	return stored
}

// Issue point 3: 16 parallel 1 MiB uploads against a 1 MiB quota store at
// most 1 MiB, on SQLite and on two nodes sharing PostgreSQL.
func TestAttachmentQuotaParallel(t *testing.T) {
	const mib = 1 << 20
	quota := func(d *delivery.Config, h *httpapi.Config) { h.MaxBlobBytes, h.BlobQuotaBytes = mib, mib }
	check := func(t *testing.T, nodes []*env) {
		alice := nodes[0].register("alice")
		stored := parallelUploads(t, nodes, alice, 16, mib)
		u, err := nodes[0].st.UserByName(context.Background(), "alice")
		if err != nil {
			t.Fatal(err)
		}
		n, bytes, err := nodes[0].st.BlobUsage(context.Background(), u.ID)
		if err != nil || bytes > mib || n != int64(stored) || stored != 1 {
			t.Fatalf("16 parallel 1 MiB uploads against a 1 MiB quota: %d accepted, %d blobs of %d bytes stored (%v)", stored, n, bytes, err)
		}
		// The quota is used up: nothing more, even of unknown length.
		nodes[len(nodes)-1].wantErr(protocol.CodeQuotaExceeded, alice.token, "POST", "/v1/attachments", []byte("more"))
	}
	t.Run("sqlite", func(t *testing.T) { check(t, []*env{newEnv(t, quota)}) })
	t.Run("postgres", func(t *testing.T) {
		schema := pgSchema(t)
		node := func() *env {
			return newEnvOn(t, t.TempDir(), func() checkedStore {
				c := postgres.NewConfig(pgDSN())
				c.Schema, c.MaxConns = schema, 4
				st, err := postgres.Open(context.Background(), c)
				if err != nil {
					t.Fatal(err)
				}
				return st
			}, quota)
		}
		check(t, []*env{node(), node()})
	})
}

// An upload of unknown length reserves what is left of the quota and gives
// back what it did not use.
func TestAttachmentQuotaUnknownLength(t *testing.T) {
	e := newEnv(t, func(d *delivery.Config, h *httpapi.Config) { h.MaxBlobBytes, h.BlobQuotaBytes = 1000, 1500 })
	alice := e.register("alice")
	upload := func(n int) int {
		data := make([]byte, n)
		rand.Read(data)
		req, _ := http.NewRequest("POST", e.srv.URL+"/v1/attachments", io.MultiReader(bytes.NewReader(data)))
		req.Header.Set("Authorization", "Bearer "+alice.token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		msg, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 300 {
			t.Logf("chunked upload of %d bytes: %d %s", n, resp.StatusCode, msg)
		}
		return resp.StatusCode
	}
	for i, n := range []int{600, 400, 200} { // 1200 of 1500 used
		if code := upload(n); code >= 300 {
			t.Fatalf("chunked upload %d of %d bytes: status %d", i, n, code)
		}
	}
	if code := upload(301); code < 400 {
		t.Errorf("chunked upload past the quota: status %d", code)
	}
	if code := upload(300); code >= 300 {
		t.Errorf("chunked upload of what is left: status %d", code)
	}
}

// Issue point 6: many accounts together cannot drain a device's one-time
// KeyPackages faster than the per-device budget; past it, and on an empty
// pool, claims get the last-resort package, which then counts as missing
// so that the client replaces it.
func TestKeyPackageDrain(t *testing.T) {
	e := newEnv(t, nil)
	bob := e.register("bob")
	if c := bob.upload(20, true); c.Available != 20 || !c.LastResort {
		t.Fatalf("pool %+v", c)
	}
	burst := e.dcfg.DeviceClaimBurst
	// 5 accounts claim 10 times each at once (within every per-claimer
	// and per-pair limit): 50 claims.
	oneTime, lastResort := 0, 0
	for i := range 5 {
		m := e.register(fmt.Sprintf("mallory%d", i))
		for range 10 {
			for _, kp := range m.claim("bob").KeyPackages {
				if kp.LastResort {
					lastResort++
				} else {
					oneTime++
				}
			}
		}
	}
	if oneTime != burst || lastResort != 50-burst {
		t.Errorf("50 claims got %d one-time and %d last-resort packages, want %d and %d", oneTime, lastResort, burst, 50-burst)
	}
	var c protocol.KeyPackageCount
	e.must(bob.token, "GET", fmt.Sprintf("/v1/keypackages/count?cipher_suite=%d", cs), nil, &c)
	if c.Available != 20-burst || c.LastResort {
		t.Errorf("bob's pool after the attack: %+v, want %d one-time and the last resort reported as used", c, 20-burst)
	}
	// Time refills the budget at the configured rate.
	e.clock.Advance(time.Duration(2.5 * float64(time.Second) / e.dcfg.DeviceClaimRate))
	m := e.register("mallory-late")
	got := 0
	for range 5 {
		for _, kp := range m.claim("bob").KeyPackages {
			if !kp.LastResort {
				got++
			}
		}
	}
	if got != 2 {
		t.Errorf("after 2.5 intervals, %d one-time packages claimed, want 2", got)
	}
	// Bob replaces his last-resort package: it counts again.
	if c := bob.upload(0, true); !c.LastResort {
		t.Errorf("pool after a new last resort: %+v", c)
	}
	// A device with an empty pool is claimed its last-resort package.
	carol := e.register("carol")
	carol.upload(0, true)
	r := bob.claim("carol")
	if len(r.KeyPackages) != 1 || !r.KeyPackages[0].LastResort || r.KeyPackages[0].Device != carol.id {
		t.Errorf("claim on an empty pool: %+v", r)
	}
}
