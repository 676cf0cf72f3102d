package main

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/parley-chat/parley/internal/logrl"
	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/blob"
	"github.com/parley-chat/parley/server/blob/pgblob"
	"github.com/parley-chat/parley/server/delivery"
	natsfanout "github.com/parley-chat/parley/server/fanout/nats"
	"github.com/parley-chat/parley/server/follower"
	"github.com/parley-chat/parley/server/httpapi"
	"github.com/parley-chat/parley/server/store"
	"github.com/parley-chat/parley/server/webclient"
)

// bootstrapInviteTTL is the lifetime of the first-start admin invite.
const bootstrapInviteTTL = 7 * 24 * time.Hour

// bootstrapFile records the current first-start invite (its id, code and
// expiry, mode 0600) in the data directory, so that a restart before
// anyone registered prints the same invite again instead of invalidating
// the one handed out.
const bootstrapFile = "bootstrap-invite"

// newLogger returns the slog logger of the configuration on w. Repeated
// records (same level and message) are rate-limited, so that nothing a
// client does can flood the log.
func newLogger(c LogConfig, w io.Writer) *slog.Logger {
	level, _ := parseLevel(c.Level)
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler = slog.NewTextHandler(w, opts)
	if c.Format == "json" {
		h = slog.NewJSONHandler(w, opts)
	}
	return slog.New(logrl.NewHandler(h, logrl.Config{Burst: c.MaxRepeats, Interval: c.RepeatInterval}, nil))
}

// cmdServe runs the server until ctx ends.
func cmdServe(ctx context.Context, args []string, e *env) error {
	var cf configFlags
	fs := newFlagSet("serve", e)
	cf.bind(fs, nil)
	fs.Usage = func() {
		fmt.Fprintf(e.stderr, "Usage: parleyd [serve] [flags]\n\nEvery flag is also a config file key and a PARLEY_* environment variable\n(see docs/operations.md). Flags:\n")
		fs.PrintDefaults()
	}
	pos, err := parseFlags(fs, args)
	if err != nil {
		return err
	}
	if len(pos) > 0 {
		return usagef("serve: unexpected argument %q", pos[0])
	}
	c, err := loadConfig(&cf, e.getenv)
	if err != nil {
		return usageError{err}
	}
	return serve(ctx, c, e)
}

// serve runs the server with the validated configuration until ctx ends,
// then shuts it down gracefully.
func serve(ctx context.Context, c Config, e *env) (err error) {
	log := newLogger(c.Log, e.stderr)

	if err := ensureDataDir(c.DataDir, log); err != nil {
		return err
	}
	tlsS, err := setupTLS(c, e, log)
	if err != nil {
		return err
	}

	nodeID := c.NodeID
	if nodeID == "" {
		nodeID = defaultNodeID(e.rand)
	}
	baseLog := log
	log = log.With("node", nodeID)

	// A damaged database stops the start before it is opened (check.go).
	if err := startupCheck(ctx, c, log); err != nil {
		return err
	}
	st, where, err := openStore(ctx, c, false, nodeID)
	if err != nil {
		return err
	}
	defer func() {
		// The store is closed last, after every user of it stopped.
		if cerr := st.Close(); cerr != nil {
			log.Error("close store", "err", cerr)
			if err == nil {
				err = cerr
			}
		}
	}()
	bs := &bootstrapStore{Store: st, log: log}
	invite, err := bootstrap(ctx, c, bs, e)
	if err != nil {
		return err
	}

	blobs, blobsWhere, err := openBlobs(ctx, c, nodeID)
	if err != nil {
		return err
	}
	var checks []readyCheck
	if pb, ok := blobs.(*pgblob.Store); ok {
		defer pb.Close()
		checks = append(checks, readyCheck{"attachment store", pb.Ping})
	}

	reg := prometheus.NewRegistry()
	var metricsReg prometheus.Registerer
	if c.Metrics {
		reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
		metricsReg = reg
	}
	opts := delivery.Options{
		Now:     e.now,
		Logger:  log,
		Rand:    e.rand,
		Metrics: metricsReg,
	}
	fanoutWhere := "local (in-process, single node)"
	if urls, _ := parseFanout(c.Fanout); urls != nil {
		n, err := openNATS(ctx, c, urls, nodeID, baseLog, metricsReg)
		if err != nil {
			return err
		}
		// Closed after the service and the API stopped publishing
		// (deferred calls run in reverse order).
		defer n.Close()
		opts.Notifier = n
		checks = append(checks, readyCheck{"NATS", func(context.Context) error { return n.Healthy() }})
		fanoutWhere = fmt.Sprintf("NATS %s (prefix %s)", redactURLs(urls), c.FanoutPrefix)
	}
	dcfg := deliveryConfig(c)
	svc, err := delivery.New(dcfg, bs, blobs, follower.New(nil), opts)
	if err != nil {
		return usageError{fmt.Errorf("delivery configuration: %v", err)}
	}
	// Conversations stored before trees were stored apart from the
	// follower state are converted once, before the API serves them.
	if n, err := svc.MoveLegacyTrees(ctx); err != nil {
		return fmt.Errorf("store the trees of %d conversations apart from their follower state: %w", n, err)
	} else if n > 0 {
		log.Info("stored conversation trees apart from their follower state", "conversations", n)
	}
	api, err := httpapi.New(httpapiConfig(c), svc, log, metricsReg)
	if err != nil {
		return usageError{fmt.Errorf("HTTP configuration: %v", err)}
	}
	web, webFaulty, err := openWebClient(c, log)
	if err != nil {
		return err
	}
	handler := withWebClient(withReadiness(api, checks, log), web)

	ln, err := listenCapped(c, api, metricsReg, log)
	if err != nil {
		return err
	}
	defer ln.Close()
	metrics, err := startMetrics(c, reg, log)
	if err != nil {
		return err
	}
	defer metrics.shutdown(context.Background())
	srv := &http.Server{
		Handler:   handler,
		TLSConfig: tlsS.config,
		// Also bounds the TLS handshake (net/http uses the smallest of
		// its timeouts for it); request bodies are bounded by the API.
		ReadHeaderTimeout: c.Connections.HeaderTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.With("component", "http").Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return context.WithoutCancel(ctx) },
	}

	// The service's background work runs until everything that submits
	// to it has stopped.
	svcCtx, stopSvc := context.WithCancel(context.WithoutCancel(ctx))
	defer stopSvc()
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		if err := svc.Run(svcCtx); err != nil && !errors.Is(err, context.Canceled) {
			log.Error("delivery service stopped", "err", err)
		}
	}()
	tlsS.serveACMEHTTP(ctx, log)

	serveErr := make(chan error, 1)
	go func() {
		if tlsS.config != nil {
			serveErr <- srv.ServeTLS(ln, "", "")
		} else {
			serveErr <- srv.Serve(ln)
		}
	}()

	printStart(e.stdout, c, ln.Addr(), tlsS, startInfo{node: nodeID, store: where, blobs: blobsWhere, fanout: fanoutWhere, metrics: metrics.describe(), webBundle: web.BundleHash(), webFaulty: webFaulty}, invite)
	log.Info("parleyd started", "version", version(), "listen", ln.Addr().String(), "server_name", c.ServerName,
		"store", where, "attachments", blobsWhere, "fanout", fanoutWhere, "tls", c.TLS.Mode, "open_registration", c.OpenRegistration, "metrics", metrics.describe(), "web_bundle", web.BundleHash())
	if e.ready != nil {
		e.ready(ln.Addr().String())
	}

	var runErr error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", c.ShutdownTimeout)
	case err := <-serveErr:
		runErr = fmt.Errorf("serve on %s: %v", c.Listen, err)
		log.Error("server failed; shutting down", "err", err)
	}

	sctx, cancel := context.WithTimeout(context.Background(), c.ShutdownTimeout)
	defer cancel()
	// Stop accepting and drain HTTP requests while the API closes its
	// WebSockets; both need the service still running.
	var swg sync.WaitGroup
	swg.Add(2)
	go func() {
		defer swg.Done()
		if err := api.Shutdown(sctx); err != nil {
			log.Warn("WebSocket drain incomplete", "err", err)
		}
	}()
	go func() {
		defer swg.Done()
		if err := srv.Shutdown(sctx); err != nil {
			log.Warn("HTTP shutdown incomplete; closing remaining connections", "err", err)
			srv.Close()
		}
	}()
	swg.Wait()
	stopSvc()
	wg.Wait()
	log.Info("parleyd stopped")
	return runErr
}

// openWebClient returns the web client's handler, on the files of
// c.WebDir or else those embedded in the binary. Faulty files of
// c.WebDir stop the start; faulty embedded ones (a broken build) leave
// the server without its web client, with an error in the log.
func openWebClient(c Config, log *slog.Logger) (web *webclient.Handler, faulty bool, err error) {
	if c.WebDir != "" {
		root := os.DirFS(c.WebDir)
		ui, _ := fs.Sub(root, "ui")
		dist, _ := fs.Sub(root, "dist")
		h, err := webclient.New(ui, dist)
		if err != nil {
			return nil, false, usageError{fmt.Errorf("web_dir %s: %v", c.WebDir, err)}
		}
		return h, false, nil
	}
	h, err := webclient.New(webclient.Embedded())
	if err != nil {
		log.Error("the web client embedded in this binary is faulty; serving none", "err", err)
		return webclient.NotBuilt(), true, nil
	}
	return h, false, nil
}

// withWebClient serves the API's paths (/v1/..., /healthz, /readyz) with
// api and every other path with web, the web client. Every response
// carries the web client's security headers, the API's too. The web
// client's files are served from memory, outside the API's rate limits.
func withWebClient(api, web http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		webclient.SetSecurityHeaders(w.Header())
		switch p := r.URL.Path; {
		case p == "/v1" || strings.HasPrefix(p, "/v1/") || p == "/healthz" || p == "/readyz":
			api.ServeHTTP(w, r)
		default:
			web.ServeHTTP(w, r)
		}
	})
}

// readyCheck is a dependency /readyz checks besides the store.
type readyCheck struct {
	name  string
	check func(context.Context) error
}

// withReadiness answers GET /readyz with 503 unavailable while one of the
// checks fails, naming the dependency; otherwise the request goes on to h,
// whose own /readyz checks the store and shutdown.
func withReadiness(h http.Handler, checks []readyCheck, log *slog.Logger) http.Handler {
	if len(checks) == 0 {
		return h
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/readyz" || r.Method != http.MethodGet {
			h.ServeHTTP(w, r)
			return
		}
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		for _, c := range checks {
			if err := c.check(ctx); err != nil {
				log.Warn("not ready", "dependency", c.name, "err", err)
				b, _ := json.Marshal(protocol.NewError(protocol.CodeUnavailable, "%s unreachable", c.name))
				w.Header().Set("Content-Type", "application/json")
				w.Header().Set("Cache-Control", "no-store")
				w.WriteHeader(http.StatusServiceUnavailable)
				w.Write(append(b, '\n'))
				return
			}
		}
		h.ServeHTTP(w, r)
	})
}

// defaultNodeID returns the host name and four random hex digits.
func defaultNodeID(rand io.Reader) string {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "parleyd"
	}
	host, _, _ = strings.Cut(host, ".")
	var b [2]byte
	io.ReadFull(rand, b[:])
	id := fmt.Sprintf("%s-%x", host, b)
	if !natsfanout.ValidNodeID(id) {
		id = fmt.Sprintf("parleyd-%x", b)
	}
	return id
}

// openBlobs opens the configured attachment store and describes it.
func openBlobs(ctx context.Context, c Config, nodeID string) (delivery.BlobStore, string, error) {
	spec, err := parseStore(c.Store, c.StoreSchema, c.DataDir)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("store: %v", err)}
	}
	bspec, err := parseBlobs(c.Blobs, spec.backend, c.DataDir)
	if err != nil {
		return nil, "", usageError{fmt.Errorf("blobs: %v", err)}
	}
	if bspec.backend == "postgres" {
		pc := pgblob.NewConfig(withApplicationName(spec.dsn, nodeID))
		pc.Schema = spec.schema
		b, err := pgblob.Open(ctx, pc)
		if err != nil {
			return nil, "", fmt.Errorf("attachment store: %v", err)
		}
		return b, "postgres, chunked in " + spec.describe(), nil
	}
	b, err := blob.NewDisk(bspec.path)
	if err != nil {
		return nil, "", fmt.Errorf("attachments directory: %v", err)
	}
	return b, "disk:" + bspec.path, nil
}

// natsConnectTimeout bounds the first connection to NATS at start.
const natsConnectTimeout = 30 * time.Second

// openNATS connects the NATS notifier.
func openNATS(ctx context.Context, c Config, urls []string, nodeID string, log *slog.Logger, reg prometheus.Registerer) (*natsfanout.Notifier, error) {
	nc := natsfanout.NewConfig()
	nc.URL = strings.Join(urls, ",")
	nc.Prefix = c.FanoutPrefix
	nc.NodeID = nodeID
	nc.Logger = log
	nc.Registerer = reg
	if c.FanoutCredsFile != "" {
		nc.Options = append(nc.Options, natsgo.UserCredentials(c.FanoutCredsFile))
	}
	if c.FanoutCAFile != "" {
		nc.Options = append(nc.Options, natsgo.RootCAs(c.FanoutCAFile))
	}
	cctx, cancel := context.WithTimeout(ctx, natsConnectTimeout)
	defer cancel()
	n, err := natsfanout.New(cctx, nc)
	if err != nil {
		return nil, fmt.Errorf("fanout: %s: %v", redactURLs(urls), err)
	}
	return n, nil
}

// redactURLs joins URLs with their passwords and tokens removed.
func redactURLs(urls []string) string {
	out := make([]string, len(urls))
	for i, raw := range urls {
		u, err := url.Parse(raw)
		if err != nil {
			out[i] = "?"
			continue
		}
		out[i] = u.Scheme + "://" + u.Host
		if u.User != nil {
			if _, hasPass := u.User.Password(); hasPass {
				out[i] = u.Scheme + "://" + u.User.Username() + ":…@" + u.Host
			} else {
				out[i] = u.Scheme + "://…@" + u.Host // a token
			}
		}
	}
	return strings.Join(out, ",")
}

// ensureDataDir creates the data directory (0700) or checks it.
func ensureDataDir(dir string, log *slog.Logger) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data directory: %v", err)
	}
	fi, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("data directory: %v", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("data directory %s is not a directory", dir)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		log.Warn("data directory is accessible to other users; chmod 700 it", "path", dir, "mode", fi.Mode().Perm().String())
	}
	return nil
}

// deliveryConfig maps the configuration onto the delivery service's.
func deliveryConfig(c Config) delivery.Config {
	d := delivery.DefaultConfig()
	d.ServerName = c.ServerName
	d.OpenRegistration = c.OpenRegistration
	d.AllowForeignCredentials = c.AllowForeignCredentials
	d.SessionTTL = c.SessionTTL
	d.Retention = c.Retention
	d.MaxMessageBytes = c.Limits.MaxMessageBytes
	d.MaxGroupStateBytes = c.Limits.MaxGroupStateBytes
	d.MaxPendingProposals, d.MaxPendingProposalBytes = c.Limits.MaxPendingProposals, c.Limits.MaxPendingProposalBytes
	d.TreeHistoryEpochs = uint64(c.Limits.TreeHistoryEpochs)
	d.ClaimRate, d.ClaimBurst = c.RateLimits.ClaimsPerTarget.PerSecond, c.RateLimits.ClaimsPerTarget.Burst
	d.DeviceClaimRate, d.DeviceClaimBurst = c.RateLimits.ClaimsPerDevice.PerSecond, c.RateLimits.ClaimsPerDevice.Burst
	d.BlobReservationTTL = c.Limits.BlobReservationTTL
	d.Version = version()
	return d
}

// httpapiConfig maps the configuration onto the HTTP adapter's.
func httpapiConfig(c Config) httpapi.Config {
	h := httpapi.DefaultConfig()
	h.MaxBodyBytes = c.Limits.MaxBodyBytes
	h.MaxFrameBytes = c.Limits.MaxFrameBytes
	h.MaxBlobBytes = c.Limits.MaxBlobBytes
	h.BlobQuotaBytes = c.Limits.BlobQuotaBytes
	h.AllowedOrigins = c.AllowedOrigins
	h.PingInterval = c.WebSocket.PingInterval
	h.ReadTimeout = c.WebSocket.PongTimeout
	h.WriteTimeout = c.WebSocket.WriteTimeout
	h.BodyTimeout = c.Connections.BodyTimeout
	h.BodyMinRate = c.Connections.BodyMinRate
	h.MaxConnsPerAddr = c.Connections.MaxPerAddr
	h.TrustedProxies, _ = trustedProxies(c.Connections.TrustedProxies) // validated
	h.ClientIPHeader = c.Connections.ClientIPHeader
	rate := func(r Rate) httpapi.Rate { return httpapi.Rate{PerSecond: r.PerSecond, Burst: r.Burst} }
	h.RateLimits = httpapi.RateLimits{
		RegisterPerIP:   rate(c.RateLimits.RegisterPerIP),
		AuthPerIP:       rate(c.RateLimits.AuthPerIP),
		RequestsPerIP:   rate(c.RateLimits.RequestsPerIP),
		RequestsPerUser: rate(c.RateLimits.RequestsPerUser),
		ClaimsPerUser:   rate(c.RateLimits.ClaimsPerUser),
		LookupsPerUser:  rate(c.RateLimits.LookupsPerUser),
		PostsPerDevice:  rate(c.RateLimits.PostsPerDevice),

		FramesPerConnection: rate(c.RateLimits.FramesPerConnection),
	}
	return h
}

// startInfo describes the node's backends for the start message.
type startInfo struct {
	node, store, blobs, fanout, metrics string
	// webBundle is the web client's bundle hash, "" when it is not built.
	webBundle string
	// webFaulty says that the embedded web client is faulty (and not
	// served).
	webFaulty bool
}

// printStart writes the start message on stdout: the URL, the data
// directory, the node and its backends, TLS, and the first-start invite
// if one was created.
func printStart(w io.Writer, c Config, addr net.Addr, t *tlsSetup, si startInfo, invite *bootstrapInvite) {
	scheme := "https"
	if t.config == nil {
		scheme = "http"
	}
	host, port, _ := net.SplitHostPort(addr.String())
	if ip := net.ParseIP(host); ip != nil && ip.IsUnspecified() {
		host, _, _ = strings.Cut(c.ServerName, ":")
	}
	fmt.Fprintf(w, "parleyd %s: server %q listening on %s://%s\n", version(), c.ServerName, scheme, net.JoinHostPort(host, port))
	fmt.Fprintf(w, "data directory: %s\n", c.DataDir)
	fmt.Fprintf(w, "node: %s\n", si.node)
	fmt.Fprintf(w, "store: %s\n", si.store)
	fmt.Fprintf(w, "attachments: %s\n", si.blobs)
	fmt.Fprintf(w, "fanout: %s\n", si.fanout)
	fmt.Fprintf(w, "TLS: %s\n", t.description)
	fmt.Fprintf(w, "metrics: %s\n", si.metrics)
	switch {
	case si.webBundle != "":
		fmt.Fprintf(w, "web client: %s://%s/ (bundle sha256 %s)\n", scheme, net.JoinHostPort(host, port), si.webBundle)
	case si.webFaulty:
		fmt.Fprintf(w, "web client: faulty build, not served (see the log)\n")
	default:
		fmt.Fprintf(w, "web client: not built (scripts/build-web)\n")
	}
	if t.fingerprint != "" {
		fmt.Fprintf(w, "TLS certificate SHA-256 fingerprint: %s\n", t.fingerprint)
	}
	if invite != nil && invite.replaced != "" {
		fmt.Fprintf(w, "%s: a new admin invite replaces it (the old code no longer works)\n", invite.replaced)
	}
	if invite != nil {
		fmt.Fprintf(w, "no users yet: admin invite code (one use, expires %s; the first user who registers with it becomes an administrator):\n", invite.expires.Format(time.RFC3339))
		fmt.Fprintf(w, "admin invite: %s\n", invite.code)
	}
}

// bootstrapInvite is the first-start invite.
type bootstrapInvite struct {
	code    string
	expires time.Time
	// replaced says why an earlier invite was replaced ("" if none was).
	replaced string
}

// bootstrapRecord is the content of bootstrapFile.
type bootstrapRecord struct {
	ID      int64     `json:"id"`
	Code    string    `json:"code"`
	Expires time.Time `json:"expires"`
}

// bootstrap creates the first-start admin invite when the store has no
// users and registration is invite-only. A restart keeps the invite of a
// previous start that nobody used until it expires, and prints it again;
// an expired or vanished one is replaced, and the start message says so.
// The registration that consumes it creates an administrator (see
// bootstrapStore).
func bootstrap(ctx context.Context, c Config, bs *bootstrapStore, e *env) (*bootstrapInvite, error) {
	if c.OpenRegistration {
		return nil, nil
	}
	users, err := bs.Users(ctx)
	if err != nil {
		return nil, fmt.Errorf("first start: list users: %v", err)
	}
	if len(users) > 0 {
		return nil, nil
	}
	now := e.now().UTC().Truncate(time.Microsecond)
	path := filepath.Join(c.DataDir, bootstrapFile)
	replaced := ""
	if b, err := os.ReadFile(path); err == nil {
		inv, why, err := previousInvite(ctx, bs, b, now)
		if err != nil {
			return nil, err
		}
		if inv != nil {
			return inv, nil
		}
		replaced = why
	} else if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("first start: read %s: %v", path, err)
	}
	code, hash, err := newInviteCode(e.rand)
	if err != nil {
		return nil, err
	}
	inv, err := bs.CreateInvite(ctx, store.Invite{CodeHash: hash, UsesLeft: 1, Expires: now.Add(bootstrapInviteTTL), Created: now})
	if err != nil {
		return nil, fmt.Errorf("first start: create admin invite: %v", err)
	}
	rec, _ := json.Marshal(bootstrapRecord{ID: inv.ID, Code: code, Expires: inv.Expires})
	if err := writeFileAtomic(path, append(rec, '\n')); err != nil {
		return nil, fmt.Errorf("first start: %v", err)
	}
	bs.setAdminInvite(hash)
	return &bootstrapInvite{code: code, expires: inv.Expires, replaced: replaced}, nil
}

// previousInvite returns the first-start invite recorded in data (the
// content of bootstrapFile) if the store still holds it unused and
// unexpired, and arms bs with it. Otherwise it deletes it from the store
// and returns why it is not kept.
func previousInvite(ctx context.Context, bs *bootstrapStore, data []byte, now time.Time) (*bootstrapInvite, string, error) {
	var rec bootstrapRecord
	if err := json.Unmarshal(data, &rec); err != nil || rec.Code == "" {
		// The file of an older parleyd holds the id alone: the code
		// is lost, so the invite cannot be printed again.
		if id, err := strconv.ParseInt(strings.TrimSpace(string(data)), 10, 64); err == nil {
			rec = bootstrapRecord{ID: id}
		} else {
			return nil, "the record of the previous admin invite was unreadable", nil
		}
	}
	h := sha256.Sum256([]byte(rec.Code))
	invs, err := bs.Invites(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("first start: list invites: %v", err)
	}
	var found *store.Invite
	for i := range invs {
		if invs[i].ID == rec.ID {
			found = &invs[i]
		}
	}
	switch {
	case found == nil:
		return nil, "the previous admin invite was deleted", nil
	case rec.Code == "":
		// Falls through to the deletion below.
	case subtle.ConstantTimeCompare(found.CodeHash, h[:]) != 1:
		return nil, "the previous admin invite does not match its record", nil
	case found.UsesLeft > 0 && now.Before(found.Expires):
		bs.setAdminInvite(found.CodeHash)
		return &bootstrapInvite{code: rec.Code, expires: found.Expires}, "", nil
	}
	if err := bs.DeleteInvite(ctx, found.ID); err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, "", fmt.Errorf("first start: delete previous admin invite %d: %v", found.ID, err)
	}
	switch {
	case rec.Code == "":
		return nil, "the previous admin invite was recorded by an older parleyd without its code", nil
	case found.UsesLeft <= 0:
		return nil, "the previous admin invite was used up", nil
	}
	return nil, "the previous admin invite expired", nil
}

// writeFileAtomic writes a file of mode 0600 by a rename, so that a crash
// leaves the old content or the new.
func writeFileAtomic(path string, data []byte) error {
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		return err
	}
	if err := os.Rename(tmp, path); err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

// bootstrapStore is the store as the delivery service sees it, with one
// addition: the registration that consumes the first-start invite
// creates an administrator. Everything else passes through.
type bootstrapStore struct {
	store.Store
	log *slog.Logger

	mu   sync.Mutex
	hash []byte // hash is the first-start invite's code hash; nil once used.
}

// setAdminInvite arms the store with the first-start invite's hash.
func (b *bootstrapStore) setAdminInvite(hash []byte) {
	b.mu.Lock()
	b.hash = hash
	b.mu.Unlock()
}

// CreateUser implements store.Store; a user registered with the
// first-start invite becomes an administrator.
func (b *bootstrapStore) CreateUser(ctx context.Context, u store.NewUser) (store.User, store.Device, error) {
	b.mu.Lock()
	admin := b.hash != nil && u.InviteHash != nil && subtle.ConstantTimeCompare(b.hash, u.InviteHash) == 1
	b.mu.Unlock()
	if admin {
		u.Admin = true
	}
	nu, d, err := b.Store.CreateUser(ctx, u)
	if err == nil && admin {
		b.mu.Lock()
		b.hash = nil
		b.mu.Unlock()
		b.log.Info("first administrator registered with the first-start invite", "user", nu.Name)
	}
	return nu, d, err
}
