package httpapi

import (
	"math"
	"net/http"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/delivery"
)

// The link mailbox endpoints (docs/protocol.md, "Linking a device"). The
// device being linked has no session: it creates a mailbox without one
// (limited per address like registration) and is known afterwards by the
// mailbox's token in the protocol.LinkTokenHeader header. A device of an
// account uses its session, limited per account like every request.

// linkRoutes registers the link endpoints.
func (s *Server) linkRoutes() {
	m := s.mux
	m.HandleFunc("POST /v1/link", s.open(s.register, func(w http.ResponseWriter, r *http.Request) (any, error) {
		var req protocol.CreateLinkRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.CreateLink(r.Context(), req)
	}))
	m.HandleFunc("POST /v1/link/{id}", s.linkParty(func(w http.ResponseWriter, r *http.Request, p delivery.LinkParty) (any, error) {
		var req protocol.PostLinkRequest
		if err := s.decode(w, r, &req); err != nil {
			return nil, err
		}
		return s.svc.PostLink(r.Context(), r.PathValue("id"), p, req)
	}))
	m.HandleFunc("GET /v1/link/{id}", s.linkParty(func(w http.ResponseWriter, r *http.Request, p delivery.LinkParty) (any, error) {
		after, err := queryUint(r, "after", math.MaxInt64)
		if err != nil {
			return nil, err
		}
		wait, err := queryUint(r, "wait", uint64(protocol.MaxLinkWait/time.Second))
		if err != nil {
			return nil, err
		}
		return s.svc.LinkMessages(r.Context(), r.PathValue("id"), p, after, time.Duration(wait)*time.Second)
	}))
	m.HandleFunc("DELETE /v1/link/{id}", s.linkParty(func(w http.ResponseWriter, r *http.Request, p delivery.LinkParty) (any, error) {
		return nil, s.svc.DeleteLink(r.Context(), r.PathValue("id"), p)
	}))
}

// linkParty wraps a link handler: a request with the link token header
// comes from the device being linked, any other needs a session.
func (s *Server) linkParty(h func(w http.ResponseWriter, r *http.Request, p delivery.LinkParty) (any, error)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if tok := r.Header.Get(protocol.LinkTokenHeader); tok != "" {
			v, err := h(w, r, delivery.LinkParty{Token: tok})
			s.finish(w, r, v, err)
			return
		}
		s.authed(nil, func(w http.ResponseWriter, r *http.Request, ss *delivery.Session) (any, error) {
			return h(w, r, delivery.LinkParty{Session: ss})
		})(w, r)
	}
}
