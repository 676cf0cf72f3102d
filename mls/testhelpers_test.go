package mls

import (
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// withConfig returns g restored from its state under cfg, as after a
// restart: the way to change limits that shape its secret trees, which a
// live group built from an encryption_secret it no longer holds (RFC 9420
// §9.2).
func withConfig(g *Group, cfg *Config) (*Group, error) {
	st, err := g.MarshalBinary()
	if err != nil {
		return nil, err
	}
	return LoadGroup(cfg, st, g.signer)
}

func signAs(g *Group, fc *wire.FramedContent) ([]byte, error) {
	ac, err := framing.SignContent(g.c.ctx, wire.WireFormatPublicMessage, fc, g.signer.priv)
	if err != nil {
		return nil, err
	}
	return ac.Auth.Signature, nil
}
