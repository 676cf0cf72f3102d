package mls

import (
	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/wire"
)

func newSecretTree(g *Group) (*schedule.SecretTree, error) {
	return schedule.NewSecretTree(g.c.cs, g.keys.sched.EncryptionSecret, g.c.tree.LeafCount(), g.cfg.secretTreeConfig())
}

func signAs(g *Group, fc *wire.FramedContent) ([]byte, error) {
	ac, err := framing.SignContent(g.c.ctx, wire.WireFormatPublicMessage, fc, g.signer.priv)
	if err != nil {
		return nil, err
	}
	return ac.Auth.Signature, nil
}
