package mls

import (
	"crypto/rand"
	"slices"

	"github.com/parley-chat/parley/mls/internal/wire"
)

// GREASE (RFC 9420 §13.5): unless Config.DisableGREASE is set, the
// capabilities of our leaves list one random GREASE value among their
// cipher suites, extensions, proposals and credentials, and our leaf
// nodes, KeyPackages and GroupInfos carry one GREASE extension with a few
// random bytes, so that peers that wrongly reject unknown values are found
// early. GREASE values received from others need no special treatment:
// unknown values in those fields are ignored everywhere (§13), which the
// tests check with GREASE-carrying peers.

// greaseValue returns a random GREASE value of RFC 9420 §13.5
// (0x0A0A, 0x1A1A, ..., 0xEAEA).
func greaseValue() uint16 {
	var b [1]byte
	_, _ = rand.Read(b[:])
	i := uint16(b[0]) % 15
	return 0x0A0A + i*0x1010
}

// isGREASE reports whether v is one of the GREASE values of RFC 9420
// §13.5.
func isGREASE(v uint16) bool {
	return v&0x0F0F == 0x0A0A && v>>12 <= 0xE && v>>12 == (v>>4)&0xF
}

// greaseExtension returns a GREASE extension of type t with 0-15 random
// bytes of data (§13.5: any content).
func greaseExtension(t uint16) wire.Extension {
	var b [16]byte
	_, _ = rand.Read(b[:])
	n := int(b[0] % 16)
	return wire.Extension{Type: wire.ExtensionType(t), Data: slices.Clone(b[1 : 1+n])}
}

// addGREASE puts one random GREASE value into each list of caps, after
// dropping GREASE values it already has (copied from an earlier leaf), and
// returns the extension type it added, for the GREASE extensions of the
// leaf and KeyPackage.
func addGREASE(caps *wire.Capabilities) uint16 {
	caps.CipherSuites = slices.DeleteFunc(caps.CipherSuites, func(v CipherSuite) bool { return isGREASE(uint16(v)) })
	caps.Extensions = slices.DeleteFunc(caps.Extensions, func(v wire.ExtensionType) bool { return isGREASE(uint16(v)) })
	caps.Proposals = slices.DeleteFunc(caps.Proposals, func(v wire.ProposalType) bool { return isGREASE(uint16(v)) })
	caps.Credentials = slices.DeleteFunc(caps.Credentials, func(v wire.CredentialType) bool { return isGREASE(uint16(v)) })
	ext := greaseValue()
	caps.CipherSuites = append(caps.CipherSuites, CipherSuite(greaseValue()))
	caps.Extensions = append(caps.Extensions, wire.ExtensionType(ext))
	caps.Proposals = append(caps.Proposals, wire.ProposalType(greaseValue()))
	caps.Credentials = append(caps.Credentials, wire.CredentialType(greaseValue()))
	return ext
}
