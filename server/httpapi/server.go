package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/connlimit"
	"github.com/parley-chat/parley/server/delivery"
)

// Server serves the protocol over HTTP. It is an http.Handler; the caller
// runs the http.Server (TLS, listeners) and calls Shutdown before the
// http.Server's own Shutdown, which does not see hijacked WebSockets.
// The caller also bounds the TLS handshake and headers
// (http.Server.ReadHeaderTimeout) and caps direct clients per address at
// the listener (connlimit.Listen with TrustedProxy as exempt); the
// Server bounds request bodies and caps clients behind trusted proxies.
type Server struct {
	cfg  Config
	svc  *delivery.Service
	log  *slog.Logger
	mux  *http.ServeMux
	info protocol.ServerInfo

	register, auth, perIP, perUser, claims, lookups, posts *delivery.Limiter

	requests *prometheus.CounterVec
	wsFrames *prometheus.CounterVec

	// proxiedConns caps the requests of clients behind trusted proxies
	// per address (conns.go).
	proxiedConns *connlimit.Limiter

	closing  atomic.Bool
	connMu   sync.Mutex
	conns    map[*wsConn]struct{}
	connWG   sync.WaitGroup
	stopPing context.CancelFunc
	pingDone chan struct{}
}

// New returns a Server for the service. reg (may be nil) registers the
// adapter's metrics; the Server does not serve them (parleyd serves
// metrics on a listener of their own).
func New(cfg Config, svc *delivery.Service, logger *slog.Logger, reg prometheus.Registerer) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	if svc == nil {
		return nil, errors.New("httpapi: new: nil service")
	}
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	now := svc.Now
	lim := func(r Rate) *delivery.Limiter { return delivery.NewLimiter(r.PerSecond, r.Burst, now) }
	s := &Server{
		cfg: cfg, svc: svc, log: logger, mux: http.NewServeMux(),
		register: lim(cfg.RateLimits.RegisterPerIP), auth: lim(cfg.RateLimits.AuthPerIP), perIP: lim(cfg.RateLimits.RequestsPerIP),
		perUser: lim(cfg.RateLimits.RequestsPerUser), claims: lim(cfg.RateLimits.ClaimsPerUser), lookups: lim(cfg.RateLimits.LookupsPerUser), posts: lim(cfg.RateLimits.PostsPerDevice),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_http_requests_total", Help: "HTTP requests by route and status."}, []string{"route", "status"}),
		wsFrames: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "parley_ws_frames_received_total", Help: "WebSocket frames received by type."}, []string{"type"}),
		conns:    map[*wsConn]struct{}{},
	}
	s.info = svc.Info()
	s.info.Limits.MaxRequestBytes = cfg.MaxBodyBytes
	s.info.Limits.MaxFrameBytes = cfg.MaxFrameBytes
	s.info.Limits.MaxAttachmentBytes = cfg.MaxBlobBytes
	s.info.Limits.AttachmentQuotaBytes = cfg.BlobQuotaBytes
	var err error
	if s.proxiedConns, err = connlimit.New("proxied_clients", 0, cfg.MaxConnsPerAddr); err != nil {
		return nil, fmt.Errorf("httpapi: new: %v", err)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{s.requests, s.wsFrames} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("httpapi: register metrics: %v", err)
			}
		}
		if err := s.proxiedConns.Register(reg); err != nil {
			return nil, fmt.Errorf("httpapi: %v", err)
		}
	}
	s.routes()
	ctx, cancel := context.WithCancel(context.Background())
	s.stopPing, s.pingDone = cancel, make(chan struct{})
	go s.pinger(ctx)
	return s, nil
}

// routes registers every handler.
func (s *Server) routes() {
	m := s.mux
	m.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ok\n")
	})
	m.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 5*time.Second)
		defer cancel()
		if s.closing.Load() {
			s.writeError(w, r, protocol.NewError(protocol.CodeUnavailable, "shutting down"))
			return
		}
		if err := s.svc.Ready(ctx); err != nil {
			s.log.Warn("not ready", "err", err)
			s.writeError(w, r, protocol.NewError(protocol.CodeUnavailable, "store unreachable"))
			return
		}
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.WriteString(w, "ready\n")
	})

	m.HandleFunc("GET /v1/info", func(w http.ResponseWriter, r *http.Request) { s.writeJSON(w, r, http.StatusOK, s.info) })
	m.HandleFunc("POST /v1/register", s.open(s.register, func(w http.ResponseWriter, r *http.Request) (any, error) {
		var req protocol.RegisterRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.Register(r.Context(), req)
	}))
	m.HandleFunc("POST /v1/auth/challenge", s.open(s.auth, func(w http.ResponseWriter, r *http.Request) (any, error) {
		var req protocol.ChallengeRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.Challenge(r.Context(), req)
	}))
	m.HandleFunc("POST /v1/auth/session", s.open(s.auth, func(w http.ResponseWriter, r *http.Request) (any, error) {
		var req protocol.SessionRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.CreateSession(r.Context(), req)
	}))

	m.HandleFunc("DELETE /v1/auth/session", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		return nil, s.svc.Logout(r.Context(), ss)
	}))
	m.HandleFunc("GET /v1/users/{name}", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		return s.svc.User(r.Context(), ss, r.PathValue("name"))
	}))
	m.HandleFunc("POST /v1/devices", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.AddDeviceRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.AddDevice(r.Context(), ss, req)
	}))
	m.HandleFunc("POST /v1/devices/recover", s.open(s.register, func(w http.ResponseWriter, r *http.Request) (any, error) {
		var req protocol.RecoverDeviceRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.RecoverDevice(r.Context(), req)
	}))
	m.HandleFunc("DELETE /v1/devices/{device}", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.RevokeDeviceRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return nil, s.svc.RevokeDevice(r.Context(), ss, protocol.DeviceID(r.PathValue("device")), req)
	}))
	m.HandleFunc("PUT /v1/devices/{device}/name", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.SetDeviceNameRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return nil, s.svc.SetDeviceName(r.Context(), ss, protocol.DeviceID(r.PathValue("device")), req)
	}))
	s.linkRoutes()
	m.HandleFunc("GET /v1/revocations", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		return s.svc.Revocations(r.Context(), ss)
	}))
	m.HandleFunc("POST /v1/keypackages", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.UploadKeyPackagesRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.UploadKeyPackages(r.Context(), ss, req)
	}))
	m.HandleFunc("GET /v1/keypackages/count", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		suite, err := queryUint(r, "cipher_suite", math.MaxUint16)
		if err != nil {
			return nil, err
		}
		return s.svc.CountKeyPackages(r.Context(), ss, uint16(suite))
	}))
	m.HandleFunc("POST /v1/keypackages/claim", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.ClaimKeyPackagesRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		if err := s.charge(s.claims, "claim", ss, max(1, len(req.Users))); err != nil {
			return nil, err
		}
		return s.svc.ClaimKeyPackages(r.Context(), ss, req)
	}))
	m.HandleFunc("POST /v1/users/lookup", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.LookupUsersRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		if err := s.charge(s.lookups, "lookup", ss, len(req.Users)); err != nil {
			return nil, err
		}
		return s.svc.LookupUsers(r.Context(), ss, req)
	}))
	m.HandleFunc("GET /v1/conversations", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		switch r.URL.Query().Get("account") {
		case "", "0", "false":
			return s.svc.Conversations(r.Context(), ss)
		case "1", "true":
			return s.svc.AccountConversations(r.Context(), ss)
		}
		return nil, protocol.NewError(protocol.CodeBadRequest, "query parameter account=%.30q is not 0 or 1", r.URL.Query().Get("account"))
	}))
	m.HandleFunc("POST /v1/conversations", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.CreateConversationRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.CreateConversation(r.Context(), ss, req)
	}))
	m.HandleFunc("GET /v1/conversations/{id}", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		id, err := convID(r)
		if err != nil {
			return nil, err
		}
		return s.svc.Conversation(r.Context(), ss, id)
	}))
	m.HandleFunc("GET /v1/conversations/{id}/groupinfo", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		id, err := convID(r)
		if err != nil {
			return nil, err
		}
		withTree := true
		switch r.URL.Query().Get("tree") {
		case "", "1", "true":
		case "0", "false":
			withTree = false
		default:
			return nil, protocol.NewError(protocol.CodeBadRequest, "query parameter tree=%.30q is not 0 or 1", r.URL.Query().Get("tree"))
		}
		return s.svc.GroupInfo(r.Context(), ss, id, withTree)
	}))
	m.HandleFunc("GET /v1/conversations/{id}/tree", s.authed(nil, s.tree))
	m.HandleFunc("POST /v1/conversations/{id}/handshake", s.authed(s.posts, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		id, err := convID(r)
		if err != nil {
			return nil, err
		}
		var req protocol.HandshakeRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.Handshake(r.Context(), ss, id, req)
	}))
	m.HandleFunc("POST /v1/conversations/{id}/messages", s.authed(s.posts, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		id, err := convID(r)
		if err != nil {
			return nil, err
		}
		var req protocol.SendRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.Send(r.Context(), ss, id, req)
	}))
	m.HandleFunc("GET /v1/conversations/{id}/entries", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		id, err := convID(r)
		if err != nil {
			return nil, err
		}
		after, err := queryUint(r, "after", math.MaxInt64)
		if err != nil {
			return nil, err
		}
		limit, err := queryUint(r, "limit", math.MaxInt32)
		if err != nil {
			return nil, err
		}
		return s.svc.Entries(r.Context(), ss, id, after, int(limit))
	}))
	m.HandleFunc("POST /v1/ack", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.AckRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return nil, s.svc.Ack(r.Context(), ss, req.Cursors, req.Inbox)
	}))
	m.HandleFunc("GET /v1/inbox", s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		after, err := queryUint(r, "after", math.MaxInt64)
		if err != nil {
			return nil, err
		}
		limit, err := queryUint(r, "limit", math.MaxInt32)
		if err != nil {
			return nil, err
		}
		return s.svc.Inbox(r.Context(), ss, after, int(limit))
	}))
	m.HandleFunc("POST /v1/attachments", s.authed(s.posts, s.uploadAttachment))
	m.HandleFunc("GET /v1/attachments/{id}", s.authed(nil, s.downloadAttachment))
	m.HandleFunc("GET /v1/ws", s.serveWS)

	m.HandleFunc("POST /v1/admin/invites", s.admin(func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.CreateInviteRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		if req.TTLSeconds <= 0 || req.TTLSeconds > math.MaxInt64/int64(time.Second) {
			return nil, protocol.NewError(protocol.CodeBadRequest, "ttl_seconds %d must be positive", req.TTLSeconds)
		}
		return s.svc.CreateInvite(r.Context(), req.Uses, time.Duration(req.TTLSeconds)*time.Second)
	}))
	m.HandleFunc("GET /v1/admin/invites", s.admin(func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		return s.svc.Invites(r.Context())
	}))
	m.HandleFunc("DELETE /v1/admin/invites/{id}", s.admin(func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
		if err != nil || id <= 0 {
			return nil, protocol.NewError(protocol.CodeBadRequest, "invite id must be a positive decimal number")
		}
		return nil, s.svc.DeleteInvite(r.Context(), id)
	}))
	m.HandleFunc("GET /v1/admin/users", s.admin(func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		return s.svc.Users(r.Context())
	}))
	m.HandleFunc("POST /v1/admin/users/{name}", s.admin(func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.AdminUserUpdate
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.UpdateUser(r.Context(), r.PathValue("name"), req)
	}))
	m.HandleFunc("POST /v1/admin/devices/{device}", s.admin(func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		var req protocol.AdminDeviceUpdate
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.UpdateDevice(r.Context(), protocol.DeviceID(r.PathValue("device")), req)
	}))
	m.HandleFunc("GET /v1/admin/stats", s.admin(func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		st, err := s.svc.Stats(r.Context())
		st.Connections = s.connCount()
		return st, err
	}))
	m.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, protocol.NewError(protocol.CodeNotFound, "no endpoint %s %.100s", r.Method, r.URL.Path))
	})
}

// ServeHTTP serves every route. A method not allowed on a known path
// answers 405 with a protocol error body.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w, done, ok := s.holdProxied(w, r)
	if !ok {
		return
	}
	defer done()
	r = s.limitBody(w, r)
	if ok, wait := s.perIP.Allow(s.clientIP(r)); !ok {
		s.writeError(w, r, &delivery.RateLimitError{Wait: wait, Err: protocol.NewError(protocol.CodeRateLimited, "too many requests from this address; retry later")})
		return
	}
	if _, pattern := s.mux.Handler(r); pattern == "/" {
		var allow []string
		for _, m := range []string{http.MethodGet, http.MethodPost, http.MethodDelete} {
			if _, p := s.mux.Handler(&http.Request{Method: m, URL: r.URL, Host: r.Host}); p != "/" && p != "" {
				allow = append(allow, m)
			}
		}
		if len(allow) > 0 {
			w.Header().Set("Allow", strings.Join(allow, ", "))
			s.writeStatusError(w, r, http.StatusMethodNotAllowed, protocol.NewError(protocol.CodeNotFound, "method %.10s not allowed on %.100s", r.Method, r.URL.Path))
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// bearer extracts the session token from the Authorization header (or,
// for WebSockets from browsers, the token query parameter).
func bearer(r *http.Request, query bool) string {
	if h := r.Header.Get("Authorization"); h != "" {
		if t, ok := strings.CutPrefix(h, "Bearer "); ok {
			return strings.TrimSpace(t)
		}
		return ""
	}
	if query {
		return r.URL.Query().Get("token")
	}
	return ""
}

type handler func(w http.ResponseWriter, r *http.Request) (any, error)
type authedHandler func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error)

// open wraps an unauthenticated handler with a per-IP limiter.
func (s *Server) open(lim *delivery.Limiter, h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if ok, wait := lim.Allow(s.clientIP(r)); !ok {
			s.writeError(w, r, &delivery.RateLimitError{Wait: wait, Err: protocol.NewError(protocol.CodeRateLimited, "too many attempts from this address; retry later")})
			return
		}
		v, err := h(w, r)
		s.finish(w, r, v, err)
	}
}

// authenticate returns the request's session.
func (s *Server) authenticate(r *http.Request, query bool) (*delivery.Session, error) {
	ss, err := s.svc.Authenticate(r.Context(), bearer(r, query))
	if err != nil {
		return nil, err
	}
	if ok, wait := s.perUser.Allow("u" + strconv.FormatInt(int64(ss.User), 10)); !ok {
		return nil, &delivery.RateLimitError{Wait: wait, Err: protocol.NewError(protocol.CodeRateLimited, "too many requests for this account; retry later")}
	}
	return ss, nil
}

// authed wraps a handler that needs a session, with an optional limiter
// keyed by device (posts).
func (s *Server) authed(lim *delivery.Limiter, h authedHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ss, err := s.authenticate(r, false)
		if err != nil {
			s.writeError(w, r, err)
			return
		}
		if lim != nil {
			if ok, wait := lim.Allow("d" + string(ss.Device)); !ok {
				s.writeError(w, r, &delivery.RateLimitError{Wait: wait, Err: protocol.NewError(protocol.CodeRateLimited, "too many requests; retry later")})
				return
			}
		}
		v, err := h(w, r, ss)
		s.finish(w, r, v, err)
	}
}

// charge takes n tokens (the users of a batch) of the account's bucket
// of lim: a batch of more users than the bucket holds is refused with
// too_large, one the bucket cannot pay now with rate_limited.
func (s *Server) charge(lim *delivery.Limiter, what string, ss *delivery.Session, n int) error {
	if n > lim.Burst() {
		return protocol.NewError(protocol.CodeTooLarge, "%s of %d users in one batch; this server allows at most %d at once", what, n, lim.Burst())
	}
	if ok, wait := lim.AllowN("u"+strconv.FormatInt(int64(ss.User), 10), n); !ok {
		return &delivery.RateLimitError{Wait: wait, Err: protocol.NewError(protocol.CodeRateLimited, "too many %ss of users for this account; retry later", what)}
	}
	return nil
}

// admin wraps a handler for administrators.
func (s *Server) admin(h authedHandler) http.HandlerFunc {
	return s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
		if !ss.Admin {
			return nil, protocol.NewError(protocol.CodeForbidden, "administrators only")
		}
		return h(w, r, ss)
	})
}

// finish writes a handler's result: the error, 204 for no value, else
// the JSON value. A handler that wrote its own response returns
// errWritten.
func (s *Server) finish(w http.ResponseWriter, r *http.Request, v any, err error) {
	switch {
	case errors.Is(err, errWritten):
	case err != nil:
		s.writeError(w, r, err)
	case v == nil:
		s.count(r, http.StatusNoContent)
		w.WriteHeader(http.StatusNoContent)
	default:
		s.writeJSON(w, r, http.StatusOK, v)
	}
}

var errWritten = errors.New("response written")

func (s *Server) count(r *http.Request, status int) {
	route := r.Pattern
	if route == "" {
		route = "other"
	}
	s.requests.WithLabelValues(route, strconv.Itoa(status)).Inc()
}

// writeJSON writes v as JSON with the status.
func (s *Server) writeJSON(w http.ResponseWriter, r *http.Request, status int, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		s.log.Error("encode response", "route", r.Pattern, "err", err)
		s.writeError(w, r, err)
		return
	}
	s.count(r, status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// writeError writes err as a protocol.Error with its status; internal
// faults are logged and answered without detail.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	pe, ok := delivery.AsProtocolError(err)
	if !ok {
		s.log.Error("request failed", "method", r.Method, "route", r.Pattern, "err", err)
	}
	var rl *delivery.RateLimitError
	if errors.As(err, &rl) {
		w.Header().Set("Retry-After", strconv.Itoa(max(1, int(math.Ceil(rl.Wait.Seconds())))))
	}
	s.writeStatusError(w, r, pe.Code.HTTPStatus(), pe)
}

func (s *Server) writeStatusError(w http.ResponseWriter, r *http.Request, status int, pe *protocol.Error) {
	b, _ := json.Marshal(pe)
	s.count(r, status)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(append(b, '\n'))
}

// decode reads one JSON value of at most MaxBodyBytes into v, rejecting
// unknown fields and trailing data.
func (s *Server) decode(w http.ResponseWriter, r *http.Request, v any) error {
	err := DecodeJSON(http.MaxBytesReader(w, r.Body, s.cfg.MaxBodyBytes), s.cfg.MaxBodyBytes, v)
	if err != nil && bodyTimedOut(r) {
		return s.errBodyTimeout()
	}
	return err
}

// DecodeJSON decodes exactly one JSON value from body into v, rejecting
// unknown fields and trailing data, then range-checks it when v is a
// protocol.Validator; errors are *protocol.Error values (bad_request, or
// too_large when body is an exhausted http.MaxBytesReader).
func DecodeJSON(body io.Reader, limit int64, v any) error {
	dec := json.NewDecoder(body)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var mb *http.MaxBytesError
		switch {
		case errors.As(err, &mb):
			return protocol.NewError(protocol.CodeTooLarge, "request body exceeds %d bytes", limit)
		case errors.Is(err, io.EOF):
			return protocol.NewError(protocol.CodeBadRequest, "empty request body; want a JSON object")
		}
		return protocol.NewError(protocol.CodeBadRequest, "malformed JSON request: %s", jsonReason(err))
	}
	var extra json.RawMessage
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		var mb *http.MaxBytesError
		if errors.As(err, &mb) {
			return protocol.NewError(protocol.CodeTooLarge, "request body exceeds %d bytes", limit)
		}
		return protocol.NewError(protocol.CodeBadRequest, "malformed JSON request: data after the JSON value")
	}
	if vv, ok := v.(protocol.Validator); ok {
		return vv.Validate() // range checks: nothing out of range reaches the service
	}
	return nil
}

// jsonReason describes a decoding error without quoting the input's
// values.
func jsonReason(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("syntax error at byte %d", se.Offset)
	case errors.As(err, &te):
		return fmt.Sprintf("field %q: want %s, got JSON %s", te.Field, te.Type, te.Value)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "unexpected end of input"
	}
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ")
	}
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

func convID(r *http.Request) (protocol.ConversationID, error) {
	id, err := strconv.ParseInt(r.PathValue("id"), 10, 64)
	if err != nil || id <= 0 {
		return 0, protocol.NewError(protocol.CodeBadRequest, "conversation id %.30q is not a positive decimal number", r.PathValue("id"))
	}
	return protocol.ConversationID(id), nil
}

func queryUint(r *http.Request, name string, max uint64) (uint64, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return 0, nil
	}
	n, err := strconv.ParseUint(v, 10, 64)
	if err != nil || n > max {
		return 0, protocol.NewError(protocol.CodeBadRequest, "query parameter %s=%.30q is not a number up to %d", name, v, max)
	}
	return n, nil
}

// attachmentTTL reads an upload's lifetime, the query parameter
// ttl_seconds: absent is none (0); present, it must be a number of seconds
// from 1 up to what a time.Duration holds (the service bounds it by the
// retention).
func attachmentTTL(r *http.Request) (time.Duration, error) {
	if !r.URL.Query().Has("ttl_seconds") {
		return 0, nil
	}
	n, err := queryUint(r, "ttl_seconds", math.MaxInt64/uint64(time.Second))
	if err != nil {
		return 0, err
	}
	if n == 0 {
		return 0, protocol.NewError(protocol.CodeBadRequest, "query parameter ttl_seconds must be at least 1")
	}
	return time.Duration(n) * time.Second, nil
}

func (s *Server) uploadAttachment(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
	if r.ContentLength > s.cfg.MaxBlobBytes {
		return nil, protocol.NewError(protocol.CodeTooLarge, "attachment of %d bytes exceeds %d", r.ContentLength, s.cfg.MaxBlobBytes)
	}
	ttl, err := attachmentTTL(r)
	if err != nil {
		return nil, err
	}
	body := http.MaxBytesReader(w, r.Body, s.cfg.MaxBlobBytes+1)
	info, err := s.svc.UploadAttachment(r.Context(), ss, body, r.ContentLength, s.cfg.MaxBlobBytes, s.cfg.BlobQuotaBytes, ttl)
	if err != nil && bodyTimedOut(r) {
		return nil, s.errBodyTimeout()
	}
	var mb *http.MaxBytesError
	if errors.As(err, &mb) {
		return nil, protocol.NewError(protocol.CodeTooLarge, "attachment exceeds %d bytes", s.cfg.MaxBlobBytes)
	}
	return info, err
}

// tree answers GET /v1/conversations/{id}/tree?epoch=E with the encoded
// ratchet tree of epoch E, as application/octet-stream.
func (s *Server) tree(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
	id, err := convID(r)
	if err != nil {
		return nil, err
	}
	if r.URL.Query().Get("epoch") == "" {
		return nil, protocol.NewError(protocol.CodeBadRequest, "query parameter epoch is required")
	}
	epoch, err := queryUint(r, "epoch", math.MaxInt64)
	if err != nil {
		return nil, err
	}
	tree, err := s.svc.Tree(r.Context(), ss, id, epoch)
	if err != nil {
		return nil, err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Length", strconv.Itoa(len(tree)))
	// The tree of an epoch never changes.
	w.Header().Set("Cache-Control", "private, max-age=86400, immutable")
	s.count(r, http.StatusOK)
	if r.Method != http.MethodHead {
		w.Write(tree)
	}
	return nil, errWritten
}

func (s *Server) downloadAttachment(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
	rd, info, err := s.svc.Attachment(r.Context(), ss, r.PathValue("id"))
	if err != nil {
		return nil, err
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+info.ID+`"`)
	if info.Expires.IsZero() {
		w.Header().Set("Cache-Control", "private, max-age=31536000, immutable")
	} else {
		// An attachment with a lifetime belongs to disappearing
		// messages: no cache is to keep it.
		w.Header().Set("Cache-Control", "private, no-store")
	}
	s.count(r, http.StatusOK)
	http.ServeContent(w, r, "", info.Created, rd)
	return nil, errWritten
}
