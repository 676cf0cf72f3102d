package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/server/follower"
)

// parleydBin is the parleyd built once for the tests.
var parleydBin string

// TestMain makes the test binary serve as a bench worker when the
// coordinator under test starts it, and builds parleyd once.
func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := runWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			os.Stderr.WriteString("worker: " + err.Error() + "\n")
			os.Exit(1)
		}
		os.Exit(0)
	}
	dir, err := os.MkdirTemp("", "parley-bench-test-")
	if err != nil {
		panic(err)
	}
	// PARLEY_BENCH_PARLEYD names a prebuilt parleyd (while cmd/parleyd
	// does not build, or to test another version).
	parleydBin = os.Getenv("PARLEY_BENCH_PARLEYD")
	if parleydBin == "" {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		parleydBin, err = buildParleyd(ctx, dir)
		cancel()
	}
	if err != nil {
		os.Stderr.WriteString(err.Error() + "\n")
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// runJSON runs the bench with args against a spawned parleyd and decodes
// the JSON report.
func runJSON(t *testing.T, args ...string) *report {
	t.Helper()
	// A bound on a hung run, not a timing target: compare spawns nine
	// servers in turn, which takes ~30 s on a quiet machine and more than
	// twice that under the race detector with both cores busy.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	var out, errb bytes.Buffer
	args = append(args, "--spawn", "--parleyd", parleydBin, "--json")
	if err := run(ctx, args, &out, &errb); err != nil {
		t.Fatalf("parley-bench %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	var rep report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode report: %v\n%s", err, out.String())
	}
	return &rep
}

// value returns a metric of a result.
func value(t *testing.T, r result, name string) float64 {
	t.Helper()
	for _, m := range r.Metrics {
		if m.Name == name {
			return m.Value
		}
	}
	t.Fatalf("%s: no metric %q", r.Scenario, name)
	return 0
}

func TestThroughput(t *testing.T) {
	t.Parallel()
	rep := runJSON(t, "throughput", "--senders", "10", "--conversations", "5", "--duration", "2s", "--warmup", "500ms", "--drain", "500ms")
	r := rep.Results[0]
	if v := value(t, r, "accepted durably (sent acks)"); v < 100 {
		t.Errorf("accepted %v msg/s", v)
	}
	if v := value(t, r, "delivered to online recipients"); v < 100 {
		t.Errorf("delivered %v msg/s", v)
	}
	if v := value(t, r, "connections lost"); v != 0 {
		t.Errorf("%v connections lost; %s", v, errorMetrics(r))
	}
}

func TestLatency(t *testing.T) {
	t.Parallel()
	rep := runJSON(t, "latency", "--senders", "10", "--conversations", "10", "--rate", "500", "--duration", "2s", "--warmup", "500ms", "--drain", "500ms")
	r := rep.Results[0]
	if n := value(t, r, "latency samples"); n < 500 {
		t.Errorf("%v latency samples, want about 1,000", n)
	}
	if p := value(t, r, "delivery latency p99"); p <= 0 || p > 5000 {
		t.Errorf("p99 %v ms", p)
	}
}

func TestFanoutAndIdle(t *testing.T) {
	t.Parallel()
	rep := runJSON(t, "fanout", "--sizes", "8,20", "--batch", "7", "--rounds", "2", "--interval", "300ms", "--per-worker", "12")
	var fan []result
	for _, r := range rep.Results {
		if r.Scenario == "fanout" {
			fan = append(fan, r)
		}
	}
	if len(fan) != 2 {
		t.Fatalf("%d fan-out results, want 2", len(fan))
	}
	for _, r := range fan {
		if n := value(t, r, "rounds delivered to every member"); n != 2 {
			t.Errorf("%v: %v complete rounds, want 2", r.Params["members"], n)
		}
	}
	if c := fan[1].Params["commits"].(float64); c != 3 {
		t.Errorf("20 members in batches of 7: %v commits, want 3", c)
	}
}

func TestIdle(t *testing.T) {
	t.Parallel()
	rep := runJSON(t, "idle", "--connections", "20")
	r := rep.Results[0]
	if n := value(t, r, "connections counted by the server"); n != 20 {
		t.Errorf("server counts %v connections, want 20", n)
	}
}

func TestLoopbackOnly(t *testing.T) {
	for _, u := range []string{"http://10.0.0.1:8443", "https://example.org", "ftp://127.0.0.1"} {
		if _, err := checkLoopback(u); err == nil {
			t.Errorf("%s accepted", u)
		}
	}
	for _, u := range []string{"http://127.0.0.1:8443", "https://localhost:8443", "http://[::1]:1", "http://127.3.2.1:9"} {
		if _, err := checkLoopback(u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}

func TestMessageShape(t *testing.T) {
	gid := bytes.Repeat([]byte{7}, 16)
	msg := appMessage(gid, 3, 256, stamp{at: 42, id: 1<<32 | 5, sender: 1})
	if len(msg) > 256 || len(msg) < 240 {
		t.Errorf("message is %d bytes, want about 256", len(msg))
	}
	s, ok := readStamp(msg)
	if !ok || s.at != 42 || s.id != 1<<32|5 || s.sender != 1 {
		t.Errorf("stamp %+v %v", s, ok)
	}
	h, err := follower.New(nil).PeekPrivate(msg)
	if err != nil || h.Epoch != 3 || h.ContentType != 1 || !bytes.Equal(h.GroupID, gid) {
		t.Errorf("the server's header parser reads %+v, %v", h, err)
	}
}

// compareConfigs returns the configurations of compare whose services
// answer: PostgreSQL ($PARLEY_TEST_POSTGRES or the local default) for
// postgres and cluster, NATS ($PARLEY_TEST_NATS or the local default) for
// cluster. An unreachable service skips its configurations, or fails the
// test under CI=true (testenv).
func compareConfigs(t *testing.T) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	configs := []string{cfgSQLite}
	if !testenv.Optional(t, testenv.NeedPostgres, checkPostgres(ctx, testenv.PostgresURL())) {
		return configs
	}
	configs = append(configs, cfgPostgres)
	if !testenv.Optional(t, testenv.NeedNATS, checkNATS(ctx, testenv.NATSURL())) {
		return configs
	}
	return append(configs, cfgCluster)
}

// TestCompare runs compare at tiny scale: every scenario on each
// reachable configuration, the cluster's devices spread over three nodes
// (so fan-out and delivery cross nodes through NATS), and checks the
// comparison and that the fresh schemas are dropped. The drain (the time
// the receivers keep counting after the last fan-out round) is long
// enough for a loaded machine running the race detector: the check that
// every round reached every member must not depend on the machine's
// speed.
func TestCompare(t *testing.T) {
	t.Parallel()
	configs := compareConfigs(t)
	rep := runJSON(t, "compare", "--configs", strings.Join(configs, ","),
		"--senders", "6", "--conversations", "3", "--duration", "700ms", "--warmup", "200ms", "--drain", "1500ms",
		"--rate", "200", "--sizes", "12", "--batch", "5", "--rounds", "2", "--interval", "150ms", "--settle", "100ms", "--per-worker", "12")
	c := rep.Comparison
	if c == nil || len(c.Configs) != len(configs) {
		t.Fatalf("comparison %+v, want %d configurations", c, len(configs))
	}
	for i, col := range c.Configs {
		if col.Config != configs[i] || len(col.Errors) > 0 {
			t.Errorf("column %d: %+v", i, col)
		}
	}
	if cl := c.Configs[len(c.Configs)-1]; cl.Config == cfgCluster && cl.Nodes != 3 {
		t.Errorf("cluster of %d nodes, want 3", cl.Nodes)
	}
	row := func(name string) []*float64 {
		for _, r := range c.Rows {
			if strings.HasPrefix(r.Name, name) {
				return r.Values
			}
		}
		t.Fatalf("no row %q", name)
		return nil
	}
	for i, cfg := range configs {
		val := func(name string) float64 {
			v := row(name)[i]
			if v == nil {
				t.Fatalf("%s: %s missing", cfg, name)
			}
			return *v
		}
		if v := val("throughput: delivered"); v < 100 {
			t.Errorf("%s: delivered %v msg/s", cfg, v)
		}
		if v := val("latency: delivery p99"); v <= 0 || v > 5000 {
			t.Errorf("%s: latency p99 %v ms", cfg, v)
		}
		if v := val("fan-out 12: rounds reaching all 11 others"); v != 2 {
			t.Errorf("%s: %v complete fan-out rounds, want 2", cfg, v)
		}
		if v := val("errors and lost connections"); v != 0 {
			for _, r := range rep.Results {
				if r.Config == cfg {
					t.Logf("%s %s: %s", cfg, r.Scenario, errorMetrics(r))
				}
			}
			t.Errorf("%s: %v errors and lost connections", cfg, v)
		}
	}
	for _, r := range rep.Results {
		if r.Config == cfgCluster && paramInt(r.Params["servers"]) != 3 {
			t.Errorf("cluster %s ran on %v servers", r.Scenario, r.Params["servers"])
		}
	}
	if len(configs) > 1 {
		leftover(t, rep)
	}
}

// leftover fails if a schema of the report's runs is left in PostgreSQL
// (one fresh schema per scenario run on PostgreSQL).
func leftover(t *testing.T, rep *report) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, pgConnString(testenv.PostgresURL()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	seen := map[string]bool{}
	for _, r := range rep.Results {
		s, _ := r.Params["schema"].(string)
		if r.Config == cfgSQLite || seen[s] {
			continue
		}
		if s == "" {
			t.Errorf("%s %s: no schema in the parameters", r.Config, r.Scenario)
			continue
		}
		seen[s] = true
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_namespace WHERE nspname = $1`, s).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n != 0 {
			t.Errorf("schema %s was not dropped", s)
		}
	}
}

// errorMetrics lists a result's error counts.
func errorMetrics(r result) string {
	var es []string
	for _, m := range r.Metrics {
		if strings.HasPrefix(m.Name, "errors: ") {
			es = append(es, fmt.Sprintf("%s ×%v", m.Name, m.Value))
		}
	}
	return strings.Join(es, "; ")
}

// TestLargeGroup runs large-group at tiny scale on SQLite and, when it
// answers, PostgreSQL: the conversation is built in batches, every kind
// of commit is accepted, reaches every connected member and is costed,
// and the added members join by their Welcome.
func TestLargeGroup(t *testing.T) {
	t.Parallel()
	stores := []string{"sqlite"}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if testenv.Optional(t, testenv.NeedPostgres, checkPostgres(ctx, testenv.PostgresURL())) {
		stores = append(stores, "postgres")
	}
	for _, store := range stores {
		t.Run(store, func(t *testing.T) {
			t.Parallel()
			rep := runJSON(t, "large-group", "--store", store, "--postgres", testenv.PostgresURL(),
				"--members", "80", "--commits", "2", "--batch", "30", "--per-worker", "50")
			r := rep.Results[0]
			if got := r.Setup["members_reached"]; got != 80 {
				t.Errorf("%v members reached, want 80", got)
			}
			if got := r.Setup["build_commits"]; got != 3 {
				t.Errorf("80 members in batches of 30: %v commits, want 3", got)
			}
			// From 64 members on, the members the tree-fill rule names
			// commit: after the Adds that took the group past 64 (the
			// creator, leftmost under the blank nodes of height 4 and
			// more, and the leftmost of leaves 64-79) and after each
			// removal of the last member.
			if got := r.Setup["fill_commits"]; got < 2 {
				t.Errorf("%v fill commits, want at least 2; notes %q", got, r.Notes)
			}
			if got := r.Setup["fills_skipped"]; got != 0 {
				t.Errorf("%v fills skipped; notes %q", got, r.Notes)
			}
			for _, kind := range []string{kindMessage, kindUpdate, kindAdd, kindRemove, kindExternal} {
				u := (&kindStats{name: kind}).unit()
				if n := value(t, r, kind+": "+u+"s measured"); n != 2 {
					t.Errorf("%s: %v %ss measured, want 2; notes %q", kind, n, u, r.Notes)
				}
				if v := value(t, r, kind+": server CPU accepting a "+u); v < 0 {
					t.Errorf("%s: server CPU %v ms", kind, v)
				}
				for _, m := range r.Metrics {
					if strings.HasPrefix(m.Name, kind+": fan-out") && m.Value <= 0 {
						t.Errorf("%s = %v", m.Name, m.Value)
					}
					if strings.HasPrefix(m.Name, kind+": receipts missing") {
						t.Errorf("%s = %v", m.Name, m.Value)
					}
				}
			}
			if v := value(t, r, "message: MLS PrivateMessage"); v <= 0 {
				t.Errorf("message: a message of %v bytes", v)
			}
			if v := value(t, r, "join by Welcome (inbox → joined) p50"); v <= 0 {
				t.Errorf("join by Welcome %v ms", v)
			}
			if store == "sqlite" {
				if v := value(t, r, "add: server write_bytes accepting a commit (POST → answer)"); v <= 0 {
					t.Errorf("add: server wrote %v KiB per commit", v)
				}
			} else {
				if v := value(t, r, "add: PostgreSQL WAL per commit (whole cluster)"); v <= 0 {
					t.Errorf("add: %v KiB of WAL per commit", v)
				}
			}
		})
	}
}
