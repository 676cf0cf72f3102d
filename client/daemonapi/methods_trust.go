package daemonapi

import (
	"context"
	"encoding/json"
	"strings"

	"github.com/parley-chat/parley/client"
)

func init() {
	for name, m := range map[string]method{
		"safety_number":         safetyNumber,
		"safety_number_pending": safetyNumberPending,
		"mark_verified":         markVerified,
		"acknowledge_identity":  acknowledgeIdentity,
		"identity_changed":      identityChanged,
		"trust_rolled_back":     trustRolledBack,
	} {
		methods[name] = m
	}
}

// decodeUser decodes the params of a method that names another user
// (IdentityParams).
func decodeUser(params json.RawMessage) (string, error) {
	var p IdentityParams
	if err := decode(params, &p); err != nil {
		return "", err
	}
	return user(p.User)
}

// safetyNumberOf is safety_number and safety_number_pending: get is
// the client's method.
func safetyNumberOf(ctx context.Context, params json.RawMessage, get func(context.Context, string) (*client.SafetyNumber, error)) (any, error) {
	u, err := decodeUser(params)
	if err != nil {
		return nil, err
	}
	sn, err := get(ctx, u)
	if err != nil {
		return nil, err
	}
	return NewSafetyNumber(sn), nil
}

func safetyNumber(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return safetyNumberOf(ctx, params, s.c.SafetyNumber)
}

func safetyNumberPending(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	return safetyNumberOf(ctx, params, s.c.SafetyNumberPending)
}

func markVerified(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	u, err := decodeUser(params)
	if err != nil {
		return nil, err
	}
	if err := s.c.MarkVerified(ctx, u); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func acknowledgeIdentity(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	var p AcknowledgeParams
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	u, err := user(p.User)
	if err != nil {
		return nil, err
	}
	if strings.TrimSpace(p.Digits) == "" {
		return nil, invalidParams("digits: want the safety number of the new key (safety_number_pending)")
	}
	if err := s.c.AcknowledgeIdentity(ctx, u, p.Digits); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func identityChanged(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	u, err := decodeUser(params)
	if err != nil {
		return nil, err
	}
	changed, err := s.c.IdentityChanged(ctx, u)
	if err != nil {
		return nil, err
	}
	return IdentityChangedResult{Changed: changed}, nil
}

func trustRolledBack(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	u, err := decodeUser(params)
	if err != nil {
		return nil, err
	}
	lost, err := s.c.TrustRolledBack(ctx, u)
	if err != nil {
		return nil, err
	}
	return TrustRolledBackResult{RolledBack: lost}, nil
}
