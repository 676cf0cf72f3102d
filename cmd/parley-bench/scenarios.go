package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// bench is one server (or cluster) with its worker pool for a scenario.
type bench struct {
	o       *options
	log     io.Writer
	dir     string
	nodes   []*node
	servers []string
	metrics []string // metrics are the servers' metrics base URLs.
	info    protocol.ServerInfo
	api     *api
	hc      *http.Client
	run     string
	pool    *pool
	setup   map[string]float64
	// storeURL and schema are the PostgreSQL URL given to the nodes and
	// the fresh schema it names, dropped by close (empty: none).
	storeURL, schema string
	// prefix is the NATS subject prefix of the nodes (empty: no NATS).
	prefix string
}

// pid returns the pid of the first spawned node, or 0.
func (b *bench) pid() int {
	if len(b.nodes) > 0 {
		return b.nodes[0].pid
	}
	return 0
}

// openBench starts or reaches the server and starts enough workers for n
// devices.
func openBench(ctx context.Context, o *options, n int, log io.Writer) (*bench, error) {
	b := &bench{o: o, log: log, setup: map[string]float64{}}
	rb := make([]byte, 4)
	rand.Read(rb)
	b.run = hex.EncodeToString(rb)
	b.hc = newHTTPClient(o.insecure || o.tls == "self-signed", 64)
	if o.spawn {
		dir, err := os.MkdirTemp("", "parley-bench-")
		if err != nil {
			return nil, err
		}
		b.dir = dir
		sc := spawnConfig{Binary: o.parleyd, Store: o.store, Fanout: o.fanout, Nodes: o.nodes, TLS: o.tls, Extra: o.serverFlags, Dir: dir, Log: log}
		if isPostgres(o.store) {
			// A fresh schema per run, which parleyd's first node creates
			// and migrates; close drops it.
			if sc.Store, b.schema, err = freshSchema(o.store); err != nil {
				b.close()
				return nil, err
			}
			b.storeURL = sc.Store
			if b.schema != "" {
				fmt.Fprintf(log, "parley-bench: PostgreSQL schema %s (dropped at the end)\n", b.schema)
			}
		}
		if isNATS(o.fanout) {
			// A random subject prefix: runs sharing the NATS server stay
			// apart.
			sc.FanoutPrefix = "parleybench." + b.run
			b.prefix = sc.FanoutPrefix
		}
		nodes, err := spawn(ctx, sc)
		if err != nil {
			b.close()
			return nil, err
		}
		b.nodes = nodes
		for _, nd := range nodes {
			b.servers = append(b.servers, nd.url)
			b.metrics = append(b.metrics, nd.metrics)
		}
	} else {
		b.servers = o.servers
		// A running server's metrics listener must be given; by default
		// the bench assumes it answers at the server's own URL.
		b.metrics = o.servers
		if len(o.metrics) > 0 {
			b.metrics = o.metrics
		}
	}
	b.api = &api{base: b.servers[0], hc: b.hc}
	info, err := b.api.info(ctx)
	if err != nil {
		b.close()
		return nil, fmt.Errorf("server info: %v", err)
	}
	b.info = info
	if !info.OpenRegistration && o.invite == "" {
		b.close()
		return nil, errors.New("the server is invite-only: pass --invite CODE (parleyd admin invite create --uses N --json)")
	}
	workers := o.workers
	if workers <= 0 {
		workers = max(1, (n+o.perWorker-1)/o.perWorker)
	}
	b.pool, err = startPool(ctx, workers, workerConfig{Servers: b.servers, ServerName: info.Name, Run: b.run, Invite: o.invite,
		Insecure: o.insecure || o.tls == "self-signed", Concurrency: o.concurrency}, log)
	if err != nil {
		b.close()
		return nil, err
	}
	return b, nil
}

// close stops the workers and the spawned servers.
func (b *bench) close() {
	if b.pool != nil {
		b.pool.close()
	}
	stopNodes(b.nodes)
	if b.dir != "" {
		if b.o.keep {
			fmt.Fprintf(b.log, "parley-bench: kept %s\n", b.dir)
		} else {
			os.RemoveAll(b.dir)
		}
	}
	if b.schema != "" {
		if b.o.keep {
			fmt.Fprintf(b.log, "parley-bench: kept PostgreSQL schema %s\n", b.schema)
		} else if err := dropSchema(b.storeURL, b.schema); err != nil {
			fmt.Fprintf(b.log, "parley-bench: %v\n", err)
		}
	}
}

// register registers and logs in devices 0..n-1 in the workers.
func (b *bench) register(ctx context.Context, n int) error {
	devs := make([]int, n)
	for i := range devs {
		devs[i] = i
	}
	b.pool.assign(devs)
	start := time.Now()
	_, err := b.pool.all(ctx, func(_ int, wp *workerProc) *command {
		return &command{Op: "register", Devices: wp.devices}
	})
	b.setup["register_seconds"] = time.Since(start).Seconds()
	b.setup["devices"] = float64(n)
	fmt.Fprintf(b.log, "parley-bench: registered and logged in %d devices in %v\n", n, time.Since(start).Round(time.Millisecond))
	return err
}

// buildConvs creates conversations with the given member lists (creator
// first), at most 8 at once.
func (b *bench) buildConvs(ctx context.Context, members [][]int) ([]*conv, error) {
	start := time.Now()
	convs := make([]*conv, len(members))
	idx := make([]int, len(members))
	for i := range idx {
		idx[i] = i
	}
	var mu sync.Mutex
	tokens := map[int]string{}
	err := parallel(ctx, 8, idx, func(ctx context.Context, i int) error {
		creator := members[i][0]
		mu.Lock()
		tok, ok := tokens[creator]
		mu.Unlock()
		if !ok {
			var err error
			if tok, err = b.api.login(ctx, b.info.Name, newIdent(b.run, creator)); err != nil {
				return fmt.Errorf("log in creator %d: %v", creator, err)
			}
			mu.Lock()
			tokens[creator] = tok
			mu.Unlock()
		}
		c, err := buildConv(ctx, b.api, b.info.Name, b.run, tok, members[i], b.o.batch)
		if err != nil {
			return fmt.Errorf("conversation %d of %d members: %v", i, len(members[i]), err)
		}
		convs[i] = c
		return nil
	})
	b.setup["conversations_seconds"] = time.Since(start).Seconds()
	fmt.Fprintf(b.log, "parley-bench: built %d conversations in %v\n", len(members), time.Since(start).Round(time.Millisecond))
	return convs, err
}

// connect connects every registered device, subscribed at the heads of
// its conversations.
func (b *bench) connect(ctx context.Context, convs []*conv) (time.Duration, error) {
	cursors := map[int][]protocol.Cursor{}
	for _, c := range convs {
		for _, m := range c.Members {
			cursors[m] = append(cursors[m], protocol.Cursor{Conversation: c.ID, Seq: c.Head})
		}
	}
	start := time.Now()
	replies, err := b.pool.all(ctx, func(_ int, wp *workerProc) *command {
		cs := map[int][]protocol.Cursor{}
		for _, d := range wp.devices {
			if c, ok := cursors[d]; ok {
				cs[d] = c
			}
		}
		return &command{Op: "connect", Devices: wp.devices, Cursors: cs}
	})
	took := time.Since(start)
	n := 0
	for _, r := range replies {
		n += r.Connected
	}
	b.setup["connect_seconds"] = took.Seconds()
	fmt.Fprintf(b.log, "parley-bench: connected and subscribed %d devices in %v\n", n, took.Round(time.Millisecond))
	return took, err
}

// aggregate is the merged result of a run.
type aggregate struct {
	runStats
	latency, ackLat hist
	tracked         map[string]msgTrack
	sentAt          map[string]int64
}

// runLoad runs a load on every worker (senders go to their owners) and
// merges the results.
func (b *bench) runLoad(ctx context.Context, l load) (*aggregate, error) {
	per := make([][]sender, len(b.pool.procs))
	for _, s := range l.Senders {
		w := b.pool.owner(s.Device)
		if w < 0 {
			return nil, fmt.Errorf("no worker holds sender %d", s.Device)
		}
		per[w] = append(per[w], s)
	}
	replies, err := b.pool.all(ctx, func(i int, _ *workerProc) *command {
		li := l
		li.Senders = per[i]
		return &command{Op: "run", Load: &li}
	})
	a := &aggregate{tracked: map[string]msgTrack{}, sentAt: map[string]int64{}}
	a.Errors = map[string]int64{}
	for _, r := range replies {
		s := r.Stats
		if s == nil {
			continue
		}
		a.Sent += s.Sent
		a.Acked += s.Acked
		a.Delivered += s.Delivered
		a.Echoes += s.Echoes
		a.Late += s.Late
		a.Others += s.Others
		a.Closed += s.Closed
		a.Behind = max(a.Behind, s.Behind)
		for k, v := range s.Errors {
			a.Errors[k] += v
		}
		a.latency.merge(s.Latency)
		a.ackLat.merge(s.AckLat)
		for id, t := range s.Tracked {
			cur, ok := a.tracked[id]
			if !ok {
				a.tracked[id] = t
				continue
			}
			cur.Count += t.Count
			cur.First = min(cur.First, t.First)
			cur.Last = max(cur.Last, t.Last)
			a.tracked[id] = cur
		}
		for id, t := range s.SentAt {
			a.sentAt[id] = t
		}
	}
	return a, err
}

// runScenarios runs the selected scenario(s).
func runScenarios(ctx context.Context, o *options, log io.Writer) (*report, error) {
	if o.spawn && o.parleyd == "" {
		// Build once, so that every scenario and configuration of the run
		// runs the same server even when the tree changes meanwhile.
		dir, err := os.MkdirTemp("", "parley-bench-build-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		bin, err := buildParleyd(ctx, dir)
		if err != nil {
			return nil, err
		}
		co := *o
		co.parleyd = bin
		o = &co
	}
	rep := newReport(o)
	if o.spawn {
		rep.Parleyd = fileSHA256(o.parleyd)
	}
	var errs []error
	do := func(name string, f func(context.Context, *options, io.Writer) ([]result, error)) {
		fmt.Fprintf(log, "parley-bench: scenario %s\n", name)
		rs, err := f(ctx, o, log)
		rep.Results = append(rep.Results, rs...)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", name, err))
		}
	}
	switch o.scenario {
	case "throughput":
		do("throughput", func(ctx context.Context, o *options, log io.Writer) ([]result, error) {
			return messaging(ctx, o, log, false)
		})
	case "latency":
		do("latency", func(ctx context.Context, o *options, log io.Writer) ([]result, error) {
			return messaging(ctx, o, log, true)
		})
	case "fanout":
		do("fanout", fanout)
	case "idle":
		do("idle", idle)
	case "large-group":
		do("large-group", largeGroup)
	case "compare":
		if err := compare(ctx, o, rep, log); err != nil {
			errs = append(errs, err)
		}
	case "all":
		do("throughput", func(ctx context.Context, o *options, log io.Writer) ([]result, error) {
			return messaging(ctx, o, log, false)
		})
		do("latency", func(ctx context.Context, o *options, log io.Writer) ([]result, error) {
			return messaging(ctx, o, log, true)
		})
		do("fanout", fanout)
	}
	return rep, errors.Join(errs...)
}

// messaging runs the throughput (closed loop) or latency (open loop)
// scenario: senders 0..N-1, recipients N..N+M-1; conversation c has
// recipient N+c (its creator) and the senders s with s mod M = c.
func messaging(ctx context.Context, o *options, log io.Writer, open bool) ([]result, error) {
	n, m := o.senders, o.conversations
	b, err := openBench(ctx, o, n+m, log)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.register(ctx, n+m); err != nil {
		return nil, err
	}
	members := make([][]int, m)
	for c := range m {
		members[c] = []int{n + c}
	}
	for s := range n {
		members[s%m] = append(members[s%m], s)
	}
	convs, err := b.buildConvs(ctx, members)
	if err != nil {
		return nil, err
	}
	if _, err := b.connect(ctx, convs); err != nil {
		return nil, err
	}
	l := load{Start: time.Now().Add(time.Second), Warmup: o.warmup, Duration: o.duration, Drain: o.drain,
		Size: o.size, AckEvery: o.ackEvery, Open: open, Window: o.window, Rate: o.rate / float64(n), RecipientsFrom: n}
	for s := range n {
		c := convs[s%m]
		l.Senders = append(l.Senders, sender{Device: s, Conv: c.ID, GroupID: c.GroupID, Epoch: c.Epoch})
	}
	// Server metrics and CPU of every process at the window's edges.
	type snap struct {
		m     map[string]float64
		cpu   []float64
		bench float64
		pg    map[int]float64
		nats  map[int]float64
	}
	var snaps [2]snap
	var swg sync.WaitGroup
	swg.Add(1)
	go func() {
		defer swg.Done()
		for i, at := range []time.Time{l.Start.Add(l.Warmup), l.Start.Add(l.Warmup + l.Duration)} {
			time.Sleep(time.Until(at))
			snaps[i].m, _ = scrapeAll(ctx, b.hc, b.metrics)
			for _, nd := range b.nodes {
				snaps[i].cpu = append(snaps[i].cpu, procCPU(nd.pid))
			}
			for _, wp := range b.pool.procs {
				snaps[i].bench += procCPU(wp.cmd.Process.Pid)
			}
			if b.schema != "" {
				snaps[i].pg = serviceCPU("postgres")
			}
			if b.prefix != "" {
				snaps[i].nats = serviceCPU("nats-server")
			}
		}
	}()
	a, err := b.runLoad(ctx, l)
	swg.Wait()
	if err != nil {
		return nil, err
	}
	cpu0, cpu1 := snaps[0].m, snaps[1].m
	secs := o.duration.Seconds()
	r := result{Scenario: "throughput", Params: map[string]any{"senders": n, "conversations": m, "window": o.window, "size": o.size,
		"duration_s": secs, "warmup_s": o.warmup.Seconds(), "ack_interval": o.ackEvery.String(), "servers": len(b.servers), "workers": len(b.pool.procs)},
		Setup: b.setup}
	b.tag(&r)
	if open {
		r.Scenario = "latency"
		delete(r.Params, "window")
		r.Params["rate"] = o.rate
	}
	acked, deliv := float64(a.Acked)/secs, float64(a.Delivered)/secs
	if open {
		r.add("offered rate", o.rate, "msg/s", "", nil)
		r.add("largest send delay behind schedule", ms(a.Behind), "ms", "", nil)
	}
	var tgt *bool
	if !open {
		tgt = ptr(acked >= 20000 && deliv >= 20000)
	}
	r.add("accepted durably (sent acks)", acked, "msg/s", target(!open, "≥ 20,000"), tgt)
	r.add("delivered to online recipients", deliv, "msg/s", target(!open, "≥ 20,000"), tgt)
	r.add("delivery latency p50", ms(a.latency.quantile(0.5)), "ms", "", nil)
	var ok99 *bool
	if open {
		ok99 = ptr(a.latency.quantile(0.99) <= 50*time.Millisecond && a.latency.Count > 0)
	}
	r.add("delivery latency p99", ms(a.latency.quantile(0.99)), "ms", target(open, "≤ 50"), ok99)
	r.add("delivery latency p99.9", ms(a.latency.quantile(0.999)), "ms", "", nil)
	r.add("delivery latency max", ms(time.Duration(a.latency.Max*float64(time.Microsecond))), "ms", "", nil)
	r.add("sent-ack latency p50", ms(a.ackLat.quantile(0.5)), "ms", "", nil)
	r.add("sent-ack latency p99", ms(a.ackLat.quantile(0.99)), "ms", "", nil)
	r.add("messages sent (whole run)", float64(a.Sent), "", "", nil)
	r.add("latency samples", float64(a.latency.Count), "", "", nil)
	r.add("connections lost", float64(a.Closed), "", "", nil)
	r.add("receipts by other senders of the conversation", float64(a.Others), "", "", nil)
	if len(snaps[0].cpu) > 0 {
		var c float64
		for i := range snaps[0].cpu {
			c += snaps[1].cpu[i] - snaps[0].cpu[i]
		}
		r.add(fmt.Sprintf("server CPU in the window (of %d)", runtime.NumCPU()), c/secs, "cores", "", nil)
	}
	r.add(fmt.Sprintf("bench workers' CPU in the window (of %d)", runtime.NumCPU()), (snaps[1].bench-snaps[0].bench)/secs, "cores", "", nil)
	for _, svc := range []struct {
		name     string
		from, to map[int]float64
	}{{"PostgreSQL CPU in the window, all backends", snaps[0].pg, snaps[1].pg}, {"NATS server CPU in the window", snaps[0].nats, snaps[1].nats}} {
		if svc.to == nil {
			continue
		}
		var c float64
		for pid, v := range svc.to {
			c += v - svc.from[pid]
		}
		r.add(fmt.Sprintf("%s (of %d)", svc.name, runtime.NumCPU()), c/secs, "cores", "", nil)
	}
	if cpu0 != nil && cpu1 != nil {
		if bs := cpu1["parley_append_batch_entries_count"] - cpu0["parley_append_batch_entries_count"]; bs > 0 {
			r.add("entries per group commit (mean)", (cpu1["parley_append_batch_entries_sum"]-cpu0["parley_append_batch_entries_sum"])/bs, "", "", nil)
			r.add("group-commit transaction (mean)", 1000*(cpu1["parley_append_batch_seconds_sum"]-cpu0["parley_append_batch_seconds_sum"])/bs, "ms", "", nil)
		}
	}
	r.errors(a.Errors)
	return []result{r}, nil
}

// idle measures server memory per idle, subscribed connection.
func idle(ctx context.Context, o *options, log io.Writer) ([]result, error) {
	b, err := openBench(ctx, o, o.connections, log)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.register(ctx, o.connections); err != nil {
		return nil, err
	}
	r, err := b.measureIdle(ctx, nil)
	return []result{r}, err
}

// measureIdle samples memory, connects every device, waits, samples
// again and returns the per-connection growth.
func (b *bench) measureIdle(ctx context.Context, convs []*conv) (result, error) {
	n := int(b.setup["devices"])
	r := result{Scenario: "idle", Params: map[string]any{"connections": n, "servers": len(b.servers), "workers": len(b.pool.procs)}, Setup: b.setup}
	b.tag(&r)
	before, err := sampleMemory(ctx, b.hc, b.metrics[0], b.pid())
	if err != nil {
		return r, err
	}
	if _, err := b.connect(ctx, convs); err != nil {
		return r, err
	}
	select {
	case <-time.After(b.o.settle):
	case <-ctx.Done():
		return r, ctx.Err()
	}
	after, err := sampleMemory(ctx, b.hc, b.metrics[0], b.pid())
	if err != nil {
		return r, err
	}
	r.Memory = []memSample{before, after}
	conns := after.Conns - before.Conns
	if conns <= 0 || len(b.servers) > 1 {
		conns = float64(n) / float64(len(b.servers))
	}
	perHS := (after.HeapAlloc + after.StackInuse - before.HeapAlloc - before.StackInuse) / conns / 1024
	perRSS := (after.RSS - before.RSS) / conns / 1024
	r.add("connections counted by the server", after.Conns, "", "", nil)
	r.add("heap+stack per connection (after GC)", perHS, "KiB", "≤ 32", ptr(perHS <= 32))
	r.add("  of which stack", (after.StackInuse-before.StackInuse)/conns/1024, "KiB", "", nil)
	r.add("  heap in use (spans) per connection", (after.HeapInuse-before.HeapInuse)/conns/1024, "KiB", "", nil)
	r.add("RSS per connection (process metrics)", perRSS, "KiB", "≤ 32", ptr(perRSS <= 32))
	if after.ProcRSS > 0 {
		r.add("RSS per connection (/proc VmRSS)", (after.ProcRSS-before.ProcRSS)/conns/1024, "KiB", "", nil)
	}
	r.add("goroutines per connection", (after.Goroutines-before.Goroutines)/conns, "", "", nil)
	r.add("server RSS with the connections", after.RSS/(1<<20), "MiB", "", nil)
	if !before.AfterGC || !after.AfterGC {
		r.Notes = append(r.Notes, "no GC cycle observed before a sample: heap figures include garbage")
	}
	return r, nil
}

// fanout builds conversations of o.sizes devices (creator device 0, all
// connected), measures idle memory while connecting, then sends rounds
// messages from device 0 into each and reports the time from submit to
// the last member's receipt; finally every device acknowledges (ack
// storm).
func fanout(ctx context.Context, o *options, log io.Writer) ([]result, error) {
	n := slices.Max(o.sizes)
	b, err := openBench(ctx, o, n, log)
	if err != nil {
		return nil, err
	}
	defer b.close()
	if err := b.register(ctx, n); err != nil {
		return nil, err
	}
	members := make([][]int, len(o.sizes))
	for i, sz := range o.sizes {
		for d := range sz {
			members[i] = append(members[i], d)
		}
	}
	convs, err := b.buildConvs(ctx, members)
	if err != nil {
		return nil, err
	}
	idleRes, err := b.measureIdle(ctx, convs)
	results := []result{idleRes}
	if err != nil {
		return results, err
	}
	for i, c := range convs {
		sz := o.sizes[i]
		l := load{Start: time.Now().Add(time.Second), Duration: time.Duration(o.rounds) * o.interval, Drain: o.drain,
			Size: o.size, Open: true, Rate: 1 / o.interval.Seconds(), Track: true,
			Senders: []sender{{Device: 0, Conv: c.ID, GroupID: c.GroupID, Epoch: c.Epoch, Count: o.rounds}}}
		a, err := b.runLoad(ctx, l)
		if err != nil {
			return results, err
		}
		r := result{Scenario: "fanout", Params: map[string]any{"members": sz, "rounds": o.rounds, "interval": o.interval.String(),
			"commits": c.Commits, "tree_bytes": c.TreeBytes, "servers": len(b.servers), "workers": len(b.pool.procs)}, Setup: b.setup}
		b.tag(&r)
		var times []time.Duration
		complete := 0
		ids := make([]string, 0, len(a.sentAt))
		for id := range a.sentAt {
			ids = append(ids, id)
		}
		sort.Slice(ids, func(i, j int) bool {
			x, _ := strconv.ParseUint(ids[i], 10, 64)
			y, _ := strconv.ParseUint(ids[j], 10, 64)
			return x < y
		})
		for k, id := range ids {
			t := a.tracked[id]
			sent := a.sentAt[id]
			d := time.Duration(t.Last - sent)
			if t.Count == int64(sz-1) {
				complete++
			}
			times = append(times, d)
			r.add(fmt.Sprintf("round %d: submit → last of %d receipts", k+1, t.Count), ms(d), "ms", "", nil)
			r.add(fmt.Sprintf("round %d: submit → first receipt", k+1), ms(time.Duration(t.First-sent)), "ms", "", nil)
		}
		slices.Sort(times)
		if len(times) > 0 {
			med := times[len(times)/2]
			tgt := ""
			var ok *bool
			if sz >= 10000 {
				tgt, ok = "≤ 500", ptr(times[len(times)-1] <= 500*time.Millisecond && complete == len(times))
			}
			r.add("fan-out time, median of rounds", ms(med), "ms", tgt, nil)
			r.add("fan-out time, worst round", ms(times[len(times)-1]), "ms", tgt, ok)
		}
		r.add("rounds delivered to every member", float64(complete), "", "", nil)
		r.add("per-receipt latency p50 (all rounds)", ms(a.latency.quantile(0.5)), "ms", "", nil)
		r.add("per-receipt latency p99 (all rounds)", ms(a.latency.quantile(0.99)), "ms", "", nil)
		r.errors(a.Errors)
		results = append(results, r)
	}
	// Ack storm: every device acknowledges what it received, and waits for
	// the server to process it.
	start := time.Now()
	_, err = b.pool.all(ctx, func(int, *workerProc) *command { return &command{Op: "ackall", Sync: true} })
	took := time.Since(start)
	r := result{Scenario: "ack storm", Params: map[string]any{"devices": n, "servers": len(b.servers)}}
	b.tag(&r)
	r.add("every device acknowledges once (processed)", ms(took), "ms", "", nil)
	r.add("acks per second", float64(n)/took.Seconds(), "ack/s", "", nil)
	results = append(results, r)
	return results, err
}

// tag adds the configuration of the run to a result's parameters: the
// fresh PostgreSQL schema and the NATS subject prefix.
func (b *bench) tag(r *result) {
	if b.schema != "" {
		r.Params["schema"] = b.schema
	}
	if b.prefix != "" {
		r.Params["fanout_prefix"] = b.prefix
	}
}

// ms converts a duration to milliseconds.
func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

func ptr[T any](v T) *T { return &v }

// target returns t when the target applies.
func target(applies bool, t string) string {
	if applies {
		return t
	}
	return ""
}

// errors adds the errors by code.
func (r *result) errors(m map[string]int64) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		r.add("errors: "+strings.TrimSpace(k), float64(m[k]), "", "", nil)
	}
}
