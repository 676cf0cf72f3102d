package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/internal/latency"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// The large-group scenario: one conversation of --members devices on the
// cipher suite --suite, built with the server's default size limits, then
// --commits application messages of a member, then --commits commits of
// each kind (a member's update with a path, an add of one new member, a
// removal of one member, and a member's external commit), each measured
// on the server: bytes written, CPU, acceptance latency and fan-out to
// every connected member; plus the time a new member takes to join by
// Welcome and the server's memory.
//
// Only the protocol and package mls are used, as a client would: the
// creator's group lives in the coordinator, commits carry what the client
// SDK sends (a GroupInfo with the ratchet tree inline and the
// external_pub extension, one Welcome naming every added device), and the
// joiner's KeyPackage is uploaded and claimed through the KeyPackage
// directory. Unless --fill=false, some members of each batch commit
// with a path during the setup (see fill).

// defaultLargeGroupBatch is large-group's default --batch: the Adds of
// one commit, whose X-Wing KeyPackages (about 2.9 KB each) must fit the
// server's default bound on one MLS message (1 MiB).
const defaultLargeGroupBatch = 250

// lgAwaitTimeout bounds the wait for one commit's fan-out.
const lgAwaitTimeout = 60 * time.Second

// Kinds of the scenario's measured posts: application messages, then
// commits.
const (
	kindMessage  = "message"
	kindUpdate   = "update"
	kindAdd      = "add"
	kindRemove   = "remove"
	kindExternal = "external"
)

// lgRun is the state of a large-group run.
type lgRun struct {
	b     *bench
	cs    mls.CipherSuite
	cfg   *mls.Config
	g     *mls.Group // g is the creator's (device 0's) group.
	token string     // token is the creator's session.
	conv  protocol.ConversationID
	head  uint64
	// members are the connected member devices (the creator first);
	// joiners by Welcome are members too but are not connected.
	members []int
	owner   map[int]int // owner maps a device to its worker.
	tokens  map[int]string
	// commitsMeasured counts the commits measured so far, of every kind.
	commitsMeasured int
	// helpers are the devices that committed fills (fillTree); the
	// measured external commits are theirs.
	helpers []int
	// added are the devices the measured Adds added (members, not
	// connected).
	added []int
	// byKey maps a member's signature key to its device
	// (deviceAt; made when first needed).
	byKey map[string]int
	pg    *pgx.Conn // pg reads the WAL position (PostgreSQL store).
	r     *result
}

// kindStats are the measurements of one commit kind.
type kindStats struct {
	name           string
	accept, fanout latency.Samples
	join           latency.Samples // join is the joining time (add: by Welcome; external: whole external join).
	writeBytes     int64
	walBytes       int64
	cpu, pgCPU     float64
	// acceptWrite, acceptWAL and acceptCPU are the same from the POST to
	// its answer: validating and storing the commit, before the members
	// read it (acknowledgements of the previous commit may overlap).
	acceptWrite, acceptWAL int64
	acceptCPU, acceptPGCPU float64
	stored                 float64 // stored is the bytes the commits stored.
	commits                int     // commits counts the posts measured: commits, or messages
	missing                int
	msgBytes               int
	stateBytes             int // stateBytes is the GroupInfo and ratchet tree sent.
	welcomeBytes           int
	treeSource             map[string]int
}

// unit names what ks measures: messages or commits.
func (ks *kindStats) unit() string {
	if ks.name == kindMessage {
		return "message"
	}
	return "commit"
}

// largeGroup runs the large-group scenario.
func largeGroup(ctx context.Context, o *options, log io.Writer) ([]result, error) {
	n, k := o.members, o.commits
	// Devices 0..n-1 are the members, n..n+k-1 join by Welcome.
	b, err := openBench(ctx, o, n+k, log)
	if err != nil {
		return nil, err
	}
	defer b.close()
	r := &result{Scenario: "large-group", Params: map[string]any{"members": n, "batch": o.batch, "commits": k, "fill": o.fill,
		"suite": fmt.Sprintf("0x%04x", uint16(o.suite)), "servers": len(b.servers), "workers": len(b.pool.procs)}, Setup: b.setup}
	b.tag(r)
	if len(b.nodes) != 1 {
		return []result{*r}, errors.New("large-group measures one spawned parleyd (--spawn, --nodes 1)")
	}
	lg := &lgRun{b: b, cs: o.suite, cfg: &mls.Config{}, owner: map[int]int{}, tokens: map[int]string{}, r: r}
	if b.schema != "" {
		if lg.pg, err = pgx.Connect(ctx, pgConnString(b.storeURL)); err != nil {
			return []result{*r}, fmt.Errorf("connect to PostgreSQL for the WAL position: %v", err)
		}
		defer lg.pg.Close(context.Background())
	}
	if err := b.register(ctx, n+k); err != nil {
		return []result{*r}, err
	}
	for w, wp := range b.pool.procs {
		for _, d := range wp.devices {
			lg.owner[d] = w
		}
	}
	cpu0 := procCPU(b.pid())
	err = lg.build(ctx, n, o.batch)
	r.Setup["build_server_cpu_seconds"] = procCPU(b.pid()) - cpu0
	r.Setup["members_reached"] = float64(len(lg.members))
	r.add("members reached with the default limits", float64(len(lg.members)), "", "", nil)
	lg.addMemory("after setup")
	if err != nil {
		r.Notes = append(r.Notes, fmt.Sprintf("setup failed at %d of %d members: %v", len(lg.members), n, err))
		return []result{*r}, fmt.Errorf("setup failed at %d of %d members: %w", len(lg.members), n, err)
	}
	if err := lg.quietUpdates(ctx, k); err != nil {
		return []result{*r}, err
	}
	if err := lg.connect(ctx); err != nil {
		return []result{*r}, err
	}
	var errs []error
	var commits0 serverIO // commits0 is the server's cost before the first commit
	n0 := 0
	for _, kind := range []string{kindMessage, kindUpdate, kindAdd, kindRemove, kindExternal} {
		if kind == kindUpdate {
			if commits0, err = lg.sample(ctx); err != nil {
				return []result{*r}, err
			}
			n0 = lg.commitsMeasured
		}
		ks := &kindStats{name: kind, treeSource: map[string]int{}}
		fmt.Fprintf(log, "parley-bench: %d %s %ss at %d members\n", k, kind, ks.unit(), len(lg.g.Members()))
		for i := range k {
			if err := lg.postOne(ctx, ks, i); err != nil {
				r.Notes = append(r.Notes, fmt.Sprintf("%s %s %d of %d failed at %d members: %v", kind, ks.unit(), i+1, k, len(lg.g.Members()), err))
				errs = append(errs, fmt.Errorf("%s %s %d: %w", kind, ks.unit(), i+1, err))
				break
			}
		}
		lg.report(ks)
	}
	if err := lg.reportAllCommits(ctx, commits0, lg.commitsMeasured-n0); err != nil {
		errs = append(errs, err)
	}
	lg.addMemory("at the end")
	return []result{*r}, errors.Join(errs...)
}

// login returns a session of device i.
func (lg *lgRun) login(ctx context.Context, i int) (string, error) {
	if t, ok := lg.tokens[i]; ok {
		return t, nil
	}
	t, err := lg.b.api.login(ctx, lg.b.info.Name, newIdent(lg.b.run, i))
	if err != nil {
		return "", fmt.Errorf("log in device %d: %v", i, err)
	}
	lg.tokens[i] = t
	return t, nil
}

// identity returns device i's MLS signer and credential.
func (lg *lgRun) identity(i int) (*mls.Signer, mls.Credential, error) {
	d := newIdent(lg.b.run, i)
	s, err := mls.NewSigner(lg.cs, d.key.Seed())
	if err != nil {
		return nil, mls.Credential{}, fmt.Errorf("signer of device %d: %v", i, err)
	}
	c, err := d.credential(lg.b.info.Name)
	return s, c, err
}

// commitOpts are the options the client SDK commits with.
func commitOpts() mls.CommitOptions {
	return mls.CommitOptions{ExternalPub: true, IncludePending: true}
}

// build creates the conversation (creator device 0) and adds devices
// 1..n-1 in commits of batch Adds, from KeyPackages generated locally,
// each commit with one Welcome naming the added devices.
func (lg *lgRun) build(ctx context.Context, n, batch int) error {
	start := time.Now()
	tok, err := lg.login(ctx, 0)
	if err != nil {
		return err
	}
	lg.token = tok
	signer, cred, err := lg.identity(0)
	if err != nil {
		return err
	}
	gid := make([]byte, 16)
	rand.Read(gid)
	if lg.g, err = mls.CreateGroup(lg.cfg, lg.cs, gid, signer, cred, mls.CreateOptions{}); err != nil {
		return fmt.Errorf("create group: %v", err)
	}
	gi, err := lg.g.GroupInfo(mls.GroupInfoOptions{ExternalPub: true})
	if err != nil {
		return err
	}
	tree, err := lg.g.RatchetTree()
	if err != nil {
		return err
	}
	var ci protocol.ConversationInfo
	if err := lg.b.api.do(ctx, "POST", "/v1/conversations", tok, protocol.CreateConversationRequest{GroupID: gid, CipherSuite: uint16(lg.cs), GroupInfo: gi, RatchetTree: tree}, &ci); err != nil {
		return err
	}
	lg.conv, lg.members = ci.ID, []int{0}
	kps := make([][]byte, n)
	idx := make([]int, n-1)
	for i := range idx {
		idx[i] = i + 1
	}
	if err := parallel(ctx, runtime.GOMAXPROCS(0), idx, func(ctx context.Context, i int) error {
		s, c, err := lg.identity(i)
		if err != nil {
			return err
		}
		kp, err := mls.NewKeyPackage(lg.cfg, lg.cs, s, c, mls.KeyPackageOptions{})
		if err != nil {
			return fmt.Errorf("KeyPackage of device %d: %v", i, err)
		}
		kps[i] = kp.KeyPackage
		return nil
	}); err != nil {
		return err
	}
	if n > 1 {
		lg.r.Setup["keypackage_bytes"] = float64(len(kps[1]))
	}
	commits := 0
	for lo := 1; lo < n; lo += batch {
		hi := min(lo+batch, n)
		opts := commitOpts()
		opts.Add = kps[lo:hi]
		pc, err := lg.g.Commit(opts)
		if err != nil {
			return fmt.Errorf("commit adding devices %d to %d: %v", lo, hi-1, err)
		}
		var devs []protocol.DeviceID
		for i := lo; i < hi; i++ {
			devs = append(devs, newIdent(lg.b.run, i).device)
		}
		req := protocol.HandshakeRequest{Epoch: lg.g.Epoch(), Message: pc.Message, GroupInfo: pc.GroupInfo,
			Welcomes: []protocol.Welcome{{Devices: devs, Data: pc.Welcome}}}
		var hr protocol.HandshakeResponse
		if err := lg.b.api.do(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", lg.conv), tok, req, &hr); err != nil {
			lg.g.DiscardPendingCommit(pc)
			var pe *protocol.Error
			if errors.As(err, &pe) && pe.Code == protocol.CodeTooLarge && hi-lo > 1 {
				// Smaller commits carry the same tree: halve the batch
				// and go on, so that the size the limits allow is found.
				batch = (hi - lo) / 2
				lg.r.Notes = append(lg.r.Notes, fmt.Sprintf("at %d members a commit of %d Adds was refused (%v); batch halved to %d", len(lg.members), hi-lo, err, batch))
				fmt.Fprintf(lg.b.log, "parley-bench: at %d members: %v; batch halved to %d\n", len(lg.members), err, batch)
				lo -= batch
				continue
			}
			return fmt.Errorf("commit adding devices %d to %d (commit %d bytes, GroupInfo %d bytes, Welcome %d bytes): %w",
				lo, hi-1, len(pc.Message), len(pc.GroupInfo), len(pc.Welcome), err)
		}
		if err := lg.g.MergePendingCommit(pc); err != nil {
			return err
		}
		for i := lo; i < hi; i++ {
			lg.members = append(lg.members, i)
		}
		lg.head = hr.Seq
		commits++
		lg.r.Setup["build_commits"] = float64(commits)
		lg.r.Setup["build_seconds"] = time.Since(start).Seconds()
		if lg.b.o.fill {
			if err := lg.fillTree(ctx, false); err != nil {
				return err
			}
		}
		lg.r.Setup["last_add_commit_bytes"] = float64(len(pc.Message))
		lg.r.Setup["last_groupinfo_bytes"] = float64(len(pc.GroupInfo))
		lg.r.Setup["last_welcome_bytes"] = float64(len(pc.Welcome))
		fmt.Fprintf(lg.b.log, "parley-bench: %d members (GroupInfo %d bytes, Welcome %d bytes) after %v\n",
			len(lg.members), len(pc.GroupInfo), len(pc.Welcome), time.Since(start).Round(time.Millisecond))
	}
	if t, err := lg.g.RatchetTree(); err == nil {
		lg.r.Setup["tree_bytes"] = float64(len(t))
	}
	return nil
}

// fillTree has the members that mls.Group.TreeFiller names commit with a
// path, as the SDK's members do after the commit that named them
// (client/fill.go), until none is named. Without it every parent node
// stays blank after Add-only commits and a path commit encrypts to each
// member under every blank copath node (~1.2 KB per member with X-Wing).
// With measure, each fill's fan-out is awaited, apart from the measured
// kinds.
func (lg *lgRun) fillTree(ctx context.Context, measure bool) error {
	if lg.g.MemberCount() < client.FillMinMembers {
		return nil
	}
	var ks *kindStats
	if measure {
		ks = &kindStats{name: "fill", treeSource: map[string]int{}}
	}
	// One pass fills the tree: a named member's path holds every
	// fillable node above it. The rule is asked again, at most twice,
	// so that a node a pass left blank is filled or reported below.
	for range 3 {
		fillers := lg.g.TreeFillers()
		if len(fillers) == 0 {
			return nil
		}
		for _, l := range fillers {
			if !lg.g.TreeFiller(l) {
				continue
			}
			if err := lg.fillOne(ctx, ks, l); err != nil {
				return fmt.Errorf("fill the tree at leaf %d: %w", l, err)
			}
		}
	}
	if left := lg.g.TreeFillers(); len(left) > 0 {
		lg.r.Notes = append(lg.r.Notes, fmt.Sprintf("at %d members, %d members the tree-fill rule names are not devices of the bench and did not commit", len(lg.members), len(left)))
	}
	return nil
}

// fillOne has the member at leaf l commit with a path: the creator a
// self-update; another member, which the bench keeps no group state
// for, a resync at its own leaf, which sets the same nodes.
func (lg *lgRun) fillOne(ctx context.Context, ks *kindStats, l mls.LeafIndex) error {
	if l == lg.g.OwnLeaf() {
		opts := commitOpts()
		opts.ForcePath = true
		err := lg.creatorCommit(ctx, ks, opts, nil, map[int]bool{0: true})
		if err == nil {
			lg.r.Setup["fill_commits"]++
		}
		return err
	}
	d, ok := lg.deviceAt(l)
	if !ok {
		lg.r.Setup["fills_skipped"]++ // not a device of the bench
		return nil
	}
	if err := lg.externalOne(ctx, ks, d); err != nil {
		return err
	}
	lg.helpers = append(lg.helpers, d)
	lg.r.Setup["fill_commits"]++
	return nil
}

// connect connects the member devices, subscribed at the head with the
// Welcome in their inbox processed.
func (lg *lgRun) connect(ctx context.Context) error {
	per := make([][]int, len(lg.b.pool.procs))
	cursors := map[int][]protocol.Cursor{}
	for _, d := range lg.members {
		per[lg.owner[d]] = append(per[lg.owner[d]], d)
		cursors[d] = []protocol.Cursor{{Conversation: lg.conv, Seq: lg.head}}
	}
	start := time.Now()
	replies, err := lg.b.pool.all(ctx, func(w int, _ *workerProc) *command {
		cs := map[int][]protocol.Cursor{}
		inbox := map[int]uint64{}
		for _, d := range per[w] {
			cs[d] = cursors[d]
			if d != 0 {
				// Members joined by the Welcome of their batch, the
				// first entry of their inbox.
				inbox[d] = 1
			}
		}
		return &command{Op: "connect", Devices: per[w], Cursors: cs, Inbox: inbox}
	})
	c := 0
	for _, r := range replies {
		c += r.Connected
	}
	lg.r.Setup["connect_seconds"] = time.Since(start).Seconds()
	fmt.Fprintf(lg.b.log, "parley-bench: connected %d member devices in %v\n", c, time.Since(start).Round(time.Millisecond))
	return err
}

// serverIO is the server's cumulative cost at one moment.
type serverIO struct {
	write int64   // write is parleyd's write_bytes.
	wal   int64   // wal is PostgreSQL's WAL position in bytes.
	cpu   float64 // cpu is parleyd's user+system seconds.
	// stored is parleyd's parley_commit_stored_bytes_sum: the bytes the
	// commits accepted so far stored (message, GroupInfo, follower
	// state, changed tree nodes, Welcomes).
	stored float64
	pgCPU  float64 // pgCPU is the CPU seconds of every local postgres process.
}

// sample reads the server's cost counters.
func (lg *lgRun) sample(ctx context.Context) (serverIO, error) {
	s := serverIO{cpu: procCPU(lg.b.pid())}
	var err error
	if s.write, err = procIOWriteBytes(lg.b.pid()); err != nil {
		return s, err
	}
	if len(lg.b.metrics) > 0 {
		m, err := scrape(ctx, lg.b.hc, lg.b.metrics[0])
		if err != nil {
			return s, fmt.Errorf("read parleyd's metrics: %v", err)
		}
		s.stored = m["parley_commit_stored_bytes_sum"]
	}
	if lg.pg != nil {
		if err := lg.pg.QueryRow(ctx, "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), '0/0')::bigint").Scan(&s.wal); err != nil {
			return s, fmt.Errorf("read the WAL position: %v", err)
		}
		for _, c := range serviceCPU("postgres") {
			s.pgCPU += c
		}
	}
	return s, nil
}

// measured posts a message or handshake prepared by the caller (post,
// which returns the entry's seq), waits until every connected member but
// skip received it, and adds the server's cost, the acceptance latency
// and the fan-out time to ks.
func (lg *lgRun) measured(ctx context.Context, ks *kindStats, skip map[int]bool, post func() (uint64, error)) error {
	s0, err := lg.sample(ctx)
	if err != nil {
		return err
	}
	t0 := time.Now()
	seq, err := post()
	accept := time.Since(t0)
	if err != nil {
		return err
	}
	sa, err := lg.sample(ctx)
	if err != nil {
		return err
	}
	ks.stored += sa.stored - s0.stored
	ks.acceptWrite += sa.write - s0.write
	ks.acceptWAL += sa.wal - s0.wal
	ks.acceptCPU += sa.cpu - s0.cpu
	ks.acceptPGCPU += sa.pgCPU - s0.pgCPU
	lg.head = seq
	per := make([][]int, len(lg.b.pool.procs))
	for _, d := range lg.members {
		if !skip[d] {
			per[lg.owner[d]] = append(per[lg.owner[d]], d)
		}
	}
	replies, err := lg.b.pool.all(ctx, func(w int, _ *workerProc) *command {
		return &command{Op: "await", Devices: per[w], Conv: lg.conv, Seq: seq, Timeout: lgAwaitTimeout}
	})
	if err != nil {
		return err
	}
	s1, err := lg.sample(ctx)
	if err != nil {
		return err
	}
	var last int64
	for _, r := range replies {
		last = max(last, r.Last)
		ks.missing += r.Missing
	}
	ks.accept.Add(accept)
	fanout := time.Duration(0)
	if last > 0 {
		fanout = time.Duration(last - t0.UnixNano())
		ks.fanout.Add(fanout)
	}
	fmt.Fprintf(lg.b.log, "parley-bench: %s %d: %d bytes, accepted in %v, fan-out %v, parleyd CPU %v\n", ks.name, ks.commits+1, ks.msgBytes,
		accept.Round(time.Millisecond), fanout.Round(time.Millisecond), time.Duration((s1.cpu-s0.cpu)*float64(time.Second)).Round(time.Millisecond))
	ks.writeBytes += s1.write - s0.write
	ks.walBytes += s1.wal - s0.wal
	ks.cpu += s1.cpu - s0.cpu
	ks.pgCPU += s1.pgCPU - s0.pgCPU
	ks.commits++
	if ks.unit() == "commit" {
		lg.commitsMeasured++
	}
	return nil
}

// reportAllCommits adds what the server wrote per commit over every
// commit since s0 (n of them: the measured kinds and the tree fills
// after adds and removals), fan-out and acknowledgements included. A
// kind's own figure holds a WAL checkpoint or none, by chance, within its
// few commits; over all of them the checkpoints are spread as in a long
// run.
func (lg *lgRun) reportAllCommits(ctx context.Context, s0 serverIO, n int) error {
	if n == 0 {
		return nil
	}
	s1, err := lg.sample(ctx)
	if err != nil {
		return err
	}
	c := float64(n)
	lg.r.add("all measured commits (fills included): commits", c, "", "", nil)
	lg.r.add("all measured commits: server write_bytes per commit, checkpoints included", float64(s1.write-s0.write)/c/1024, "KiB", "", nil)
	if lg.pg != nil {
		lg.r.add("all measured commits: PostgreSQL WAL per commit (whole cluster)", float64(s1.wal-s0.wal)/c/1024, "KiB", "", nil)
	}
	return nil
}

// postOne makes, posts and measures the i-th message or commit of a
// kind.
func (lg *lgRun) postOne(ctx context.Context, ks *kindStats, i int) error {
	switch ks.name {
	case kindMessage:
		return lg.sendOne(ctx, ks, i)
	case kindUpdate:
		opts := commitOpts()
		opts.ForcePath = true
		return lg.creatorCommit(ctx, ks, opts, nil, map[int]bool{0: true})
	case kindAdd:
		j := lg.b.o.members + i
		if err := lg.addOne(ctx, ks, j); err != nil {
			return err
		}
		lg.added = append(lg.added, j)
		return lg.fillTree(ctx, true)
	case kindRemove:
		if len(lg.members) < 3 {
			return errors.New("too few connected members left to remove one")
		}
		victim := lg.members[len(lg.members)-1]
		leaf, ok := lg.leafOf(victim)
		if !ok {
			return fmt.Errorf("device %d has no leaf", victim)
		}
		opts := commitOpts()
		opts.Remove = []mls.LeafIndex{leaf}
		if err := lg.creatorCommit(ctx, ks, opts, nil, map[int]bool{0: true, victim: true}); err != nil {
			return err
		}
		lg.members = lg.members[:len(lg.members)-1]
		return lg.fillTree(ctx, true)
	case kindExternal:
		return lg.externalOne(ctx, ks, lg.externalCommitter(i))
	}
	return fmt.Errorf("unknown commit kind %q", ks.name)
}

// deviceAt returns the member device at leaf l of the creator's group:
// a connected one, or one a measured Add added.
func (lg *lgRun) deviceAt(l mls.LeafIndex) (int, bool) {
	m, ok := lg.g.Member(l)
	if !ok {
		return 0, false
	}
	d, ok := lg.byKey[string(m.SignatureKey)]
	if !ok && len(lg.byKey) < len(lg.members)+len(lg.added) {
		// Members were added since the map was made.
		lg.byKey = make(map[string]int, len(lg.members)+len(lg.added))
		for _, d := range slices.Concat(lg.members, lg.added) {
			lg.byKey[string(newIdent(lg.b.run, d).pub())] = d
		}
		d, ok = lg.byKey[string(m.SignatureKey)]
	}
	return d, ok && (slices.Contains(lg.members, d) || slices.Contains(lg.added, d))
}

// externalCommitter returns the device of the i-th external commit: a
// connected member other than the creator, from the helpers of fill when
// there are any.
func (lg *lgRun) externalCommitter(i int) int {
	in := map[int]bool{}
	for _, d := range lg.members[1:] {
		in[d] = true
	}
	var from []int
	for _, h := range lg.helpers {
		if in[h] {
			from = append(from, h)
		}
	}
	if len(from) == 0 {
		from = lg.members[1:]
	}
	return from[i%len(from)]
}

// leafOf returns device i's leaf in the creator's group.
func (lg *lgRun) leafOf(i int) (mls.LeafIndex, bool) {
	pub := newIdent(lg.b.run, i).pub()
	for _, m := range lg.g.Members() {
		if string(m.SignatureKey) == string(pub) {
			return m.Leaf, true
		}
	}
	return 0, false
}

// creatorCommit commits opts in the creator's group and posts it,
// measured into ks (unmeasured with a nil ks, as in setup); welcomes are
// the devices the commit's Welcome is for.
func (lg *lgRun) creatorCommit(ctx context.Context, ks *kindStats, opts mls.CommitOptions, welcomes []protocol.DeviceID, skip map[int]bool) error {
	pc, err := lg.g.Commit(opts)
	if err != nil {
		return fmt.Errorf("commit: %v", err)
	}
	req := protocol.HandshakeRequest{Epoch: lg.g.Epoch(), Message: pc.Message, GroupInfo: pc.GroupInfo}
	if len(welcomes) > 0 {
		req.Welcomes = []protocol.Welcome{{Devices: welcomes, Data: pc.Welcome}}
	}
	post := func() (uint64, error) {
		var hr protocol.HandshakeResponse
		err := lg.b.api.do(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", lg.conv), lg.token, req, &hr)
		return hr.Seq, err
	}
	if ks != nil {
		if len(welcomes) > 0 {
			ks.welcomeBytes = len(pc.Welcome)
		}
		ks.msgBytes, ks.stateBytes = len(pc.Message), len(pc.GroupInfo)
		err = lg.measured(ctx, ks, skip, post)
	} else {
		var seq uint64
		if seq, err = post(); err == nil {
			lg.head = seq
		}
	}
	if err != nil {
		lg.g.DiscardPendingCommit(pc)
		return fmt.Errorf("commit %d bytes, GroupInfo %d bytes: %w", len(pc.Message), len(pc.GroupInfo), err)
	}
	return lg.g.MergePendingCommit(pc)
}

// sendOne sends the creator's i-th application message to the group
// (a text of the size of a short chat message, as the SDK pads it) and
// measures its post and fan-out as a commit's.
func (lg *lgRun) sendOne(ctx context.Context, ks *kindStats, i int) error {
	text := make([]byte, 128)
	copy(text, fmt.Sprintf("message %d to %d members", i, len(lg.members)))
	msg, err := lg.g.Encrypt(text, nil)
	if err != nil {
		return fmt.Errorf("encrypt message %d: %v", i, err)
	}
	ks.msgBytes = len(msg)
	return lg.measured(ctx, ks, map[int]bool{0: true}, func() (uint64, error) {
		var sr protocol.SendResponse
		err := lg.b.api.do(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/messages", lg.conv), lg.token, protocol.SendRequest{Message: msg}, &sr)
		return sr.Seq, err
	})
}

// addOne adds device j by its uploaded and claimed KeyPackage, then
// joins it by the Welcome from its inbox and records the joining time.
func (lg *lgRun) addOne(ctx context.Context, ks *kindStats, j int) error {
	tok, err := lg.login(ctx, j)
	if err != nil {
		return err
	}
	s, c, err := lg.identity(j)
	if err != nil {
		return err
	}
	bundle, err := mls.NewKeyPackage(lg.cfg, lg.cs, s, c, mls.KeyPackageOptions{})
	if err != nil {
		return fmt.Errorf("KeyPackage of device %d: %v", j, err)
	}
	up := protocol.UploadKeyPackagesRequest{KeyPackages: []protocol.KeyPackageUpload{{Data: bundle.KeyPackage}}}
	if err := lg.b.api.do(ctx, "POST", "/v1/keypackages", tok, up, nil); err != nil {
		return fmt.Errorf("upload the KeyPackage of device %d: %w", j, err)
	}
	d := newIdent(lg.b.run, j)
	var claim protocol.ClaimKeyPackagesResponse
	if err := lg.b.api.do(ctx, "POST", "/v1/keypackages/claim", lg.token, protocol.ClaimKeyPackagesRequest{User: d.user, CipherSuite: uint16(lg.cs)}, &claim); err != nil {
		return fmt.Errorf("claim the KeyPackage of device %d: %w", j, err)
	}
	if len(claim.KeyPackages) != 1 {
		return fmt.Errorf("claim for device %d: %d KeyPackages, want 1", j, len(claim.KeyPackages))
	}
	opts := commitOpts()
	opts.Add = [][]byte{claim.KeyPackages[0].Data}
	if err := lg.creatorCommit(ctx, ks, opts, []protocol.DeviceID{d.device}, map[int]bool{0: true}); err != nil {
		return err
	}
	return lg.joinByWelcome(ctx, ks, j, tok, bundle)
}

// joinByWelcome fetches device j's Welcome from its inbox and joins the
// group: with the tree the Welcome carries, or else the tree fetched from
// the server (the tree endpoint, or the groupinfo of older servers). The
// time runs from the inbox request to the joined group.
func (lg *lgRun) joinByWelcome(ctx context.Context, ks *kindStats, j int, tok string, bundle *mls.KeyPackageBundle) error {
	epoch := lg.g.Epoch()
	t0 := time.Now()
	var inbox protocol.InboxResponse
	if err := lg.b.api.do(ctx, "GET", "/v1/inbox", tok, nil, &inbox); err != nil {
		return fmt.Errorf("inbox of device %d: %w", j, err)
	}
	var welcome []byte
	for _, e := range inbox.Entries {
		if e.Conversation == lg.conv {
			welcome = e.Data
		}
	}
	if welcome == nil {
		return fmt.Errorf("no Welcome in the inbox of device %d", j)
	}
	source := "inline"
	g, err := mls.JoinFromWelcome(lg.cfg, welcome, bundle, mls.JoinOptions{FetchRatchetTree: func(e uint64) ([]byte, error) {
		tree, src, err := lg.fetchTree(ctx, tok, e)
		source = src
		return tree, err
	}})
	if err != nil {
		return fmt.Errorf("join by Welcome (tree from %s): %v", source, err)
	}
	ks.join.Add(time.Since(t0))
	ks.treeSource[source]++
	if g.Epoch() != epoch {
		return fmt.Errorf("device %d joined epoch %d, want %d", j, g.Epoch(), epoch)
	}
	return nil
}

// fetchTree returns the ratchet tree of an epoch from the server: GET
// /v1/conversations/{id}/tree?epoch=E (the encoded tree), or, where the
// server has no such endpoint (404), the tree of the current GroupInfo.
func (lg *lgRun) fetchTree(ctx context.Context, tok string, epoch uint64) ([]byte, string, error) {
	tree, status, err := lg.b.api.getRaw(ctx, fmt.Sprintf("/v1/conversations/%d/tree?epoch=%d", lg.conv, epoch), tok)
	if err == nil {
		return tree, "tree endpoint", nil
	}
	if status != http.StatusNotFound {
		return nil, "", err
	}
	var gi protocol.GroupInfoResponse
	if err := lg.b.api.do(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", lg.conv), tok, nil, &gi); err != nil {
		return nil, "", err
	}
	if gi.Epoch != epoch {
		return nil, "", fmt.Errorf("groupinfo is of epoch %d, the Welcome of %d", gi.Epoch, epoch)
	}
	return gi.RatchetTree, "groupinfo", nil
}

// externalOne has member device m rejoin by external commit (a resync,
// as the client SDK does when it lost its state), and the creator process
// it. With ks the commit is measured and the join time, from the
// groupinfo request to the accepted commit, recorded; without, it only
// fills m's direct path in the tree (setup).
func (lg *lgRun) externalOne(ctx context.Context, ks *kindStats, m int) error {
	tok, err := lg.login(ctx, m)
	if err != nil {
		return err
	}
	s, _, err := lg.identity(m)
	if err != nil {
		return err
	}
	own, ok := lg.leafOf(m)
	if !ok {
		return fmt.Errorf("device %d has no leaf", m)
	}
	// The device rejoins with the credential its leaf has, as the client
	// does with its stored one.
	mem, _ := lg.g.Member(own)
	t0 := time.Now()
	var gi protocol.GroupInfoResponse
	if err := lg.b.api.do(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo?tree=0", lg.conv), tok, nil, &gi); err != nil {
		return err
	}
	tree := gi.RatchetTree
	if len(tree) == 0 {
		if tree, _, err = lg.fetchTree(ctx, tok, gi.Epoch); err != nil {
			return err
		}
	}
	_, pc, err := mls.JoinExternal(lg.cfg, gi.GroupInfo, s, mem.Credential, mls.ExternalJoinOptions{RatchetTree: tree, ResyncLeaf: &own, ExternalPub: true})
	if err != nil {
		return fmt.Errorf("external join of device %d: %v", m, err)
	}
	req := protocol.HandshakeRequest{Epoch: gi.Epoch, Message: pc.Message, GroupInfo: pc.GroupInfo}
	var accepted time.Time
	post := func() (uint64, error) {
		var hr protocol.HandshakeResponse
		err := lg.b.api.do(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", lg.conv), tok, req, &hr)
		accepted = time.Now()
		return hr.Seq, err
	}
	if ks != nil {
		ks.msgBytes, ks.stateBytes = len(pc.Message), len(pc.GroupInfo)
		err = lg.measured(ctx, ks, map[int]bool{m: true}, post)
	} else {
		var seq uint64
		if seq, err = post(); err == nil {
			lg.head = seq
		}
	}
	if err != nil {
		return fmt.Errorf("external commit of device %d (%d bytes, GroupInfo %d bytes): %w", m, len(pc.Message), len(pc.GroupInfo), err)
	}
	if ks != nil {
		ks.join.Add(accepted.Sub(t0))
	}
	p, err := lg.g.Process(pc.Message)
	if err != nil || p.Commit == nil {
		return fmt.Errorf("creator processes the external commit of device %d: %v", m, err)
	}
	return lg.g.MergeStagedCommit(p.Commit)
}

// report adds a kind's figures to the result.
func (lg *lgRun) report(ks *kindStats) {
	r, k, u := lg.r, ks.name, ks.unit()
	r.add(k+": "+u+"s measured", float64(ks.commits), "", "", nil)
	if ks.commits == 0 {
		return
	}
	c := float64(ks.commits)
	if k == kindMessage {
		r.add(k+": MLS PrivateMessage", float64(ks.msgBytes), "bytes", "", nil)
	} else {
		r.add(k+": commit message", float64(ks.msgBytes), "bytes", "", nil)
	}
	if k != kindMessage { // parleyd counts the bytes stored for commits only
		r.add(k+": GroupInfo sent", float64(ks.stateBytes), "bytes", "", nil)
		r.add(k+": bytes the server stores per commit (message, GroupInfo, state, tree nodes, Welcomes)", ks.stored/c/1024, "KiB", "", nil)
	}
	r.add(k+": server write_bytes accepting a "+u+" (POST → answer)", float64(ks.acceptWrite)/c/1024, "KiB", "", nil)
	if lg.pg != nil {
		r.add(k+": PostgreSQL WAL accepting a "+u+" (whole cluster)", float64(ks.acceptWAL)/c/1024, "KiB", "", nil)
	}
	r.add(k+": server CPU accepting a "+u, ks.acceptCPU/c*1000, "ms", "", nil)
	if lg.pg != nil {
		r.add(k+": PostgreSQL CPU accepting a "+u+" (every local backend)", ks.acceptPGCPU/c*1000, "ms", "", nil)
	}
	r.add(k+": server write_bytes per "+u+", with fan-out and acks", float64(ks.writeBytes)/c/1024, "KiB", "", nil)
	if lg.pg != nil {
		r.add(k+": PostgreSQL WAL per "+u+" (whole cluster)", float64(ks.walBytes)/c/1024, "KiB", "", nil)
	}
	r.add(k+": server CPU per "+u+", with fan-out and acks", ks.cpu/c*1000, "ms", "", nil)
	if lg.pg != nil {
		r.add(k+": PostgreSQL CPU per "+u+" (every local backend)", ks.pgCPU/c*1000, "ms", "", nil)
	}
	r.add(k+": acceptance latency p50", ks.accept.Percentile(50), "ms", "", nil)
	r.add(k+": acceptance latency p99", ks.accept.Percentile(99), "ms", "", nil)
	r.add(fmt.Sprintf("%s: fan-out to %d connected members p50", k, len(lg.members)-1), ks.fanout.Percentile(50), "ms", "", nil)
	r.add(fmt.Sprintf("%s: fan-out to %d connected members p99", k, len(lg.members)-1), ks.fanout.Percentile(99), "ms", "", nil)
	if ks.missing > 0 {
		r.add(k+": receipts missing after 60 s", float64(ks.missing), "", "", nil)
	}
	switch k {
	case kindAdd:
		r.add("add: Welcome", float64(ks.welcomeBytes), "bytes", "", nil)
		r.add("join by Welcome (inbox → joined) p50", ks.join.Percentile(50), "ms", "", nil)
		r.add("join by Welcome (inbox → joined) p99", ks.join.Percentile(99), "ms", "", nil)
		var src []string
		for s, n := range ks.treeSource {
			src = append(src, fmt.Sprintf("%s %d", s, n))
		}
		r.Notes = append(r.Notes, "ratchet tree of the Welcome joins: "+strings.Join(src, ", "))
	case kindExternal:
		r.add("join by external commit (groupinfo → accepted) p50", ks.join.Percentile(50), "ms", "", nil)
		r.add("join by external commit (groupinfo → accepted) p99", ks.join.Percentile(99), "ms", "", nil)
	}
}

// addMemory adds parleyd's VmRSS and VmHWM.
func (lg *lgRun) addMemory(when string) {
	for _, key := range []string{"VmRSS", "VmHWM"} {
		if v, err := procStatus(lg.b.pid(), key); err == nil {
			lg.r.add(fmt.Sprintf("parleyd %s %s", key, when), float64(v)/(1<<20), "MiB", "", nil)
		}
	}
}

// procStatus returns a size field (such as VmRSS) of /proc/PID/status in
// bytes.
func procStatus(pid int, key string) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, key+":"); ok {
			if f := strings.Fields(v); len(f) >= 1 {
				kb, err := strconv.ParseInt(f[0], 10, 64)
				return kb << 10, err
			}
		}
	}
	return 0, fmt.Errorf("/proc/%d/status: no %s", pid, key)
}

// procIOWriteBytes returns write_bytes of /proc/PID/io: the bytes the
// process caused to be written to storage.
func procIOWriteBytes(pid int) (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/io", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "write_bytes:"); ok {
			return strconv.ParseInt(strings.TrimSpace(v), 10, 64)
		}
	}
	return 0, fmt.Errorf("/proc/%d/io: no write_bytes", pid)
}

// quietUpdates makes k update commits by the creator before any member
// connects and reports what accepting one costs the server alone:
// validating it, storing it and its tree nodes, with no fan-out and no
// acknowledgements running beside it.
func (lg *lgRun) quietUpdates(ctx context.Context, k int) error {
	var accept latency.Samples
	var write, wal int64
	var cpu, pgCPU, stored float64
	for range k {
		opts := commitOpts()
		opts.ForcePath = true
		pc, err := lg.g.Commit(opts)
		if err != nil {
			return fmt.Errorf("quiet update: %v", err)
		}
		req := protocol.HandshakeRequest{Epoch: lg.g.Epoch(), Message: pc.Message, GroupInfo: pc.GroupInfo}
		s0, err := lg.sample(ctx)
		if err != nil {
			return err
		}
		t0 := time.Now()
		var hr protocol.HandshakeResponse
		if err := lg.b.api.do(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", lg.conv), lg.token, req, &hr); err != nil {
			return fmt.Errorf("quiet update: %w", err)
		}
		accept.Add(time.Since(t0))
		s1, err := lg.sample(ctx)
		if err != nil {
			return err
		}
		write, wal, cpu, pgCPU = write+s1.write-s0.write, wal+s1.wal-s0.wal, cpu+s1.cpu-s0.cpu, pgCPU+s1.pgCPU-s0.pgCPU
		stored += s1.stored - s0.stored
		lg.head = hr.Seq
		if err := lg.g.MergePendingCommit(pc); err != nil {
			return err
		}
	}
	if k == 0 {
		return nil
	}
	c, r := float64(k), lg.r
	r.add("update, no member connected: bytes the server stores per commit", stored/c/1024, "KiB", "", nil)
	r.add("update, no member connected: server write_bytes per commit", float64(write)/c/1024, "KiB", "", nil)
	if lg.pg != nil {
		r.add("update, no member connected: PostgreSQL WAL per commit (whole cluster)", float64(wal)/c/1024, "KiB", "", nil)
		r.add("update, no member connected: PostgreSQL CPU per commit (every local backend)", pgCPU/c*1000, "ms", "", nil)
	}
	r.add("update, no member connected: server CPU per commit", cpu/c*1000, "ms", "", nil)
	r.add("update, no member connected: acceptance latency p50", accept.Percentile(50), "ms", "", nil)
	return nil
}
