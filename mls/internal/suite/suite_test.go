package suite

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"

	circlhpke "github.com/cloudflare/circl/hpke"

	"github.com/parley-chat/parley/mls/internal/codec"
)

func allSuites(t testing.TB) []*Suite {
	t.Helper()
	var ss []*Suite
	for _, id := range IDs() {
		s, err := New(id)
		if err != nil {
			t.Fatal(err)
		}
		ss = append(ss, s)
	}
	return ss
}

func mustSuite(t testing.TB, id ID) *Suite {
	t.Helper()
	s, err := New(id)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nist reports whether the suite's KEM is DHKEM over a NIST curve, whose
// private keys are range-checked scalars.
func nist(s *Suite) bool {
	k, ok := s.kem.(*stdKEM)
	return ok && k.scalarSize > 0
}

// ecdsaSig reports whether the suite signs with ECDSA, whose short private
// keys are left-padded rather than rejected.
func ecdsaSig(s *Suite) bool {
	_, ok := s.sig.(*ecdsaSigner)
	return ok
}

func flip(b []byte, i int) []byte {
	c := bytes.Clone(b)
	c[i%len(c)] ^= 0x01
	return c
}

func TestNewUnsupported(t *testing.T) {
	for _, id := range []ID{0, 8, 0x0a0a, 0xffff} {
		s, err := New(id)
		if err == nil || s != nil {
			t.Fatalf("New(%#04x) = %v, %v; want error", uint16(id), s, err)
		}
		if !errors.Is(err, ErrUnsupported) {
			t.Errorf("New(%#04x) error %v does not wrap ErrUnsupported", uint16(id), err)
		}
		if want := fmt.Sprintf("%#04x", uint16(id)); !strings.Contains(err.Error(), want) || !strings.HasPrefix(err.Error(), "suite: ") {
			t.Errorf("New(%#04x) error %q does not name package and id", uint16(id), err)
		}
	}
}

func TestSuiteParameters(t *testing.T) {
	want := map[ID]struct {
		name       string
		nh, nk, nn int
	}{
		1: {"MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519", 32, 16, 12},
		2: {"MLS_128_DHKEMP256_AES128GCM_SHA256_P256", 32, 16, 12},
		3: {"MLS_128_DHKEMX25519_CHACHA20POLY1305_SHA256_Ed25519", 32, 32, 12},
		4: {"MLS_256_DHKEMX448_AES256GCM_SHA512_Ed448", 64, 32, 12},
		5: {"MLS_256_DHKEMP521_AES256GCM_SHA512_P521", 64, 32, 12},
		6: {"MLS_256_DHKEMX448_CHACHA20POLY1305_SHA512_Ed448", 64, 32, 12},
		7: {"MLS_256_DHKEMP384_AES256GCM_SHA384_P384", 48, 32, 12},

		0xF001: {"MLS_128_MLKEM768X25519_AES128GCM_SHA256_Ed25519", 32, 16, 12},
		0xF002: {"MLS_128_MLKEM768X25519_AES256GCM_SHA384_Ed25519", 48, 32, 12},
		0xF003: {"MLS_128_MLKEM768P256_AES128GCM_SHA256_P256", 32, 16, 12},
		0xF004: {"MLS_128_MLKEM768P256_AES256GCM_SHA384_P256", 48, 32, 12},
		0xF005: {"MLS_192_MLKEM1024P384_AES256GCM_SHA384_P384", 48, 32, 12},
		0xF006: {"MLS_128_MLKEM768_AES256GCM_SHA384_Ed25519", 48, 32, 12},
		0xF007: {"MLS_128_MLKEM768_AES256GCM_SHA384_P256", 48, 32, 12},
		0xF008: {"MLS_192_MLKEM1024_AES256GCM_SHA384_P384", 48, 32, 12},
		0xF009: {"MLS_128_MLKEM768X25519_CHACHA20POLY1305_SHA384_MLDSA44", 48, 32, 12},
		0xF00A: {"MLS_192_MLKEM768_AES256GCM_SHA384_MLDSA65", 48, 32, 12},
		0xF00B: {"MLS_256_MLKEM1024_AES256GCM_SHA384_MLDSA87", 48, 32, 12},
	}
	if len(IDs()) != len(want) {
		t.Fatalf("IDs() = %v", IDs())
	}
	for _, s := range allSuites(t) {
		w := want[s.ID()]
		if s.String() != w.name || s.HashSize() != w.nh || s.AEADKeySize() != w.nk || s.AEADNonceSize() != w.nn {
			t.Errorf("suite %#04x: %s Nh=%d Nk=%d Nn=%d, want %+v", uint16(s.ID()), s, s.HashSize(), s.AEADKeySize(), s.AEADNonceSize(), w)
		}
		if got := len(s.Hash(nil)); got != w.nh {
			t.Errorf("%s: Hash size %d", s, got)
		}
		if got := len(s.Extract(nil, []byte("ikm"))); got != w.nh {
			t.Errorf("%s: Extract size %d", s, got)
		}
	}
}

// TestLabeledEncoding checks the hand-rolled struct encoding against the
// codec package across varint size boundaries.
func TestLabeledEncoding(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 16383, 16384, 70000} {
		value := bytes.Repeat([]byte{0xab}, n)
		label := strings.Repeat("l", n%100)
		b := codec.NewBuilder(nil)
		b.AddOpaque([]byte(labelPrefix + label))
		b.AddOpaque(value)
		want, err := b.Bytes()
		if err != nil {
			t.Fatal(err)
		}
		got, err := labeled(labelPrefix, label, value, 0)
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("n=%d: labeled encoding differs from codec (err %v)", n, err)
		}
	}
}

func TestExpandLimits(t *testing.T) {
	for _, s := range allSuites(t) {
		secret := make([]byte, s.HashSize())
		for _, n := range []int{-1, 255*s.HashSize() + 1, 0x10000} {
			if _, err := s.ExpandWithLabel(secret, "x", nil, n); err == nil {
				t.Errorf("%s: ExpandWithLabel length %d accepted", s, n)
			}
			if _, err := s.Expand(secret, nil, n); err == nil && n != 0x10000 {
				t.Errorf("%s: Expand length %d accepted", s, n)
			}
		}
		if n := 255 * s.HashSize(); n <= 0xffff {
			out, err := s.ExpandWithLabel(secret, "x", nil, n)
			if err != nil || len(out) != n {
				t.Errorf("%s: ExpandWithLabel max length: %d bytes, %v", s, len(out), err)
			}
		}
		// Expand is a prefix-consistent stream.
		a, _ := s.Expand(secret, []byte("info"), 3*s.HashSize()+5)
		b, _ := s.Expand(secret, []byte("info"), s.HashSize()+1)
		if !bytes.HasPrefix(a, b) {
			t.Errorf("%s: Expand outputs are not prefixes of each other", s)
		}
	}
}

func TestMAC(t *testing.T) {
	for _, s := range allSuites(t) {
		key, data := []byte("key"), []byte("data")
		tag := s.MAC(key, data)
		if len(tag) != s.HashSize() || !s.VerifyMAC(key, data, tag) {
			t.Errorf("%s: MAC does not verify", s)
		}
		if s.VerifyMAC(key, data, flip(tag, 3)) || s.VerifyMAC([]byte("kez"), data, tag) || s.VerifyMAC(key, data, tag[:len(tag)-1]) || s.VerifyMAC(key, data, nil) {
			t.Errorf("%s: VerifyMAC accepts a wrong tag", s)
		}
	}
}

func TestAEAD(t *testing.T) {
	for _, s := range allSuites(t) {
		key := make([]byte, s.AEADKeySize())
		nonce := make([]byte, s.AEADNonceSize())
		ct, err := s.Seal(key, nonce, []byte("aad"), []byte("hello"))
		if err != nil {
			t.Fatalf("%s: Seal: %v", s, err)
		}
		if pt, err := s.Open(key, nonce, []byte("aad"), ct); err != nil || string(pt) != "hello" {
			t.Errorf("%s: Open: %q, %v", s, pt, err)
		}
		if _, err := s.Open(key, nonce, []byte("aad"), flip(ct, 2)); err == nil {
			t.Errorf("%s: Open accepted a tampered ciphertext", s)
		}
		if _, err := s.Open(key, nonce, []byte("aaX"), ct); err == nil {
			t.Errorf("%s: Open accepted wrong aad", s)
		}
		if _, err := s.Open(flip(key, 0), nonce, []byte("aad"), ct); err == nil {
			t.Errorf("%s: Open accepted the wrong key", s)
		}
		if _, err := s.Open(key, nonce, nil, ct[:3]); err == nil {
			t.Errorf("%s: Open accepted a truncated ciphertext", s)
		}
		for _, k := range [][]byte{nil, make([]byte, 16+16-s.AEADKeySize()+8), make([]byte, s.AEADKeySize()+1)} {
			if _, err := s.Seal(k, nonce, nil, nil); err == nil {
				t.Errorf("%s: Seal accepted a %d-byte key", s, len(k))
			}
		}
		for _, n := range [][]byte{nil, make([]byte, s.AEADNonceSize()-1), make([]byte, s.AEADNonceSize()+1)} {
			if _, err := s.Seal(key, n, nil, nil); err == nil {
				t.Errorf("%s: Seal accepted a %d-byte nonce", s, len(n))
			}
			if _, err := s.Open(key, n, nil, ct); err == nil {
				t.Errorf("%s: Open accepted a %d-byte nonce", s, len(n))
			}
		}
	}
}

// TestDeriveKeyPairRFC9180 checks DeriveKeyPair against RFC 9180 Appendix A
// (the first base-mode vector of each KEM): ikmR -> skRm, pkRm.
func TestDeriveKeyPairRFC9180(t *testing.T) {
	kats := []struct {
		id           ID
		ikm, sk, pub string
	}{
		{1, "6db9df30aa07dd42ee5e8181afdb977e538f5e1fec8a06223f33f7013e525037",
			"4612c550263fc8ad58375df3f557aac531d26850903e55a9f23f21d8534e8ac8",
			"3948cfe0ad1ddb695d780e59077195da6c56506b027329794ab02bca80815c4d"},
		{2, "668b37171f1072f3cf12ea8a236a45df23fc13b82af3609ad1e354f6ef817550",
			"f3ce7fdae57e1a310d87f1ebbde6f328be0a99cdbcadf4d6589cf29de4b8ffd2",
			"04fe8c19ce0905191ebc298a9245792531f26f0cece2460639e8bc39cb7f706a826a779b4cf969b8a0e539c7f62fb3d30ad6aa8f80e30f1d128aafd68a2ce72ea0"},
		{4, "d45d1652df74920abf94a2883c83050f502ff512ffb56f07b6d833ec8dda74b6a1c1cc4d42a22641c0963d3c21ed8261f344dc9e0501a81c",
			"27a4354608f3bdd38f1f5af305f3e0682efe4e25808249d8fcb55927f6a9f446b8dc1d0a2c3b8cb133a5673b59a6d55ce754ec0c9a555401",
			"145d083ea7a6379dbb32dcbd8aff4c206ea5d069b75e96c6dd2a3e38f441471ac97adca641fdad66685a96f32b7c3e064635fab3cc89234e"},
		{5, "39a28dc317c3e48b908948f99d608059f882d3d09c0541824bc25f94e6dee7aa0df1c644296b06fbb76e84aef5008f8a908e08fbabadf70658538d74753a85f8856a",
			"009227b4b91cf1eb6eecb6c0c0bae93a272d24e11c63bd4c34a581c49f9c3ca01c16bbd32a0a1fac22784f2ae985c85f183baad103b2d02aee787179dfc1a94fea11",
			"0400b81073b1612cf7fdb6db07b35cf4bc17bda5854f3d270ecd9ea99f6c07b46795b8014b66c523ceed6f4829c18bc3886c891b63fa902500ce3ddeb1fbec7e608ac70050b76a0a7fc081dbf1cb30b005981113e635eb501a973aba662d7f16fcc12897dd752d657d37774bb16197c0d9724eecc1ed65349fb6ac1f280749e7669766f8cd"},
	}
	for _, k := range kats {
		s := mustSuite(t, k.id)
		sk, pub, err := s.DeriveKeyPair(unhex(t, k.ikm))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		if !bytes.Equal(sk, unhex(t, k.sk)) || !bytes.Equal(pub, unhex(t, k.pub)) {
			t.Errorf("%s: DeriveKeyPair = %x, %x; want %s, %s", s, sk, pub, k.sk, k.pub)
		}
	}
}

// TestX448DeriveMatchesCircl cross-checks our X448 DeriveKeyPair with
// circl's, which accepts only Nsk-byte ikm.
func TestX448DeriveMatchesCircl(t *testing.T) {
	s := mustSuite(t, MLS256DHKEMX448AES256GCMSHA512Ed448)
	scheme := circlhpke.KEM_X448_HKDF_SHA512.Scheme()
	for i := range 4 {
		ikm := bytes.Repeat([]byte{byte(i)}, scheme.SeedSize())
		wantPub, wantPriv := scheme.DeriveKeyPair(ikm)
		wp, _ := wantPub.MarshalBinary()
		ws, _ := wantPriv.MarshalBinary()
		sk, pub, err := s.DeriveKeyPair(ikm)
		if err != nil || !bytes.Equal(sk, ws) || !bytes.Equal(pub, wp) {
			t.Errorf("ikm %x: got %x, %x, %v; circl %x, %x", ikm, sk, pub, err, ws, wp)
		}
	}
}

func TestDeriveKeyPair(t *testing.T) {
	for _, s := range allSuites(t) {
		for _, n := range []int{0, 1, 32, s.HashSize(), 200} {
			ikm := bytes.Repeat([]byte{7}, n)
			sk1, pub1, err := s.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatalf("%s: ikm %d bytes: %v", s, n, err)
			}
			sk2, pub2, _ := s.DeriveKeyPair(ikm)
			if !bytes.Equal(sk1, sk2) || !bytes.Equal(pub1, pub2) {
				t.Errorf("%s: DeriveKeyPair not deterministic", s)
			}
			if pub, err := s.HPKEPublicKey(sk1); err != nil || !bytes.Equal(pub, pub1) {
				t.Errorf("%s: HPKEPublicKey(derived) = %x, %v; want %x", s, pub, err, pub1)
			}
		}
		_, a, _ := s.DeriveKeyPair([]byte("a"))
		_, b, _ := s.DeriveKeyPair([]byte("b"))
		if bytes.Equal(a, b) {
			t.Errorf("%s: different ikm gave the same key", s)
		}
	}
}

func TestEncryptWithLabelRejects(t *testing.T) {
	for _, s := range allSuites(t) {
		t.Run(s.String(), func(t *testing.T) {
			priv, pub, err := s.GenerateHPKEKey()
			if err != nil {
				t.Fatal(err)
			}
			other, _, _ := s.GenerateHPKEKey()
			label, ctx, pt := "UpdatePathNode", []byte("group context"), []byte("path secret")
			kem, ct, err := s.EncryptWithLabel(pub, label, ctx, pt)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.DecryptWithLabel(priv, label, ctx, kem, ct); err != nil || !bytes.Equal(got, pt) {
				t.Fatalf("round trip: %x, %v", got, err)
			}
			bad := map[string]func() ([]byte, error){
				"wrong key":     func() ([]byte, error) { return s.DecryptWithLabel(other, label, ctx, kem, ct) },
				"wrong label":   func() ([]byte, error) { return s.DecryptWithLabel(priv, "Welcome", ctx, kem, ct) },
				"wrong context": func() ([]byte, error) { return s.DecryptWithLabel(priv, label, []byte("x"), kem, ct) },
				"tampered ct":   func() ([]byte, error) { return s.DecryptWithLabel(priv, label, ctx, kem, flip(ct, 5)) },
				"tampered tag":  func() ([]byte, error) { return s.DecryptWithLabel(priv, label, ctx, kem, flip(ct, len(ct)-1)) },
				"tampered kem":  func() ([]byte, error) { return s.DecryptWithLabel(priv, label, ctx, flip(kem, 9), ct) },
				"truncated kem": func() ([]byte, error) { return s.DecryptWithLabel(priv, label, ctx, kem[:len(kem)-1], ct) },
				"long kem":      func() ([]byte, error) { return s.DecryptWithLabel(priv, label, ctx, append(bytes.Clone(kem), 0), ct) },
				"empty kem":     func() ([]byte, error) { return s.DecryptWithLabel(priv, label, ctx, nil, ct) },
				"empty ct":      func() ([]byte, error) { return s.DecryptWithLabel(priv, label, ctx, kem, nil) },
				"empty priv":    func() ([]byte, error) { return s.DecryptWithLabel(nil, label, ctx, kem, ct) },
				"long priv":     func() ([]byte, error) { return s.DecryptWithLabel(append(bytes.Clone(priv), 1), label, ctx, kem, ct) },
				"all-ff priv": func() ([]byte, error) {
					return s.DecryptWithLabel(bytes.Repeat([]byte{0xff}, len(priv)), label, ctx, kem, ct)
				},
				"HPKEPublicKey": func() ([]byte, error) { return s.HPKEPublicKey(append(bytes.Clone(priv), 1)) },
			}
			for name, f := range bad {
				got, err := f()
				if name == "all-ff priv" && !nist(s) {
					// Any 32/56 bytes are a valid X25519/X448 key: only decryption must fail.
					if err == nil {
						t.Errorf("%s: accepted", name)
					}
					continue
				}
				if err == nil || got != nil {
					t.Errorf("%s: accepted (%x)", name, got)
				} else if !strings.HasPrefix(err.Error(), "suite: ") {
					t.Errorf("%s: error %q lacks the package prefix", name, err)
				}
			}
			if !nist(s) {
				if _, err := s.HPKEPublicKey(priv[:len(priv)-1]); err == nil {
					t.Errorf("HPKEPublicKey accepted a %d-byte key", len(priv)-1)
				}
			}
			malformedPubs := [][]byte{nil, pub[:1], pub[:len(pub)-1], append(bytes.Clone(pub), 0)}
			switch {
			case nist(s): // NIST: off-curve point, compressed form, infinity
				malformedPubs = append(malformedPubs, flip(pub, len(pub)-1), append([]byte{0x02}, pub[1:1+(len(pub)-1)/2]...), []byte{0})
			case s.PostQuantum(): // ML-KEM: coefficients 0xfff >= q (more in TestPQMalformedPublicKeys)
				malformedPubs = append(malformedPubs, bytes.Repeat([]byte{0xff}, len(pub)))
			default: // X25519/X448: the all-zero (low-order) point makes DH fail
				malformedPubs = append(malformedPubs, make([]byte, len(pub)))
			}
			for i, p := range malformedPubs {
				if k, c, err := s.EncryptWithLabel(p, label, ctx, pt); err == nil || k != nil || c != nil {
					t.Errorf("malformed public key %d (%x): accepted", i, p)
				}
			}
		})
	}
}

func TestSignWithLabelRejects(t *testing.T) {
	for _, s := range allSuites(t) {
		t.Run(s.String(), func(t *testing.T) {
			priv, pub, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatal(err)
			}
			if p, err := s.SignaturePublicKey(priv); err != nil || !bytes.Equal(p, pub) {
				t.Fatalf("SignaturePublicKey = %x, %v; want %x", p, err, pub)
			}
			_, otherPub, _ := s.GenerateSignatureKey()
			label, content := "LeafNodeTBS", []byte("content")
			sig, err := s.SignWithLabel(priv, label, content)
			if err != nil {
				t.Fatal(err)
			}
			if err := s.VerifyWithLabel(pub, label, content, sig); err != nil {
				t.Fatalf("own signature: %v", err)
			}
			bad := map[string]error{
				"wrong key":     s.VerifyWithLabel(otherPub, label, content, sig),
				"wrong label":   s.VerifyWithLabel(pub, "KeyPackageTBS", content, sig),
				"wrong content": s.VerifyWithLabel(pub, label, []byte("contenT"), sig),
				"tampered sig":  s.VerifyWithLabel(pub, label, content, flip(sig, len(sig)/2)),
				"tampered end":  s.VerifyWithLabel(pub, label, content, flip(sig, len(sig)-1)),
				"truncated sig": s.VerifyWithLabel(pub, label, content, sig[:len(sig)-1]),
				"long sig":      s.VerifyWithLabel(pub, label, content, append(bytes.Clone(sig), 0)),
				"empty sig":     s.VerifyWithLabel(pub, label, content, nil),
				"empty pub":     s.VerifyWithLabel(nil, label, content, sig),
				"short pub":     s.VerifyWithLabel(pub[:len(pub)-1], label, content, sig),
				"long pub":      s.VerifyWithLabel(append(bytes.Clone(pub), 0), label, content, sig),
				"all-ff pub":    s.VerifyWithLabel(bytes.Repeat([]byte{0xff}, len(pub)), label, content, sig),
			}
			for name, err := range bad {
				if err == nil {
					t.Errorf("%s: accepted", name)
				} else if !strings.HasPrefix(err.Error(), "suite: VerifyWithLabel") {
					t.Errorf("%s: error %q lacks package and operation", name, err)
				}
			}
			badPrivs := [][]byte{nil, append(bytes.Clone(priv), 0)}
			if !ecdsaSig(s) { // short ECDSA scalars are left-padded (TestP521ShortPrivateKey)
				badPrivs = append(badPrivs, priv[:len(priv)-1])
			}
			for _, p := range badPrivs {
				if _, err := s.SignWithLabel(p, label, content); err == nil {
					t.Errorf("SignWithLabel accepted a %d-byte private key", len(p))
				}
				if _, err := s.SignaturePublicKey(p); err == nil {
					t.Errorf("SignaturePublicKey accepted a %d-byte private key", len(p))
				}
			}
		})
	}
}

// TestECDSAScalarRange checks that out-of-range ECDSA and DHKEM scalars are
// rejected rather than reduced.
func TestECDSAScalarRange(t *testing.T) {
	for _, id := range []ID{2, 5, 7} {
		s := mustSuite(t, id)
		size := map[ID]int{2: 32, 5: 66, 7: 48}[id]
		tooBig := bytes.Repeat([]byte{0xff}, size)
		zero := make([]byte, size)
		for name, k := range map[string][]byte{"all-ff": tooBig, "zero": zero, "over-long": make([]byte, size+1)} {
			if _, err := s.SignaturePublicKey(k); err == nil {
				t.Errorf("%s: SignaturePublicKey accepted %s scalar", s, name)
			}
			if _, err := s.HPKEPublicKey(k); err == nil {
				t.Errorf("%s: HPKEPublicKey accepted %s scalar", s, name)
			}
		}
	}
}

// TestP521ShortPrivateKey checks that 65-byte P-521 private keys (the scalar
// with its zero leading byte dropped) are left-padded, for signatures and
// HPKE alike.
func TestP521ShortPrivateKey(t *testing.T) {
	s := mustSuite(t, MLS256DHKEMP521AES256GCMSHA512P521)
	var priv, pub []byte
	for i := 0; ; i++ { // half of all keys have a zero top byte
		var err error
		if priv, pub, err = s.GenerateSignatureKey(); err != nil {
			t.Fatal(err)
		}
		if priv[0] == 0 {
			break
		}
		if i > 200 {
			t.Fatal("no signature key with a zero top byte in 200 tries")
		}
	}
	short := priv[1:]
	if p, err := s.SignaturePublicKey(short); err != nil || !bytes.Equal(p, pub) {
		t.Fatalf("SignaturePublicKey(65 bytes) = %x, %v; want %x", p, err, pub)
	}
	sig, err := s.SignWithLabel(short, "L", []byte("c"))
	if err != nil {
		t.Fatal(err)
	}
	if err := s.VerifyWithLabel(pub, "L", []byte("c"), sig); err != nil {
		t.Fatal(err)
	}

	var hpriv, hpub []byte
	for i := 0; ; i++ {
		hpriv, hpub, err = s.DeriveKeyPair([]byte{byte(i), byte(i >> 8)})
		if err != nil {
			t.Fatal(err)
		}
		if hpriv[0] == 0 {
			break
		}
		if i > 200 {
			t.Fatal("no HPKE key with a zero top byte in 200 tries")
		}
	}
	if len(hpriv) != 66 {
		t.Fatalf("DeriveKeyPair private key is %d bytes, want 66", len(hpriv))
	}
	if p, err := s.HPKEPublicKey(hpriv[1:]); err != nil || !bytes.Equal(p, hpub) {
		t.Fatalf("HPKEPublicKey(65 bytes) = %x, %v; want %x", p, err, hpub)
	}
	kem, ct, err := s.EncryptWithLabel(hpub, "L", nil, []byte("pt"))
	if err != nil {
		t.Fatal(err)
	}
	if pt, err := s.DecryptWithLabel(hpriv[1:], "L", nil, kem, ct); err != nil || string(pt) != "pt" {
		t.Fatalf("DecryptWithLabel(65-byte key) = %q, %v", pt, err)
	}
	// Longer than the field is never accepted, even with a zero prefix.
	if _, err := s.HPKEPublicKey(append([]byte{0}, hpriv...)); err == nil {
		t.Error("HPKEPublicKey accepted a 67-byte key")
	}
	if _, err := s.SignaturePublicKey(append([]byte{0}, priv...)); err == nil {
		t.Error("SignaturePublicKey accepted a 67-byte key")
	}
}

// FuzzVerifyWithLabel checks that no public key or signature bytes make
// verification panic or succeed by accident.
func FuzzVerifyWithLabel(f *testing.F) {
	f.Add(uint8(0), []byte{}, []byte{})
	f.Add(uint8(1), bytes.Repeat([]byte{4}, 65), bytes.Repeat([]byte{0x30}, 70))
	f.Fuzz(func(t *testing.T, which uint8, pub, sig []byte) {
		ids := IDs()
		s := mustSuite(t, ids[int(which)%len(ids)])
		if err := s.VerifyWithLabel(pub, "L", []byte("content"), sig); err == nil {
			t.Fatalf("%s: random signature verified", s)
		}
	})
}

// FuzzDecryptWithLabel checks that no key, KEM output or ciphertext bytes
// make decryption panic or succeed by accident.
func FuzzDecryptWithLabel(f *testing.F) {
	f.Add(uint8(0), []byte{}, []byte{}, []byte{})
	f.Add(uint8(1), bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{4}, 65), bytes.Repeat([]byte{0}, 20))
	f.Fuzz(func(t *testing.T, which uint8, priv, kem, ct []byte) {
		ids := IDs()
		s := mustSuite(t, ids[int(which)%len(ids)])
		if pt, err := s.DecryptWithLabel(priv, "L", nil, kem, ct); err == nil {
			t.Fatalf("%s: random ciphertext decrypted to %x", s, pt)
		}
		_, _ = s.HPKEPublicKey(priv)
		_, _ = s.SignaturePublicKey(priv)
	})
}
