// Command parley-bench is a load generator for parleyd: it drives a real
// server over real WebSockets on loopback with many simulated devices and
// reports throughput, delivery latency, fan-out time and memory per idle
// connection (issue 4's targets; issue 6 reuses it for PostgreSQL and
// several nodes).
//
// Usage:
//
//	parley-bench throughput [flags]   messages/s accepted durably and delivered
//	parley-bench latency [flags]      p50/p99 submit→delivery at a fixed open-loop rate
//	parley-bench fanout [flags]       one message to every device of big conversations
//	parley-bench idle [flags]         server memory per idle connection
//	parley-bench all [flags]          every scenario, each on a fresh server with --spawn
//	parley-bench compare [flags]      throughput, latency and fan-out on SQLite, PostgreSQL and 3 nodes on PostgreSQL + NATS
//	parley-bench large-group [flags]  per-commit server cost in one conversation of --members devices
//
// With --spawn the bench builds cmd/parleyd from the module (or runs
// --parleyd PATH) on a temporary data directory and a loopback port, with
// open registration and raised rate limits; --store, --fanout and --nodes
// pass through for other configurations: a PostgreSQL --store gets a
// fresh schema per run (dropped at the end), a NATS --fanout a random
// subject prefix, and devices are spread round-robin over the --nodes.
// compare spawns the three configurations of issue 6 in turn (--postgres,
// --nats) and prints one table comparing them. With --server URL it targets a
// running server (loopback only), which must allow the registrations and
// post rates of the run (its rate limits) and open registration or
// --invite.
//
// The simulated devices live in worker processes (this binary started as
// "parley-bench worker"), at most --per-worker connections each, which
// the coordinator drives over their stdin/stdout with one JSON command and
// one JSON reply per line; the server runs in its own process. Each device
// is one user with one device whose keys derive from a random run id and
// the device's index, so workers register and authenticate their devices
// themselves. Conversations are real MLS groups created by the
// coordinator with package mls (creator = one bench device) and filled by
// commits of KeyPackages generated locally for the other devices; the
// server's follower validates each. Application messages are opaque
// MLS-shaped PrivateMessages of the group's id and epoch whose ciphertext
// ends with a stamp (intended send time, message id, sender), which is all
// the receivers need: the server checks only the header.
//
// Every request loop is bounded in count and time; the bench talks only to
// loopback addresses. Results print as a table, or as JSON with --json.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/mls"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if (len(os.Args) > 1 && os.Args[1] == "worker") || os.Getenv(workerEnv) == "1" {
		if err := runWorker(ctx, os.Stdin, os.Stdout); err != nil {
			fmt.Fprintf(os.Stderr, "parley-bench worker: %v\n", err)
			os.Exit(1)
		}
		return
	}
	err := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	switch {
	case err == nil, errors.Is(err, flag.ErrHelp):
	case errors.As(err, new(usageError)):
		fmt.Fprintf(os.Stderr, "parley-bench: %v\n", err)
		os.Exit(2)
	default:
		fmt.Fprintf(os.Stderr, "parley-bench: %v\n", err)
		os.Exit(1)
	}
}

// usageError is a command-line error (exit code 2).
type usageError struct{ error }

// options are the command-line settings.
type options struct {
	scenario string

	servers     []string
	metrics     []string
	spawn       bool
	parleyd     string
	store       string
	fanout      string
	nodes       int
	tls         string
	serverFlags []string
	invite      string
	insecure    bool
	keep        bool

	postgres, nats string
	configs        []string
	set            map[string]bool // set holds the flags given on the command line

	workers     int
	perWorker   int
	concurrency int
	json        bool

	duration, warmup, drain time.Duration
	size                    int
	ackEvery                time.Duration

	senders, conversations, window int
	rate                           float64

	sizes    []int
	rounds   int
	interval time.Duration
	batch    int

	connections int
	settle      time.Duration

	members, commits int
	suite            mls.CipherSuite
	fill             bool
}

// listFlag collects a repeatable or comma-separated flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }
func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

const usage = `parley-bench - load generator for parleyd

Usage:
  parley-bench throughput|latency|fanout|idle|all|compare|large-group [flags]

Scenarios:
  throughput  N senders over M two-party-or-more conversations, each sender
              keeping --window sends outstanding (closed loop), for --duration:
              messages/s acknowledged durably (sent) and delivered to the online
              recipients. Target >= 20,000/s.
  latency     the same population at a fixed total --rate on an open-loop
              schedule (latency counts from each message's scheduled time, so
              slow answers do not lower the offered rate): p50/p99 from submit
              to delivery. Target p99 <= 50 ms at 10,000/s.
  fanout      conversations of --sizes members, all connected; device 0 sends
              --rounds messages --interval apart to each: time from submit to
              the last member's receipt. Target <= 0.5 s at 10,000. Also
              reports the idle memory of the connections and an ack storm.
  idle        --connections subscribed, idle connections: server heap+stack
              and RSS growth per connection. Target <= 32 KiB.
  all         throughput, latency, then fanout (with idle) on fresh servers.
  compare     throughput, latency and fanout (default --sizes 10000, --rate
              2000, --drain 5s) on each of --configs, every scenario on fresh
              servers:
                sqlite    one node on SQLite
                postgres  one node on PostgreSQL (--postgres, a fresh schema)
                cluster   --nodes (default 3) nodes on PostgreSQL + NATS (--nats)
              and one table comparing them. Implies --spawn.
  large-group one conversation of --members devices on --suite, built in
              commits of --batch (default 250) Adds, halved when the
              server refuses one as too large, on a server with its default size
              limits (a size it refuses is reported with the error), all
              members connected; then --commits commits of each kind (an
              update with a path, an add of one new member joining by
              Welcome, a removal, an external commit): server write_bytes
              (and the PostgreSQL WAL) and CPU per commit, acceptance
              latency, fan-out to every member, join times and parleyd's
              VmRSS/VmHWM. --store sqlite (default) or postgres (--postgres)
              or a postgres:// URL. Implies --spawn.

Flags:
`

// run parses the command line and runs the scenario.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "-h" || args[0] == "--help" {
		fmt.Fprint(stdout, usage)
		newFlags(&options{}, stdout).PrintDefaults()
		return nil
	}
	o := &options{scenario: args[0]}
	switch o.scenario {
	case "throughput", "latency", "fanout", "idle", "all", "compare", "large-group":
	default:
		return usageError{fmt.Errorf("unknown scenario %q (want throughput, latency, fanout, idle, all, compare or large-group)", o.scenario)}
	}
	fs := newFlags(o, stderr)
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return usageError{err}
	}
	if fs.NArg() > 0 {
		return usageError{fmt.Errorf("unexpected argument %q", fs.Arg(0))}
	}
	o.set = map[string]bool{}
	fs.Visit(func(f *flag.Flag) { o.set[f.Name] = true })
	if err := o.validate(); err != nil {
		return usageError{err}
	}
	rep, err := runScenarios(ctx, o, stderr)
	if rep != nil {
		if o.json {
			rep.writeJSON(stdout)
		} else {
			rep.writeTable(stdout)
		}
	}
	return err
}

// newFlags binds the flags to o.
func newFlags(o *options, out io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("parley-bench", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Var((*listFlag)(&o.servers), "server", "target a running server at `URL` (loopback only; repeat or comma-separate for several nodes)")
	fs.Var((*listFlag)(&o.metrics), "metrics", "with --server, the metrics listeners' base `URL`s (parleyd's metrics_listen, such as http://127.0.0.1:9464), one per server in order")
	fs.BoolVar(&o.spawn, "spawn", false, "build and start parleyd on a temporary data directory and a loopback port")
	fs.StringVar(&o.parleyd, "parleyd", "", "with --spawn, run this parleyd `binary` instead of building cmd/parleyd")
	fs.StringVar(&o.store, "store", "", "with --spawn, parleyd's --store (such as postgres://…); default SQLite in the data directory")
	fs.StringVar(&o.fanout, "fanout", "", "with --spawn, parleyd's --fanout (such as nats://127.0.0.1:4222)")
	fs.IntVar(&o.nodes, "nodes", 1, "with --spawn, the number of parleyd processes sharing --store and --fanout; devices are spread over them")
	fs.StringVar(&o.tls, "tls", "off", "with --spawn, parleyd's --tls-mode: off or self-signed")
	fs.Var((*listFlag)(&o.serverFlags), "server-flag", "with --spawn, one more parleyd `flag` (repeatable; such as --server-flag=--limits-max-message-bytes=4MiB)")
	fs.StringVar(&o.invite, "invite", "", "invite `code` for registrations when the server is invite-only (a multi-use invite: parleyd admin invite create --uses N)")
	fs.BoolVar(&o.insecure, "insecure", false, "skip TLS certificate verification (self-signed loopback server)")
	fs.BoolVar(&o.keep, "keep", false, "with --spawn, keep the temporary directory (printed)")
	fs.IntVar(&o.workers, "workers", 0, "worker processes (default: enough for --per-worker connections each)")
	fs.IntVar(&o.perWorker, "per-worker", 5000, "most connections per worker process")
	fs.IntVar(&o.concurrency, "concurrency", 16, "parallel setup requests per worker")
	fs.BoolVar(&o.json, "json", false, "print the results as JSON")
	fs.DurationVar(&o.duration, "duration", 10*time.Second, "measured duration of throughput and latency runs")
	fs.DurationVar(&o.warmup, "warmup", 2*time.Second, "load before the measurement starts")
	fs.DurationVar(&o.drain, "drain", 2*time.Second, "time after the load, and after the last fan-out round, for deliveries to arrive")
	fs.IntVar(&o.size, "size", 256, "bytes per application message (MLS-shaped)")
	fs.DurationVar(&o.ackEvery, "ack-interval", time.Second, "how often each device acknowledges its cursors during throughput and latency runs (0: never)")
	fs.IntVar(&o.senders, "senders", 100, "sending devices (throughput, latency)")
	fs.IntVar(&o.conversations, "conversations", 100, "conversations the senders post to (sender s posts to s mod M), each with one more recipient device")
	fs.IntVar(&o.window, "window", 32, "outstanding sends per sender (throughput)")
	fs.Float64Var(&o.rate, "rate", 10000, "total messages per second (latency)")
	fs.Func("sizes", "fan-out conversation sizes in devices (comma-separated; default 1000,10000)", func(v string) error {
		o.sizes = nil
		for _, s := range strings.Split(v, ",") {
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil || n < 2 {
				return fmt.Errorf("%q is not a size of at least 2", s)
			}
			o.sizes = append(o.sizes, n)
		}
		return nil
	})
	fs.IntVar(&o.rounds, "rounds", 5, "fan-out messages per conversation")
	fs.DurationVar(&o.interval, "interval", 2*time.Second, "time between fan-out messages")
	fs.IntVar(&o.batch, "batch", 1000, "members added per MLS commit when building conversations")
	fs.IntVar(&o.connections, "connections", 10000, "idle connections (idle)")
	fs.DurationVar(&o.settle, "settle", 3*time.Second, "how long the connections idle before their memory is sampled (idle, fanout)")
	fs.StringVar(&o.postgres, "postgres", envOr("PARLEY_TEST_POSTGRES", defaultPostgres), "compare, and large-group --store postgres: the PostgreSQL `URL` (loopback; a fresh schema per run is created in it and dropped)")
	fs.StringVar(&o.nats, "nats", envOr("PARLEY_TEST_NATS", defaultNATS), "compare: the NATS `URL` of the cluster configuration (loopback)")
	fs.IntVar(&o.members, "members", 10000, "large-group: member devices of the conversation")
	fs.IntVar(&o.commits, "commits", 20, "large-group: measured commits of each kind")
	fs.BoolVar(&o.fill, "fill", true, "large-group: after each batch of Adds and each removal, the members that mls.Group.TreeFiller names commit with a path, as the SDK's members do (client/fill.go), so that parent nodes hold keys and path commits stay small; false leaves every parent blank")
	o.suite = client.DefaultCipherSuites[0]
	fs.Func("suite", "large-group: the MLS cipher suite, a number such as 0xF001 (default the client's first, X-Wing 0xF001); its signatures must be Ed25519", func(v string) error {
		n, err := strconv.ParseUint(v, 0, 16)
		if err != nil {
			return fmt.Errorf("%q is not a cipher suite number", v)
		}
		o.suite = mls.CipherSuite(n)
		return nil
	})
	fs.Var((*listFlag)(&o.configs), "configs", "compare: the configurations to run, in order (default sqlite,postgres,cluster)")
	return fs
}

// validate checks the options.
func (o *options) validate() error {
	if o.scenario == "compare" {
		if err := o.validateCompare(); err != nil {
			return err
		}
	}
	if o.scenario == "large-group" {
		if err := o.validateLargeGroup(); err != nil {
			return err
		}
	}
	if len(o.sizes) == 0 {
		o.sizes = []int{1000, 10000}
	}
	switch {
	case o.spawn == (len(o.servers) > 0):
		return errors.New("give exactly one of --spawn and --server URL")
	case o.tls != "off" && o.tls != "self-signed":
		return fmt.Errorf("--tls %q: want off or self-signed", o.tls)
	case o.nodes < 1 || o.nodes > 16:
		return fmt.Errorf("--nodes %d: want 1 to 16", o.nodes)
	case o.perWorker < 1 || o.perWorker > 9000:
		return fmt.Errorf("--per-worker %d: want 1 to 9000 (a process holds at most ~20,000 open files)", o.perWorker)
	case o.senders < 1 || o.conversations < 1 || o.conversations > o.senders:
		return fmt.Errorf("--senders %d --conversations %d: want 1 <= conversations <= senders", o.senders, o.conversations)
	case o.window < 1 || o.window > 255:
		return fmt.Errorf("--window %d: want 1 to 255 (the server's answer queue holds 256)", o.window)
	case o.rate <= 0 || o.rate > 1e6:
		return fmt.Errorf("--rate %v: want 0 < rate <= 1,000,000", o.rate)
	case o.duration <= 0 || o.duration > time.Hour || o.warmup < 0 || o.drain < 0 || o.drain > 10*time.Minute || o.settle < 0 || o.settle > 10*time.Minute:
		return errors.New("--duration must be in (0, 1h]; --warmup not negative; --drain and --settle in [0, 10m]")
	case o.size < 64 || o.size > 1<<20:
		return fmt.Errorf("--size %d: want 64 to 1 MiB", o.size)
	case o.rounds < 1 || o.rounds > 1000 || o.interval <= 0:
		return errors.New("--rounds must be 1 to 1000 and --interval positive")
	case o.batch < 1:
		return errors.New("--batch must be positive")
	case o.connections < 1 || o.connections > 100000:
		return fmt.Errorf("--connections %d: want 1 to 100,000", o.connections)
	}
	for _, s := range slices.Concat(o.servers, o.metrics) {
		if _, err := checkLoopback(s); err != nil {
			return err
		}
	}
	if len(o.metrics) > 0 && len(o.metrics) != len(o.servers) {
		return fmt.Errorf("--metrics: %d URLs for %d servers; give one per --server", len(o.metrics), len(o.servers))
	}
	if len(o.servers) > 0 && (o.store != "" || o.fanout != "" || o.nodes != 1 || o.parleyd != "" || len(o.serverFlags) > 0) {
		return errors.New("--store, --fanout, --nodes, --parleyd and --server-flag apply only with --spawn")
	}
	if isPostgres(o.store) {
		if err := checkPostgresLoopback(o.store); err != nil {
			return err
		}
	}
	if isNATS(o.fanout) {
		for _, u := range strings.Split(o.fanout, ",") {
			if _, err := checkNATSURL(u); err != nil {
				return err
			}
		}
	}
	return nil
}

// validateLargeGroup checks and completes the options of large-group.
func (o *options) validateLargeGroup() error {
	if len(o.servers) > 0 {
		return errors.New("large-group spawns its own server (it reads the server process's I/O and CPU): drop --server")
	}
	o.spawn = true
	switch o.store {
	case "sqlite":
		o.store = ""
	case "postgres":
		o.store = o.postgres
	}
	if !o.set["batch"] {
		o.batch = defaultLargeGroupBatch
	}
	switch {
	case o.members < 2 || o.members > 100000:
		return fmt.Errorf("--members %d: want 2 to 100,000", o.members)
	case o.commits < 1 || o.commits > 1000:
		return fmt.Errorf("--commits %d: want 1 to 1,000", o.commits)
	case o.nodes != 1:
		return errors.New("large-group measures one node: drop --nodes")
	}
	return nil
}

// validateCompare checks and completes the options of compare.
func (o *options) validateCompare() error {
	if len(o.servers) > 0 || o.store != "" || o.fanout != "" {
		return errors.New("compare spawns its own servers: use --postgres and --nats instead of --server, --store and --fanout")
	}
	o.spawn = true
	if len(o.configs) == 0 {
		o.configs = []string{cfgSQLite, cfgPostgres, cfgCluster}
	}
	seen := map[string]bool{}
	for _, c := range o.configs {
		if c != cfgSQLite && c != cfgPostgres && c != cfgCluster {
			return fmt.Errorf("--configs: %q is not sqlite, postgres or cluster", c)
		}
		if seen[c] {
			return fmt.Errorf("--configs: %q twice", c)
		}
		seen[c] = true
	}
	if !o.set["nodes"] {
		o.nodes = 3
	}
	if !o.set["sizes"] {
		o.sizes = []int{10000}
	}
	if !o.set["rate"] {
		o.rate = compareRate
	}
	if !o.set["drain"] {
		// A slow configuration's last fan-out round still completes.
		o.drain = compareDrain
	}
	if err := checkPostgresLoopback(o.postgres); err != nil {
		return err
	}
	if _, err := checkNATSURL(o.nats); err != nil {
		return err
	}
	return nil
}
