package main

import (
	"bytes"
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/internal/testenv"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// The cluster test: three parleyd processes on one PostgreSQL schema and
// one NATS server, clients spread over them.
//
// PostgreSQL is $PARLEY_TEST_POSTGRES or the local default; a fresh schema
// is used per run and dropped at the end. NATS is a private nats-server
// ($PARLEY_NATS_SERVER, /usr/sbin/nats-server or nats-server on PATH) on a
// free port, so that the test can stop and restart it; without the binary
// the test uses $PARLEY_TEST_NATS (default nats://127.0.0.1:4222) and
// skips the outage scenario. Every run uses a random subject prefix. When
// a service is unreachable the test skips, or fails under CI=true
// (testenv).

// clusterPostgres returns the test database's URL after checking that it
// answers.
func clusterPostgres(t *testing.T) string {
	t.Helper()
	dsn := testenv.Postgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err == nil {
		err = conn.Ping(ctx)
		conn.Close(ctx)
	}
	if err != nil {
		testenv.Unavailable(t, testenv.NeedPostgres, err)
	}
	return dsn
}

// clusterSchema returns a new schema name for the run and drops the schema
// when the test ends (after the nodes, whose cleanups run first).
func clusterSchema(t *testing.T, dsn string) string {
	t.Helper()
	b := make([]byte, 6)
	crand.Read(b)
	schema := "parley_cluster_" + hex.EncodeToString(b)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
			return
		}
		defer conn.Close(ctx)
		if _, err := conn.Exec(ctx, `DROP SCHEMA IF EXISTS `+pgx.Identifier{schema}.Sanitize()+` CASCADE`); err != nil {
			t.Errorf("drop schema %s: %v", schema, err)
		}
	})
	return schema
}

// withQuery adds a query parameter to a URL.
func withQuery(t *testing.T, raw, key, value string) string {
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatalf("PARLEY_TEST_POSTGRES is not a URL: %v", err)
	}
	q := u.Query()
	q.Set(key, value)
	u.RawQuery = q.Encode()
	return u.String()
}

// natsServer is a private nats-server process (core NATS, no JetStream).
type natsServer struct {
	t    *testing.T
	bin  string
	port int
	cmd  *exec.Cmd
	done chan struct{}
	out  *syncBuffer
}

// natsBinary finds nats-server.
func natsBinary() string {
	if p := os.Getenv(testenv.EnvNATSServer); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/sbin/nats-server"); err == nil {
		return "/usr/sbin/nats-server"
	}
	p, _ := exec.LookPath("nats-server")
	return p
}

// freePort returns a loopback TCP port that was free a moment ago.
func freePort(t *testing.T) int {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// url returns the server's client URL.
func (n *natsServer) url() string { return fmt.Sprintf("nats://127.0.0.1:%d", n.port) }

// start runs the server and waits until it accepts connections.
func (n *natsServer) start() {
	n.t.Helper()
	n.out = &syncBuffer{}
	n.cmd = exec.Command(n.bin, "-a", "127.0.0.1", "-p", strconv.Itoa(n.port))
	n.cmd.Stdout, n.cmd.Stderr = n.out, n.out
	if err := n.cmd.Start(); err != nil {
		n.t.Fatalf("start nats-server: %v", err)
	}
	n.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(n.cmd, n.done)
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", n.port), time.Second)
		if err == nil {
			c.Close()
			return
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("nats-server does not accept connections: %v\n%s", err, n.out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL and waits for it.
func (n *natsServer) kill() {
	n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.done
}

// node is one parleyd process of the cluster, plain HTTP on loopback.
type node struct {
	t       *testing.T
	name    string
	cmd     *exec.Cmd
	url     string // url is http://127.0.0.1:PORT.
	stdout  *syncBuffer
	stderr  *syncBuffer
	done    chan struct{}
	exitErr error
}

// launchNode starts a parleyd process; waitUp waits for it.
func launchNode(t *testing.T, bin, name string, args ...string) *node {
	t.Helper()
	n := &node{t: t, name: name, stdout: &syncBuffer{}, stderr: &syncBuffer{}, done: make(chan struct{})}
	n.cmd = exec.Command(bin, append([]string{"--listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0", "--data-dir", filepath.Join(t.TempDir(), name), "--node-id", name}, args...)...)
	n.cmd.Env = append(os.Environ(), "PARLEY_LOG_LEVEL=info")
	n.cmd.Stdout, n.cmd.Stderr = n.stdout, n.stderr
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go func() {
		n.exitErr = n.cmd.Wait()
		close(n.done)
	}()
	t.Cleanup(func() {
		select {
		case <-n.done:
		default:
			n.cmd.Process.Signal(syscall.SIGTERM)
			select {
			case <-n.done:
			case <-time.After(15 * time.Second):
				n.cmd.Process.Kill()
				<-n.done
			}
		}
		if t.Failed() {
			t.Logf("%s stdout:\n%s\n%s stderr:\n%s", name, n.stdout, name, n.stderr)
		}
	})
	return n
}

// waitUp waits until the node printed its URL and answers /readyz.
func (n *node) waitUp() {
	n.t.Helper()
	deadline := time.Now().Add(45 * time.Second)
	for n.url == "" {
		if m := urlRE.FindStringSubmatch(n.stdout.String()); m != nil {
			n.url = m[1]
			break
		}
		select {
		case <-n.done:
			n.t.Fatalf("%s exited: %v\n%s", n.name, n.exitErr, n.stderr)
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			n.t.Fatalf("%s printed no URL:\n%s", n.name, n.stderr)
		}
	}
	if code, _ := n.waitReady(true, time.Until(deadline)); code != http.StatusOK {
		n.t.Fatalf("%s not ready: %d", n.name, code)
	}
}

// readyz returns the status and body of GET /readyz (0 when unreachable).
func (n *node) readyz() (int, string) {
	hc := &http.Client{Timeout: 5 * time.Second}
	resp, err := hc.Get(n.url + "/readyz")
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// waitReady polls /readyz until it is OK (ready) or not OK (!ready), and
// returns the last status and body.
func (n *node) waitReady(ready bool, within time.Duration) (int, string) {
	deadline := time.Now().Add(within)
	for {
		code, body := n.readyz()
		if (code == http.StatusOK) == ready || time.Now().After(deadline) {
			return code, body
		}
		time.Sleep(25 * time.Millisecond)
	}
}

// httpDo sends a JSON request and returns the status and the body; it does
// not touch t, so goroutines may call it.
func httpDo(hc *http.Client, method, url, token string, in any) (int, []byte, error) {
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return 0, nil, err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		return 0, nil, err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp.StatusCode, data, err
}

// clusterMember is a user with one device in the test conversation: its
// MLS group, its WebSocket to one node and everything it received.
type clusterMember struct {
	*testUser
	token string
	group *mls.Group
	conv  protocol.ConversationID

	mu        sync.Mutex
	node      *node
	ws        *websocket.Conn
	wsDone    chan struct{}
	wsErr     error
	got       map[uint64]int            // got counts the pushes of each seq, over every connection.
	entries   map[uint64]protocol.Entry // entries by seq.
	arrived   map[uint64]time.Time      // arrived is when each seq was first pushed.
	last      uint64                    // last is the highest seq pushed.
	acked     map[string]uint64         // acked maps the client ids of "sent" answers to seqs.
	refused   []string
	slots     chan struct{} // slots bounds sends in flight.
	processed uint64        // processed is the last seq given to the MLS group.
	firstAck  chan struct{} // firstAck, if set, is closed at the next "sent" answer.
}

// connect opens the member's WebSocket to n and subscribes from the last
// seq received (or from after, the first time).
func (m *clusterMember) connect(ctx context.Context, n *node, after uint64) error {
	ws, _, err := websocket.Dial(ctx, "ws"+strings.TrimPrefix(n.url, "http")+"/v1/ws", &websocket.DialOptions{
		HTTPHeader: http.Header{"Authorization": {"Bearer " + m.token}},
	})
	if err != nil {
		return fmt.Errorf("%s: dial %s: %v", m.name, n.name, err)
	}
	ws.SetReadLimit(16 << 20)
	m.mu.Lock()
	if m.got == nil {
		m.got, m.entries, m.arrived, m.acked = map[uint64]int{}, map[uint64]protocol.Entry{}, map[uint64]time.Time{}, map[string]uint64{}
		m.last = after
	}
	cursor := m.last
	m.node, m.ws, m.wsDone, m.wsErr = n, ws, make(chan struct{}), nil
	done := m.wsDone
	m.mu.Unlock()
	b, _ := protocol.MarshalFrame(&protocol.SubscribeFrame{Cursors: []protocol.Cursor{{Conversation: m.conv, Seq: cursor}}})
	if err := ws.Write(ctx, websocket.MessageText, b); err != nil {
		return fmt.Errorf("%s: subscribe on %s: %v", m.name, n.name, err)
	}
	go m.read(ctx, ws, done)
	return nil
}

// read records the frames of one connection until it ends.
func (m *clusterMember) read(ctx context.Context, ws *websocket.Conn, done chan struct{}) {
	defer close(done)
	for {
		_, data, err := ws.Read(ctx)
		if err != nil {
			m.mu.Lock()
			m.wsErr = err
			m.mu.Unlock()
			return
		}
		f, err := protocol.UnmarshalFrame(data)
		if err != nil {
			m.mu.Lock()
			m.wsErr = fmt.Errorf("bad frame %q: %v", data, err)
			m.mu.Unlock()
			return
		}
		m.mu.Lock()
		switch f := f.(type) {
		case *protocol.EntryFrame:
			if f.Conversation == m.conv {
				m.got[f.Seq]++
				if m.got[f.Seq] == 1 {
					m.arrived[f.Seq] = time.Now()
					m.entries[f.Seq] = f.Entry
				}
				m.last = max(m.last, f.Seq)
			}
		case *protocol.SentFrame:
			m.acked[f.ClientID] = f.Seq
			m.release()
			if m.firstAck != nil {
				close(m.firstAck)
				m.firstAck = nil
			}
		case *protocol.ErrorFrame:
			m.refused = append(m.refused, fmt.Sprintf("%s: %s %s", f.ClientID, f.Code, f.Message))
			if f.ClientID != "" {
				m.release()
			}
		}
		m.mu.Unlock()
	}
}

// release frees a send slot, if sends are bounded.
func (m *clusterMember) release() {
	if m.slots != nil {
		select {
		case <-m.slots:
		default:
		}
	}
}

// send writes a "send" frame on the current connection.
func (m *clusterMember) send(ctx context.Context, id string, msg []byte) error {
	m.mu.Lock()
	ws := m.ws
	m.mu.Unlock()
	b, err := protocol.MarshalFrame(&protocol.SendFrame{ClientID: id, Conversation: m.conv, Message: msg})
	if err != nil {
		return err
	}
	return ws.Write(ctx, websocket.MessageText, b)
}

// waitSeq waits until the member was pushed every seq up to seq.
func (m *clusterMember) waitSeq(seq uint64, within time.Duration) bool {
	deadline := time.Now().Add(within)
	for {
		m.mu.Lock()
		ok := m.last >= seq
		m.mu.Unlock()
		if ok {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// arrival returns when seq was first pushed to the member.
func (m *clusterMember) arrival(seq uint64) (time.Time, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	at, ok := m.arrived[seq]
	return at, ok
}

// catchUp gives the pushed entries after the last processed one to the
// MLS group, in order, and returns the plaintexts of other members'
// application messages. Own entries are skipped (a sender cannot decrypt
// its own messages; its own commits were merged when accepted).
func (m *clusterMember) catchUp(t *testing.T) []string {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	var plain []string
	for seq := m.processed + 1; seq <= m.last; seq++ {
		e, ok := m.entries[seq]
		if !ok {
			t.Fatalf("%s: seq %d was never pushed (last %d)", m.name, seq, m.last)
		}
		m.processed = seq
		if e.Sender == m.device {
			continue
		}
		p, err := m.group.Process(e.Data)
		if err != nil {
			t.Fatalf("%s: process seq %d (%s from %s): %v", m.name, seq, e.Kind, e.Sender, err)
		}
		switch {
		case p.Commit != nil:
			if err := m.group.MergeStagedCommit(p.Commit); err != nil {
				t.Fatalf("%s: merge commit at seq %d: %v", m.name, seq, err)
			}
		case p.ApplicationData != nil:
			plain = append(plain, string(p.ApplicationData))
		}
	}
	return plain
}

// checkExactlyOnce checks that the member was pushed every seq in
// (from, to] exactly once.
func (m *clusterMember) checkExactlyOnce(t *testing.T, from, to uint64) {
	t.Helper()
	m.mu.Lock()
	defer m.mu.Unlock()
	bad := 0
	for seq := from + 1; seq <= to; seq++ {
		if n := m.got[seq]; n != 1 {
			bad++
			if bad <= 5 {
				t.Errorf("%s was pushed seq %d %d times, want once", m.name, seq, n)
			}
		}
	}
	if bad > 0 {
		t.Errorf("%s: %d of %d seqs not pushed exactly once", m.name, bad, to-from)
	}
}

// TestCluster runs three parleyd nodes as processes on one PostgreSQL
// schema and one NATS server, with alice, bob and carol connected to
// different nodes, through four scenarios in order: cross-node push and a
// shared attachment, a commit race across nodes, a node killed with SIGKILL
// in the middle of traffic, and a NATS outage.
func TestCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three parleyd processes and nats-server")
	}
	start := time.Now()
	dsn := clusterPostgres(t)
	var nats *natsServer
	var natsURL string
	if bin := natsBinary(); bin != "" {
		nats = &natsServer{t: t, bin: bin, port: freePort(t)}
		nats.start()
		t.Cleanup(func() { nats.kill() })
		natsURL = nats.url()
	} else {
		natsURL = testenv.NATS(t)
	}
	schema := clusterSchema(t, dsn)
	b := make([]byte, 4)
	crand.Read(b)
	prefix := "parleytest." + hex.EncodeToString(b)
	t.Logf("PostgreSQL schema %s, NATS %s prefix %s", schema, natsURL, prefix)

	bin := buildParleyd(t)
	tBuilt := time.Now()
	args := []string{
		"--tls-mode", "off", "--open-registration",
		"--store", withQuery(t, dsn, "schema", schema), "--store-max-conns", "8",
		"--fanout", natsURL, "--fanout-prefix", prefix,
		"--rate-limits-posts-per-device-per-second", "1e6", "--rate-limits-posts-per-device-burst", "1000000",
		"--rate-limits-requests-per-ip-per-second", "1e6", "--rate-limits-requests-per-ip-burst", "1000000",
		"--rate-limits-requests-per-user-per-second", "1e6", "--rate-limits-requests-per-user-burst", "1000000",
		"--rate-limits-auth-per-ip-per-second", "1e6", "--rate-limits-auth-per-ip-burst", "1000000",
		"--rate-limits-register-per-ip-per-second", "1e6", "--rate-limits-register-per-ip-burst", "1000000",
		"--websocket-ping-interval", "2s", "--websocket-pong-timeout", "2s",
	}
	// The three start at once: they migrate the new schema under the
	// advisory lock.
	nodes := []*node{launchNode(t, bin, "node-0", args...), launchNode(t, bin, "node-1", args...), launchNode(t, bin, "node-2", args...)}
	for _, n := range nodes {
		n.waitUp()
	}
	for _, n := range nodes {
		for _, want := range []string{"node: " + n.name, "fanout: NATS", "attachments: postgres", "schema " + schema} {
			if !strings.Contains(n.stdout.String(), want) {
				t.Errorf("%s start message lacks %q:\n%s", n.name, want, n.stdout)
			}
		}
	}
	t.Logf("build %v, three nodes ready %v", tBuilt.Sub(start).Round(time.Millisecond), time.Since(tBuilt).Round(time.Millisecond))

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	hc := &http.Client{Timeout: 30 * time.Second}

	// alice on node-0, bob on node-1, carol on node-2: registered, logged
	// in and given KeyPackages through their own nodes.
	var members []*clusterMember
	for i, name := range []string{"alice", "bob", "carol"} {
		m := &clusterMember{testUser: newTestUser(t, name)}
		m.register(t, hc, nodes[i].url, "")
		m.token = m.login(t, hc, nodes[i].url, "localhost")
		members = append(members, m)
	}
	alice, bob, carol := members[0], members[1], members[2]
	kps := map[string]*mls.KeyPackageBundle{}
	for i, m := range []*clusterMember{bob, carol} {
		kp, err := mls.NewKeyPackage(nil, testSuite, m.signer, m.credential(t, "localhost"), mls.KeyPackageOptions{})
		if err != nil {
			t.Fatal(err)
		}
		kps[m.name] = kp
		doJSON(t, hc, "POST", nodes[i+1].url+"/v1/keypackages", m.token,
			protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: kp.KeyPackage}}}, nil, http.StatusOK)
	}

	// alice creates the conversation on node-0 and adds bob and carol,
	// whose KeyPackages she claims there.
	group, err := mls.CreateGroup(nil, testSuite, []byte("cluster-test-group"), alice.signer, alice.credential(t, "localhost"), mls.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	gi, _ := group.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	tree, _ := group.RatchetTree()
	var conv protocol.ConversationInfo
	doJSON(t, hc, "POST", nodes[0].url+"/v1/conversations", alice.token,
		protocol.CreateConversationRequest{GroupID: group.GroupID(), CipherSuite: uint16(testSuite), GroupInfo: gi, RatchetTree: tree}, &conv, http.StatusOK)
	var add [][]byte
	var welcomeTo []protocol.DeviceID
	for _, name := range []string{"bob", "carol"} {
		var claim protocol.ClaimKeyPackagesResponse
		doJSON(t, hc, "POST", nodes[0].url+"/v1/keypackages/claim", alice.token, protocol.ClaimKeyPackagesRequest{User: name, CipherSuite: uint16(testSuite)}, &claim, http.StatusOK)
		if len(claim.KeyPackages) != 1 {
			t.Fatalf("claim %s: %+v", name, claim)
		}
		add = append(add, claim.KeyPackages[0].Data)
		welcomeTo = append(welcomeTo, claim.KeyPackages[0].Device)
	}
	pc, err := group.Commit(mls.CommitOptions{Add: add})
	if err != nil {
		t.Fatal(err)
	}
	if err := group.MergePendingCommit(pc); err != nil {
		t.Fatal(err)
	}
	gi, _ = group.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	tree, _ = group.RatchetTree()
	var hs protocol.HandshakeResponse
	doJSON(t, hc, "POST", fmt.Sprintf("%s/v1/conversations/%d/handshake", nodes[0].url, conv.ID), alice.token, protocol.HandshakeRequest{
		Epoch: 0, Message: pc.Message, GroupInfo: gi, RatchetTree: tree,
		Welcomes: []protocol.Welcome{{Device: welcomeTo[0], Data: pc.Welcome}, {Device: welcomeTo[1], Data: pc.Welcome}},
	}, &hs, http.StatusOK)
	alice.group, alice.processed = group, hs.Seq
	for i, m := range []*clusterMember{bob, carol} {
		n := nodes[i+1]
		var inbox protocol.InboxResponse
		doJSON(t, hc, "GET", n.url+"/v1/inbox?after=0", m.token, nil, &inbox, http.StatusOK)
		var pub protocol.GroupInfoResponse
		doJSON(t, hc, "GET", fmt.Sprintf("%s/v1/conversations/%d/groupinfo", n.url, conv.ID), m.token, nil, &pub, http.StatusOK)
		if len(inbox.Entries) != 1 {
			t.Fatalf("%s's inbox on %s: %+v", m.name, n.name, inbox)
		}
		m.group, err = mls.JoinFromWelcome(nil, inbox.Entries[0].Data, kps[m.name], mls.JoinOptions{RatchetTree: pub.RatchetTree})
		if err != nil {
			t.Fatalf("%s joins: %v", m.name, err)
		}
		m.processed = hs.Seq
	}
	for i, m := range members {
		m.conv = conv.ID
		if err := m.connect(ctx, nodes[i], hs.Seq); err != nil {
			t.Fatal(err)
		}
	}
	head := hs.Seq // the last seq of the log

	// sendHTTP posts an application message of m through n.
	sendHTTP := func(m *clusterMember, n *node, text string) (uint64, time.Time) {
		t.Helper()
		msg, err := m.group.Encrypt([]byte(text), nil)
		if err != nil {
			t.Fatal(err)
		}
		var sr protocol.SendResponse
		doJSON(t, hc, "POST", fmt.Sprintf("%s/v1/conversations/%d/messages", n.url, conv.ID), m.token, protocol.SendRequest{Message: msg}, &sr, http.StatusOK)
		return sr.Seq, time.Now()
	}

	t.Run("push across nodes", func(t *testing.T) {
		began := time.Now()
		var worst time.Duration
		const count = 20
		for i := range count {
			seq, acked := sendHTTP(alice, nodes[0], fmt.Sprintf("alice %d", i))
			head = seq
			for _, m := range []*clusterMember{bob, carol} {
				if !m.waitSeq(seq, 5*time.Second) {
					t.Fatalf("%s on %s was not pushed seq %d from node-0 within 5s", m.name, m.node.name, seq)
				}
				at, _ := m.arrival(seq)
				worst = max(worst, at.Sub(acked))
			}
		}
		// carol sends over her WebSocket on node-2; alice (node-0) and bob
		// (node-1) are pushed her messages.
		for i := range 5 {
			msg, _ := carol.group.Encrypt([]byte(fmt.Sprintf("carol %d", i)), nil)
			if err := carol.send(ctx, "c"+strconv.Itoa(i), msg); err != nil {
				t.Fatal(err)
			}
		}
		head += 5
		for _, m := range []*clusterMember{alice, bob, carol} {
			if !m.waitSeq(head, 5*time.Second) {
				t.Fatalf("%s on %s was not pushed up to seq %d", m.name, m.node.name, head)
			}
		}
		want := map[string][]string{"alice": nil, "bob": nil, "carol": nil}
		for i := range count {
			want["bob"] = append(want["bob"], fmt.Sprintf("alice %d", i))
			want["carol"] = append(want["carol"], fmt.Sprintf("alice %d", i))
		}
		for i := range 5 {
			for _, n := range []string{"alice", "bob"} {
				want[n] = append(want[n], fmt.Sprintf("carol %d", i))
			}
		}
		for _, m := range members {
			if got := m.catchUp(t); strings.Join(got, "|") != strings.Join(want[m.name], "|") {
				t.Errorf("%s decrypted %q, want %q", m.name, got, want[m.name])
			}
			m.checkExactlyOnce(t, hs.Seq, head)
		}
		t.Logf("%d messages from node-0 pushed to node-1 and node-2, slowest push %v after the acknowledgement; 5 from node-2 pushed to node-0 and node-1; %v",
			count, worst.Round(time.Microsecond), time.Since(began).Round(time.Millisecond))

		// An attachment uploaded through node-0 is downloaded whole
		// through node-1 and by range through node-2.
		data := make([]byte, 2<<20+12345)
		crand.Read(data)
		req, _ := http.NewRequest("POST", nodes[0].url+"/v1/attachments", bytes.NewReader(data))
		req.Header.Set("Authorization", "Bearer "+alice.token)
		req.Header.Set("Content-Type", "application/octet-stream")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var info protocol.AttachmentInfo
		json.NewDecoder(resp.Body).Decode(&info)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || info.Size != int64(len(data)) {
			t.Fatalf("upload through node-0: %d %+v", resp.StatusCode, info)
		}
		req, _ = http.NewRequest("GET", nodes[1].url+"/v1/attachments/"+info.ID, nil)
		req.Header.Set("Authorization", "Bearer "+bob.token)
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || !bytes.Equal(got, data) {
			t.Errorf("download through node-1: status %d, %d bytes, equal %t", resp.StatusCode, len(got), bytes.Equal(got, data))
		}
		req, _ = http.NewRequest("GET", nodes[2].url+"/v1/attachments/"+info.ID, nil)
		req.Header.Set("Authorization", "Bearer "+carol.token)
		req.Header.Set("Range", "bytes=1048000-1049999") // across the first chunk boundary
		resp, err = hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		got, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(got, data[1048000:1050000]) {
			t.Errorf("range through node-2: status %d, %d bytes", resp.StatusCode, len(got))
		}
	})
	if t.Failed() {
		return
	}

	t.Run("commit race", func(t *testing.T) {
		epoch := bob.group.Epoch()
		if carol.group.Epoch() != epoch || alice.group.Epoch() != epoch {
			t.Fatalf("epochs differ before the race: alice %d bob %d carol %d", alice.group.Epoch(), epoch, carol.group.Epoch())
		}
		type result struct {
			m      *clusterMember
			pc     *mls.PendingCommit
			status int
			body   []byte
			err    error
		}
		racers := []*clusterMember{bob, carol}
		pcs := make([]*mls.PendingCommit, 2)
		reqs := make([]protocol.HandshakeRequest, 2)
		for i, m := range racers {
			pc, err := m.group.Commit(mls.CommitOptions{ForcePath: true})
			if err != nil {
				t.Fatal(err)
			}
			tree, err := pc.RatchetTree()
			if err != nil {
				t.Fatal(err)
			}
			pcs[i] = pc
			reqs[i] = protocol.HandshakeRequest{Epoch: epoch, Message: pc.Message, GroupInfo: pc.GroupInfo, RatchetTree: tree}
		}
		// Both post at the same moment, bob through node-1 and carol
		// through node-2.
		results := make([]result, 2)
		gate := make(chan struct{})
		var wg sync.WaitGroup
		for i, m := range racers {
			wg.Go(func() {
				<-gate
				st, body, err := httpDo(hc, "POST", fmt.Sprintf("%s/v1/conversations/%d/handshake", m.node.url, conv.ID), m.token, reqs[i])
				results[i] = result{m: m, pc: pcs[i], status: st, body: body, err: err}
			})
		}
		began := time.Now()
		close(gate)
		wg.Wait()
		took := time.Since(began)
		var winner, loser *result
		for i := range results {
			r := &results[i]
			switch {
			case r.err != nil:
				t.Fatalf("%s: %v", r.m.name, r.err)
			case r.status == http.StatusOK:
				if winner != nil {
					t.Fatalf("both commits for epoch %d were accepted", epoch)
				}
				winner = r
			case r.status == http.StatusConflict:
				loser = r
			default:
				t.Fatalf("%s: status %d: %s", r.m.name, r.status, r.body)
			}
		}
		if winner == nil || loser == nil {
			t.Fatalf("want one winner and one stale_epoch: %+v", results)
		}
		var perr protocol.Error
		if err := json.Unmarshal(loser.body, &perr); err != nil || perr.Code != protocol.CodeStaleEpoch || perr.CurrentEpoch == nil || *perr.CurrentEpoch != epoch+1 {
			t.Fatalf("%s lost with %s, want stale_epoch with current epoch %d", loser.m.name, loser.body, epoch+1)
		}
		var won protocol.HandshakeResponse
		json.Unmarshal(winner.body, &won)
		if err := winner.m.group.MergePendingCommit(winner.pc); err != nil {
			t.Fatal(err)
		}
		loser.m.group.DiscardPendingCommit(loser.pc)
		head = won.Seq
		// Everyone is pushed the winning commit and reaches epoch+1 with
		// the same epoch authenticator.
		for _, m := range members {
			if !m.waitSeq(head, 5*time.Second) {
				t.Fatalf("%s was not pushed the winning commit (seq %d)", m.name, head)
			}
			m.catchUp(t)
			if m.group.Epoch() != epoch+1 {
				t.Errorf("%s at epoch %d, want %d", m.name, m.group.Epoch(), epoch+1)
			}
			if !bytes.Equal(m.group.EpochAuthenticator(), winner.m.group.EpochAuthenticator()) {
				t.Errorf("%s disagrees on the epoch authenticator", m.name)
			}
		}
		t.Logf("%s (via %s) won epoch %d at seq %d; %s (via %s) got stale_epoch with current epoch %d; both answers within %v",
			winner.m.name, winner.m.node.name, epoch+1, won.Seq, loser.m.name, loser.m.node.name, *perr.CurrentEpoch, took.Round(time.Millisecond))
	})
	if t.Failed() {
		return
	}

	t.Run("commits through every node", func(t *testing.T) {
		// commitVia posts a commit of m through m's node; every member
		// processes it.
		commitVia := func(m *clusterMember) {
			t.Helper()
			epoch := m.group.Epoch()
			pc, err := m.group.Commit(mls.CommitOptions{ForcePath: true})
			if err != nil {
				t.Fatal(err)
			}
			var hs protocol.HandshakeResponse
			doJSON(t, hc, "POST", fmt.Sprintf("%s/v1/conversations/%d/handshake", m.node.url, conv.ID), m.token,
				protocol.HandshakeRequest{Epoch: epoch, Message: pc.Message, GroupInfo: pc.GroupInfo}, &hs, http.StatusOK)
			if err := m.group.MergePendingCommit(pc); err != nil {
				t.Fatal(err)
			}
			head = hs.Seq
			for _, o := range members {
				if !o.waitSeq(head, 5*time.Second) {
					t.Fatalf("%s was not pushed %s's commit (seq %d)", o.name, m.name, head)
				}
				o.catchUp(t)
				if o.group.Epoch() != epoch+1 {
					t.Fatalf("%s at epoch %d after %s's commit, want %d", o.name, o.group.Epoch(), m.name, epoch+1)
				}
			}
		}
		// Round 1: a node that holds no group of the conversation (the
		// loser of the race dropped it) loads its whole tree.
		for _, m := range members {
			commitVia(m)
		}
		before := treeLoads(t, nodes)
		// Round 2: each node holds the group of its own last commit, two
		// epochs behind, and catches up from the nodes changed since.
		for _, m := range members {
			commitVia(m)
		}
		after := treeLoads(t, nodes)
		for i, n := range nodes {
			whole, changes := after[i][0]-before[i][0], after[i][1]-before[i][1]
			if whole != 0 || changes != 1 {
				t.Errorf("%s, two commits behind, loaded %v whole trees and %v sets of changes; want 0 and 1", n.name, whole, changes)
			}
		}
		t.Logf("tree loads (whole, changes) by node after round 1 %v, after round 2 %v", before, after)
	})
	if t.Failed() {
		return
	}

	t.Run("SIGKILL a node", func(t *testing.T) {
		began := time.Now()
		from := head
		// alice streams over node-0 and carol over node-2, each with up to
		// 8 sends in flight; node-2 is killed after carol's 40th
		// acknowledgement once alice has one, and alice sends the second
		// half of her stream after the kill: the kill falls in the middle
		// of her stream whichever node is faster.
		const perSender, killAfter, window = 150, 40, 8
		alice.slots, carol.slots = make(chan struct{}, window), make(chan struct{}, window)
		sentText := map[string]string{} // client id → plaintext
		sentData := map[string][]byte{} // client id → MLS message
		var sentMu sync.Mutex
		encrypt := func(m *clusterMember, id string) []byte {
			text := m.name + " stream " + id
			msg, err := m.group.Encrypt([]byte(text), nil)
			if err != nil {
				panic(err)
			}
			sentMu.Lock()
			sentText[id], sentData[id] = text, msg
			sentMu.Unlock()
			return msg
		}
		victim := nodes[2]
		killed := make(chan struct{})
		aliceAcked := make(chan struct{}) // closed at alice's first acknowledgement
		alice.mu.Lock()
		alice.firstAck = aliceAcked
		alice.mu.Unlock()
		var killedAt time.Time
		aliceAtKill := 0
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		stream := func(m *clusterMember, tag string, kill bool) {
			for i := 0; i < perSender; i++ {
				id := tag + strconv.Itoa(i)
				select {
				case m.slots <- struct{}{}:
				case <-ctx.Done():
					errs <- fmt.Errorf("%s: timeout", m.name)
					return
				}
				if !kill && i == perSender/2 {
					// alice's stream goes on after the kill, whichever
					// node is faster.
					select {
					case <-killed:
					case <-ctx.Done():
						errs <- fmt.Errorf("%s: no kill while half the stream was sent", m.name)
						return
					}
				}
				if kill && !isClosed(killed) {
					m.mu.Lock()
					n := len(m.acked)
					m.mu.Unlock()
					if n >= killAfter {
						// and the kill comes after alice's stream began.
						select {
						case <-aliceAcked:
						case <-ctx.Done():
							errs <- fmt.Errorf("%s: alice had no send acknowledged", m.name)
							return
						}
						alice.mu.Lock()
						aliceAtKill = len(alice.acked)
						alice.mu.Unlock()
						killedAt = time.Now()
						victim.cmd.Process.Signal(syscall.SIGKILL)
						close(killed)
						return
					}
				}
				if err := m.send(ctx, id, encrypt(m, id)); err != nil {
					if kill && isClosed(killed) {
						return
					}
					errs <- fmt.Errorf("%s: send %s: %v", m.name, id, err)
					return
				}
			}
		}
		wg.Go(func() { stream(alice, "a", false) })
		wg.Go(func() { stream(carol, "c", true) })
		// The kill happens while alice's stream goes on.
		select {
		case <-killed:
		case <-time.After(60 * time.Second):
			t.Fatal("carol's stream did not reach the kill point")
		}
		select {
		case <-victim.done:
		case <-time.After(10 * time.Second):
			t.Fatal("node-2 did not die after SIGKILL")
		}
		<-carol.wsDone
		carol.mu.Lock()
		carolAckedBefore, carolLast := len(carol.acked), carol.last
		carol.mu.Unlock()
		// carol reconnects to node-1 from her last pushed seq and sends
		// the rest of her stream there.
		if err := carol.connect(ctx, nodes[1], 0); err != nil {
			t.Fatal(err)
		}
		reconnected := time.Since(killedAt)
		carol.slots = make(chan struct{}, window)
		wg.Go(func() {
			for i := 0; i < 20; i++ {
				id := "r" + strconv.Itoa(i)
				carol.slots <- struct{}{}
				if err := carol.send(ctx, id, encrypt(carol, id)); err != nil {
					errs <- fmt.Errorf("carol after reconnect: %v", err)
					return
				}
			}
		})
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
		// Wait for every answer on the live connections, then for the log
		// head to reach every live member.
		deadline := time.Now().Add(20 * time.Second)
		for {
			alice.mu.Lock()
			a := len(alice.acked) + len(alice.refused)
			alice.mu.Unlock()
			carol.mu.Lock()
			c := len(carol.acked)
			carol.mu.Unlock()
			if a >= perSender && c-carolAckedBefore >= 20 || time.Now().After(deadline) {
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
		var log []protocol.Entry
		for after := from; ; {
			var page protocol.EntriesResponse
			doJSON(t, hc, "GET", fmt.Sprintf("%s/v1/conversations/%d/entries?after=%d&limit=500", nodes[0].url, conv.ID, after), alice.token, nil, &page, http.StatusOK)
			log = append(log, page.Entries...)
			if len(page.Entries) > 0 {
				after = page.Entries[len(page.Entries)-1].Seq
			}
			if !page.More || len(page.Entries) == 0 {
				break
			}
		}
		if len(log) == 0 {
			t.Fatal("empty log after the kill")
		}
		head = log[len(log)-1].Seq
		for _, m := range members {
			if !m.waitSeq(head, 15*time.Second) {
				m.mu.Lock()
				last := m.last
				m.mu.Unlock()
				t.Fatalf("%s on %s was pushed up to seq %d, head %d", m.name, m.node.name, last, head)
			}
		}
		// The log: gapless, every acknowledged message exactly once at its
		// seq, nothing that was not sent.
		count := map[string]int{}
		bySeq := map[uint64]protocol.Entry{}
		for i, e := range log {
			if e.Seq != from+uint64(i)+1 {
				t.Errorf("entry %d has seq %d: gap or reordering", i, e.Seq)
			}
			bySeq[e.Seq] = e
			count[string(e.Data)]++
		}
		sentMu.Lock()
		defer sentMu.Unlock()
		known := map[string]bool{}
		for _, d := range sentData {
			known[string(d)] = true
		}
		for data, n := range count {
			if !known[data] {
				t.Error("the log holds a message that was never sent")
			} else if n != 1 {
				t.Errorf("a message is stored %d times", n)
			}
		}
		ackedAll := 0
		for _, m := range []*clusterMember{alice, carol} {
			m.mu.Lock()
			for id, seq := range m.acked {
				if !strings.HasPrefix(id, "a") && !strings.HasPrefix(id, "c") && !strings.HasPrefix(id, "r") {
					continue
				}
				if seq <= from {
					continue // an earlier scenario's ack
				}
				ackedAll++
				if e, ok := bySeq[seq]; !ok || !bytes.Equal(e.Data, sentData[id]) {
					t.Errorf("%s's acknowledged %s (seq %d) is not in the log at its seq", m.name, id, seq)
				}
			}
			if len(m.refused) > 0 {
				t.Errorf("%s: %d sends refused, first: %s", m.name, len(m.refused), m.refused[0])
			}
			m.mu.Unlock()
		}
		// Every live member was pushed every entry exactly once, carol
		// over two connections, and decrypts every message of the others
		// exactly once.
		decrypted := map[string]int{}
		for _, m := range members {
			m.checkExactlyOnce(t, from, head)
			for _, p := range m.catchUp(t) {
				decrypted[m.name+": "+p]++
			}
		}
		byData := map[string]protocol.Entry{}
		for _, e := range log {
			byData[string(e.Data)] = e
		}
		for id, text := range sentText {
			e, ok := byData[string(sentData[id])]
			if !ok {
				continue // sent to node-2 but never stored (unacknowledged)
			}
			for _, m := range members {
				if e.Sender == m.device {
					continue
				}
				if n := decrypted[m.name+": "+text]; n != 1 {
					t.Errorf("%s decrypted %q %d times", m.name, text, n)
				}
			}
		}
		if aliceAtKill == 0 || aliceAtKill >= perSender {
			t.Errorf("the kill was not in the middle of alice's stream: %d of %d acknowledged", aliceAtKill, perSender)
		}
		t.Logf("killed node-2 with %d of carol's sends acknowledged there and %d of alice's on node-0 (pushed up to seq %d); carol resumed on node-1 %v after the kill; %d acknowledged messages in the log exactly once, %d entries, %d sent; %v",
			carolAckedBefore, aliceAtKill, carolLast, reconnected.Round(time.Millisecond), ackedAll, len(log), len(sentData), time.Since(began).Round(time.Millisecond))
	})
	if t.Failed() {
		return
	}

	t.Run("NATS outage", func(t *testing.T) {
		if nats == nil {
			testenv.Unavailable(t, testenv.NeedNATSBinary, errors.New("no nats-server binary to stop and restart"))
		}
		began := time.Now()
		live := nodes[:2]
		nats.kill()
		for _, n := range live {
			if code, body := n.waitReady(false, 15*time.Second); code != http.StatusServiceUnavailable || !strings.Contains(body, "NATS") {
				t.Errorf("%s /readyz with NATS down: %d %s", n.name, code, body)
			}
		}
		notReady := time.Since(began)
		// Messages are still accepted through node-0 ...
		from := head
		var seqs []uint64
		for i := range 5 {
			seq, _ := sendHTTP(alice, nodes[0], fmt.Sprintf("during outage %d", i))
			seqs = append(seqs, seq)
		}
		head = seqs[len(seqs)-1]
		// ... and readable through node-1 from the cursor at once.
		var page protocol.EntriesResponse
		doJSON(t, hc, "GET", fmt.Sprintf("%s/v1/conversations/%d/entries?after=%d", nodes[1].url, conv.ID, from), bob.token, nil, &page, http.StatusOK)
		if len(page.Entries) != 5 || page.Entries[4].Seq != head {
			t.Errorf("bob reads %d entries through node-1 during the outage, want 5", len(page.Entries))
		}
		time.Sleep(time.Second)
		bob.mu.Lock()
		pushedDuring := bob.last - from
		bob.mu.Unlock()

		// NATS returns on the same port: the nodes reconnect, resync and
		// push what they missed, and become ready again.
		restarted := time.Now()
		nats.start()
		for _, m := range []*clusterMember{bob, carol} {
			if !m.waitSeq(head, 20*time.Second) {
				t.Fatalf("%s on %s was not pushed the outage's messages within 20s of NATS' return", m.name, m.node.name)
			}
		}
		caughtUp := time.Since(restarted)
		for _, n := range live {
			if code, body := n.waitReady(true, 20*time.Second); code != http.StatusOK {
				t.Errorf("%s /readyz after NATS returned: %d %s", n.name, code, body)
			}
		}
		ready := time.Since(restarted)
		// Push delivery works again.
		var worst time.Duration
		for i := range 5 {
			seq, acked := sendHTTP(alice, nodes[0], fmt.Sprintf("after outage %d", i))
			head = seq
			for _, m := range []*clusterMember{bob, carol} {
				if !m.waitSeq(seq, 5*time.Second) {
					t.Fatalf("%s on %s was not pushed seq %d within 5s after NATS returned", m.name, m.node.name, seq)
				}
				at, _ := m.arrival(seq)
				worst = max(worst, at.Sub(acked))
			}
		}
		for _, m := range members {
			if !m.waitSeq(head, 5*time.Second) {
				t.Errorf("%s on %s was not pushed up to seq %d", m.name, m.node.name, head)
			}
			m.checkExactlyOnce(t, from, head)
		}
		var want []string
		for i := range 5 {
			want = append(want, fmt.Sprintf("during outage %d", i))
		}
		for i := range 5 {
			want = append(want, fmt.Sprintf("after outage %d", i))
		}
		for _, m := range []*clusterMember{bob, carol} {
			if got := m.catchUp(t); strings.Join(got, "|") != strings.Join(want, "|") {
				t.Errorf("%s decrypted %q, want %q", m.name, got, want)
			}
		}
		t.Logf("NATS killed: nodes not ready after %v; 5 messages accepted, %d of them pushed to node-1 while NATS was down; after the restart all pushed within %v, ready within %v; next pushes within %v; %v",
			notReady.Round(time.Millisecond), pushedDuring, caughtUp.Round(time.Millisecond), ready.Round(time.Millisecond), worst.Round(time.Millisecond), time.Since(began).Round(time.Millisecond))
	})

	// The admin commands and the backup work against the cluster's
	// database.
	t.Run("admin and backup", func(t *testing.T) {
		storeArgs := []string{"--store", withQuery(t, dsn, "schema", schema), "--data-dir", t.TempDir()}
		out, err := exec.Command(bin, append([]string{"admin", "users", "list", "--json"}, storeArgs...)...).Output()
		var users protocol.UserList
		if err != nil || json.Unmarshal(out, &users) != nil || len(users.Users) != 3 {
			t.Errorf("admin users list: %v %s", err, out)
		}
		out, err = exec.Command(bin, append([]string{"admin", "stats", "--json"}, storeArgs...)...).Output()
		var s statsJSON
		if err != nil || json.Unmarshal(out, &s) != nil || s.Conversations != 1 || s.Attachments != 1 || s.DatabaseBytes == 0 {
			t.Errorf("admin stats: %v %s", err, out)
		}
		path := filepath.Join(t.TempDir(), "backup.sql")
		if out, err := exec.Command(bin, append([]string{"backup", path}, storeArgs...)...).CombinedOutput(); err != nil {
			t.Errorf("backup: %v %s", err, out)
		} else if b, _ := os.ReadFile(path); !bytes.Contains(b, []byte("COPY entries")) {
			t.Errorf("backup lacks the log")
		}
	})
	for _, n := range nodes[:2] {
		if err := stopNode(n); err != nil {
			t.Errorf("%s: exit after SIGTERM: %v", n.name, err)
		}
		for _, m := range members {
			if strings.Contains(n.stderr.String(), m.token) {
				t.Errorf("a session token appears in %s's log", n.name)
			}
		}
	}
	t.Logf("cluster test took %v", time.Since(start).Round(time.Millisecond))
}

// stopNode stops a node with SIGTERM and returns its exit error.
func stopNode(n *node) error {
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.done:
		return n.exitErr
	case <-time.After(20 * time.Second):
		return errors.New("no exit within 20s")
	}
}

// treeLoads reads each node's parley_follower_tree_loads_total: how many
// handshakes loaded the conversation's whole tree, and how many its
// changes since an epoch the node held in memory.
func treeLoads(t *testing.T, nodes []*node) [][2]float64 {
	t.Helper()
	out := make([][2]float64, len(nodes))
	for i, n := range nodes {
		m := metricsLineRE.FindStringSubmatch(n.stdout.String())
		if m == nil {
			t.Fatalf("%s printed no metrics URL:\n%s", n.name, n.stdout)
		}
		resp, err := http.Get(m[1])
		if err != nil {
			t.Fatalf("%s metrics: %v", n.name, err)
		}
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Fatalf("%s metrics: %d, %v", n.name, resp.StatusCode, err)
		}
		for _, line := range strings.Split(string(body), "\n") {
			for j, how := range []string{"whole", "changes"} {
				if v, ok := strings.CutPrefix(line, `parley_follower_tree_loads_total{how="`+how+`"} `); ok {
					if _, err := fmt.Sscan(v, &out[i][j]); err != nil {
						t.Fatalf("%s metrics: %q: %v", n.name, line, err)
					}
				}
			}
		}
	}
	return out
}
