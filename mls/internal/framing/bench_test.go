package framing

import (
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// BenchmarkPrivateMessage measures protect + unprotect of one application
// message in suite 1 (X25519, AES-128-GCM, SHA-256, Ed25519), the sender
// and the receiver each with their own secret tree, so every iteration
// advances both ratchets by one generation.
func BenchmarkPrivateMessage(b *testing.B) {
	for _, size := range []int{1 << 10} {
		b.Run(fmt.Sprintf("%dKiB", size>>10), func(b *testing.B) {
			fx := loadFixture(b, 1)
			sender, receiver := fx.tree(b), fx.tree(b)
			fc := fx.content(b, wire.ContentTypeApplication, make([]byte, size))
			b.SetBytes(int64(size))
			b.ReportAllocs()
			for b.Loop() {
				pm, err := ProtectPrivate(fx.c, fc, fx.v.SignaturePriv, nil, fx.senderData(), sender, PrivateOptions{})
				if err != nil {
					b.Fatal(err)
				}
				if _, err := UnprotectPrivate(fx.c, pm, fx.senderData(), receiver, fx.signers); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkPublicMessage measures protect + unprotect of a proposal as
// PublicMessage in suite 1.
func BenchmarkPublicMessage(b *testing.B) {
	fx := loadFixture(b, 1)
	fc := fx.proposal(b)
	b.ReportAllocs()
	for b.Loop() {
		pm, err := ProtectPublic(fx.c, fc, fx.v.SignaturePriv, nil, fx.membershipKey())
		if err != nil {
			b.Fatal(err)
		}
		if _, err := UnprotectPublic(fx.c, pm, fx.membershipKey(), fx.signers); err != nil {
			b.Fatal(err)
		}
	}
}
