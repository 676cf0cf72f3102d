package main

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// spawnConfig says how to start parleyd nodes.
type spawnConfig struct {
	Binary string // Binary is parleyd; empty builds it from the module.
	Store  string // Store is passed as --store (empty: SQLite in the data dir).
	Fanout string // Fanout is passed as --fanout (empty: not passed).
	// FanoutPrefix is passed as --fanout-prefix with a NATS fan-out, so
	// that runs sharing one NATS server do not hear each other.
	FanoutPrefix string
	Nodes        int      // Nodes is the number of parleyd processes.
	TLS          string   // TLS is the --tls-mode: off or self-signed.
	Extra        []string // Extra are more parleyd flags.
	Dir          string   // Dir holds the binary and the data directories.
	Log          io.Writer
}

// node is a spawned parleyd process.
type node struct {
	cmd     *exec.Cmd
	url     string
	metrics string // metrics is the base URL of the node's metrics listener.
	pid     int
	stderr  *bytes.Buffer
	done    chan error
}

// benchFlags are the parleyd flags the bench needs: every rate limit far
// above what one loopback IP and a few devices send here, no cap on the
// connections of one address, and metrics on a free loopback port.
var benchFlags = []string{
	"--open-registration",
	"--connections-max-per-addr", "0",
	"--metrics-listen", "127.0.0.1:0",
	"--log-level", "warn",
	"--rate-limits-register-per-ip-per-second", "1000000", "--rate-limits-register-per-ip-burst", "1000000",
	"--rate-limits-auth-per-ip-per-second", "1000000", "--rate-limits-auth-per-ip-burst", "1000000",
	"--rate-limits-requests-per-ip-per-second", "1000000", "--rate-limits-requests-per-ip-burst", "1000000",
	"--rate-limits-requests-per-user-per-second", "1000000", "--rate-limits-requests-per-user-burst", "1000000",
	"--rate-limits-posts-per-device-per-second", "1000000", "--rate-limits-posts-per-device-burst", "1000000",
	"--rate-limits-frames-per-connection-per-second", "1000000", "--rate-limits-frames-per-connection-burst", "1000000",
}

// buildParleyd builds cmd/parleyd of the module containing the working
// directory into dir.
func buildParleyd(ctx context.Context, dir string) (string, error) {
	out, err := exec.CommandContext(ctx, "go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", errors.New("cannot find the parley module to build parleyd (run inside the repository or pass --parleyd PATH)")
	}
	bin := filepath.Join(dir, "parleyd")
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, "github.com/parley-chat/parley/cmd/parleyd")
	cmd.Dir = filepath.Dir(mod)
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("build parleyd: %v\n%s", err, out)
	}
	return bin, nil
}

var (
	listenRE  = regexp.MustCompile(`listening on (https?://\S+)`)
	metricsRE = regexp.MustCompile(`^metrics: (http://\S+)/metrics$`)
)

// spawn starts the parleyd nodes and waits until each listens.
func spawn(ctx context.Context, sc spawnConfig) ([]*node, error) {
	if sc.Nodes < 1 {
		sc.Nodes = 1
	}
	if sc.Nodes > 1 && !isPostgres(sc.Store) {
		return nil, fmt.Errorf("--nodes %d needs a shared store (--store postgres://…); SQLite serves one node", sc.Nodes)
	}
	bin := sc.Binary
	if bin == "" {
		var err error
		if bin, err = buildParleyd(ctx, sc.Dir); err != nil {
			return nil, err
		}
	}
	var nodes []*node
	for i := range sc.Nodes {
		args := []string{"serve", "--listen", "127.0.0.1:0", "--data-dir", filepath.Join(sc.Dir, fmt.Sprintf("node%d", i)), "--tls-mode", sc.TLS,
			"--node-id", fmt.Sprintf("bench-%d", i)}
		args = append(args, benchFlags...)
		if sc.Store != "" {
			args = append(args, "--store", sc.Store)
		}
		if sc.Fanout != "" {
			args = append(args, "--fanout", sc.Fanout)
			if sc.FanoutPrefix != "" {
				args = append(args, "--fanout-prefix", sc.FanoutPrefix)
			}
		}
		args = append(args, sc.Extra...)
		n, err := startNode(ctx, bin, args)
		if err != nil {
			stopNodes(nodes)
			return nil, fmt.Errorf("node %d: %v", i, err)
		}
		fmt.Fprintf(sc.Log, "parley-bench: parleyd node %d (pid %d) at %s\n", i, n.pid, n.url)
		nodes = append(nodes, n)
	}
	return nodes, nil
}

// startNode starts one parleyd and reads its URL from the start message.
func startNode(ctx context.Context, bin string, args []string) (*node, error) {
	cmd := exec.Command(bin, args...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	n := &node{cmd: cmd, stderr: &bytes.Buffer{}, done: make(chan error, 1)}
	cmd.Stderr = &limitedBuffer{b: n.stderr, max: 1 << 20}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	n.pid = cmd.Process.Pid
	urls := make(chan [2]string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		var url string
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				url = m[1]
			}
			// The metrics line follows the URL in the start message.
			if m := metricsRE.FindStringSubmatch(sc.Text()); m != nil && url != "" {
				select {
				case urls <- [2]string{url, m[1]}:
				default:
				}
			}
		}
		io.Copy(io.Discard, stdout)
	}()
	go func() { n.done <- cmd.Wait() }()
	t := time.NewTimer(60 * time.Second)
	defer t.Stop()
	select {
	case u := <-urls:
		n.url, n.metrics = u[0], u[1]
	case err := <-n.done:
		return nil, fmt.Errorf("parleyd exited (%v): %s", err, strings.TrimSpace(n.stderr.String()))
	case <-t.C:
		n.stop()
		return nil, errors.New("parleyd did not start within 60 s")
	case <-ctx.Done():
		n.stop()
		return nil, ctx.Err()
	}
	// Wait for readiness.
	hc := &http.Client{Timeout: 2 * time.Second}
	last := ""
	for range 100 {
		resp, err := hc.Get(n.url + "/readyz")
		if err == nil {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return n, nil
			}
			last = fmt.Sprintf("%s %s", resp.Status, bytes.TrimSpace(body))
		} else {
			last = err.Error()
		}
		time.Sleep(100 * time.Millisecond)
	}
	n.stop()
	return nil, fmt.Errorf("parleyd at %s not ready within 10 s (/readyz: %s): %s", n.url, last, strings.TrimSpace(n.stderr.String()))
}

// stop ends the node with SIGTERM (SIGKILL after 30 s).
func (n *node) stop() {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
	case <-time.After(30 * time.Second):
		n.cmd.Process.Kill()
		<-n.done
	}
}

// stopNodes stops every node.
func stopNodes(nodes []*node) {
	for _, n := range nodes {
		n.stop()
	}
}

// limitedBuffer keeps the first max bytes written.
type limitedBuffer struct {
	b   *bytes.Buffer
	max int
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.b.Len(); room > 0 {
		l.b.Write(p[:min(len(p), room)])
	}
	return len(p), nil
}

// procRSS returns the resident set size of a process from
// /proc/PID/status (VmRSS).
func procRSS(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			f := strings.Fields(v)
			if len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, errors.New("no VmRSS")
}

// scrape reads the server's Prometheus metrics (unlabelled series and
// labelled ones under their full name).
func scrape(ctx context.Context, hc *http.Client, base string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", base+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := hc.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return nil, fmt.Errorf("GET /metrics: %s", resp.Status)
	}
	m := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		if v, err := strconv.ParseFloat(line[i+1:], 64); err == nil {
			m[line[:i]] = v
		}
	}
	return m, sc.Err()
}

// scrapeAll scrapes every server and sums each series over them (the
// group-commit counters of a cluster are per node).
func scrapeAll(ctx context.Context, hc *http.Client, bases []string) (map[string]float64, error) {
	sum := map[string]float64{}
	for _, base := range bases {
		m, err := scrape(ctx, hc, base)
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			sum[k] += v
		}
	}
	return sum, nil
}

// memSample is the server's memory at one moment.
type memSample struct {
	HeapAlloc  float64 `json:"heap_alloc_bytes"`
	HeapInuse  float64 `json:"heap_inuse_bytes"`
	StackInuse float64 `json:"stack_inuse_bytes"`
	RSS        float64 `json:"rss_bytes"`      // RSS is process_resident_memory_bytes.
	ProcRSS    float64 `json:"proc_rss_bytes"` // ProcRSS is VmRSS of a spawned server (0 otherwise).
	Goroutines float64 `json:"goroutines"`
	AfterGC    bool    `json:"after_gc"` // AfterGC is true when a GC cycle ended just before.
	Conns      float64 `json:"connections"`
}

// sampleMemory measures the server's memory right after a garbage
// collection: it scrapes /metrics (each scrape allocates) until the GC
// count moves, at most for 30 s or 5,000 scrapes, so that the heap holds
// little garbage.
func sampleMemory(ctx context.Context, hc *http.Client, base string, pid int) (memSample, error) {
	m0, err := scrape(ctx, hc, base)
	if err != nil {
		return memSample{}, err
	}
	gc0 := m0["go_gc_duration_seconds_count"]
	m := m0
	after := false
	deadline := time.Now().Add(30 * time.Second)
	for i := 0; i < 5000 && time.Now().Before(deadline); i++ {
		if m, err = scrape(ctx, hc, base); err != nil {
			return memSample{}, err
		}
		if m["go_gc_duration_seconds_count"] > gc0 {
			after = true
			break
		}
	}
	s := memSample{HeapAlloc: m["go_memstats_heap_alloc_bytes"], HeapInuse: m["go_memstats_heap_inuse_bytes"],
		StackInuse: m["go_memstats_stack_inuse_bytes"], RSS: m["process_resident_memory_bytes"],
		Goroutines: m["go_goroutines"], AfterGC: after, Conns: m["parley_connections"]}
	if pid > 0 {
		if r, err := procRSS(pid); err == nil {
			s.ProcRSS = float64(r)
		}
	}
	return s, nil
}

// procCPU returns the user+system CPU seconds of a process from
// /proc/PID/stat (0 if unreadable).
func procCPU(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (u + st) / 100 // USER_HZ is 100 on Linux
}

// serviceCPU returns the CPU seconds of every local process with the
// command name comm ("postgres": the database's backends and background
// processes; "nats-server") by pid: a service's share of a run on the
// same machine. It counts the service's work for every client, not only
// for the bench.
func serviceCPU(comm string) map[int]float64 {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return map[int]float64{}
	}
	cpu := map[int]float64{}
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if c, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid)); err == nil && strings.TrimSpace(string(c)) == comm {
			cpu[pid] = procCPU(pid)
		}
	}
	return cpu
}
