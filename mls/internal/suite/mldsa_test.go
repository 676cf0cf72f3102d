package suite

import (
	"bytes"
	"crypto/sha256"
	"strconv"
	"strings"
	"testing"

	"github.com/cloudflare/circl/sign"
	"github.com/cloudflare/circl/sign/mldsa/mldsa44"
	"github.com/cloudflare/circl/sign/mldsa/mldsa65"
	"github.com/cloudflare/circl/sign/mldsa/mldsa87"
)

// mldsaSuites are the suites signing with ML-DSA, with the FIPS 204 sizes
// of their parameter set and its circl scheme for cross-checks.
var mldsaSuites = []struct {
	id            ID
	param         string
	pubSize       int
	sigSize       int
	expandedSKLen int // skEncode, which is not our private key format
	scheme        sign.Scheme
}{
	{MLS128MLKEM768X25519ChaCha20Poly1305SHA384MLDSA44, "ML-DSA-44", 1312, 2420, 2560, mldsa44.Scheme()},
	{MLS192MLKEM768AES256GCMSHA384MLDSA65, "ML-DSA-65", 1952, 3309, 4032, mldsa65.Scheme()},
	{MLS256MLKEM1024AES256GCMSHA384MLDSA87, "ML-DSA-87", 2592, 4627, 4896, mldsa87.Scheme()},
}

// TestMLDSATable checks that exactly TBD9-TBD11 sign with ML-DSA, with the
// parameter set of the draft's table.
func TestMLDSATable(t *testing.T) {
	want := map[ID]string{}
	for _, m := range mldsaSuites {
		want[m.id] = m.scheme.Name()
	}
	for _, s := range allSuites(t) {
		g, ok := s.sig.(*mldsaSigner)
		if name, wantOK := want[s.ID()]; ok != wantOK || ok && g.scheme.Name() != name {
			t.Errorf("%s: signer %T, want ML-DSA %v (%s)", s, s.sig, wantOK, name)
		}
	}
}

// TestMLDSASignVerify checks sizes, the round trip, that signatures are
// hedged (two signatures of one content differ and both verify), and that
// tampered content, labels and signatures are rejected.
func TestMLDSASignVerify(t *testing.T) {
	for _, m := range mldsaSuites {
		s := mustSuite(t, m.id)
		t.Run(m.param, func(t *testing.T) {
			priv, pub, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatal(err)
			}
			if len(priv) != 32 || len(pub) != m.pubSize {
				t.Fatalf("key sizes %d, %d; want 32, %d", len(priv), len(pub), m.pubSize)
			}
			label, content := "FramedContentTBS", []byte("hello, post-quantum world")
			sig, err := s.SignWithLabel(priv, label, content)
			if err != nil {
				t.Fatal(err)
			}
			if len(sig) != m.sigSize {
				t.Fatalf("signature is %d bytes, want %d", len(sig), m.sigSize)
			}
			if err := s.VerifyWithLabel(pub, label, content, sig); err != nil {
				t.Fatalf("own signature: %v", err)
			}
			sig2, err := s.SignWithLabel(priv, label, content)
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Equal(sig, sig2) {
				t.Error("two signatures of the same content are equal: signing is not hedged")
			}
			if err := s.VerifyWithLabel(pub, label, content, sig2); err != nil {
				t.Errorf("second signature: %v", err)
			}

			tampered := map[string]error{
				"content":       s.VerifyWithLabel(pub, label, []byte("hello, post-quantum worle"), sig),
				"empty content": s.VerifyWithLabel(pub, label, nil, sig),
				"label":         s.VerifyWithLabel(pub, "LeafNodeTBS", content, sig),
			}
			// One flipped bit in c~ (the commitment hash), in z and in the
			// hint encoding at the end.
			for _, i := range []int{0, 31, m.sigSize / 2, m.sigSize - 90, m.sigSize - 1} {
				tampered["signature byte "+strconv.Itoa(i)] = s.VerifyWithLabel(pub, label, content, flip(sig, i))
			}
			tampered["public key"] = s.VerifyWithLabel(flip(pub, 40), label, content, sig)
			tampered["all-zero signature"] = s.VerifyWithLabel(pub, label, content, make([]byte, m.sigSize))
			tampered["all-ff signature"] = s.VerifyWithLabel(pub, label, content, bytes.Repeat([]byte{0xff}, m.sigSize))
			for name, err := range tampered {
				if err == nil {
					t.Errorf("tampered %s: accepted", name)
				} else if !strings.HasPrefix(err.Error(), "suite: VerifyWithLabel") {
					t.Errorf("tampered %s: error %q lacks package and operation", name, err)
				}
			}
		})
	}
}

// TestMLDSABadLengths checks that public keys, signatures and private keys
// of the wrong length, including those of the other parameter sets and the
// expanded private key encoding, are rejected with an error, not a panic.
func TestMLDSABadLengths(t *testing.T) {
	for _, m := range mldsaSuites {
		s := mustSuite(t, m.id)
		t.Run(m.param, func(t *testing.T) {
			priv, pub, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatal(err)
			}
			sig, err := s.SignWithLabel(priv, "L", []byte("c"))
			if err != nil {
				t.Fatal(err)
			}
			pubLens := []int{0, 1, 32, m.pubSize - 1, m.pubSize + 1, 2 * m.pubSize}
			sigLens := []int{0, 1, 64, m.sigSize - 1, m.sigSize + 1}
			for _, o := range mldsaSuites {
				if o.id != m.id {
					pubLens = append(pubLens, o.pubSize)
					sigLens = append(sigLens, o.sigSize)
				}
			}
			for _, n := range pubLens {
				p := make([]byte, n)
				copy(p, pub)
				err := s.VerifyWithLabel(p, "L", []byte("c"), sig)
				if err == nil || !strings.Contains(err.Error(), "public key is") {
					t.Errorf("%d-byte public key: %v", n, err)
				}
			}
			for _, n := range sigLens {
				g := make([]byte, n)
				copy(g, sig)
				err := s.VerifyWithLabel(pub, "L", []byte("c"), g)
				if err == nil || !strings.Contains(err.Error(), "signature is") {
					t.Errorf("%d-byte signature: %v", n, err)
				}
			}
			for _, n := range []int{0, 1, 31, 33, 64, m.expandedSKLen} {
				p := make([]byte, n)
				copy(p, priv)
				if sig, err := s.SignWithLabel(p, "L", []byte("c")); err == nil || sig != nil {
					t.Errorf("SignWithLabel accepted a %d-byte private key", n)
				} else if !strings.HasPrefix(err.Error(), "suite: SignWithLabel") || !strings.Contains(err.Error(), "32-byte seed") {
					t.Errorf("SignWithLabel, %d-byte private key: error %q", n, err)
				}
				if pub, err := s.SignaturePublicKey(p); err == nil || pub != nil {
					t.Errorf("SignaturePublicKey accepted a %d-byte private key", n)
				}
			}
		})
	}
}

// TestMLDSAPublicKeyFromSeed checks that the public key is a deterministic
// function of the 32-byte seed, distinct per seed and per parameter set,
// and equal to circl's ML-DSA.KeyGen_internal of that seed.
func TestMLDSAPublicKeyFromSeed(t *testing.T) {
	seed := bytes.Repeat([]byte{0x5a}, 32)
	other := bytes.Repeat([]byte{0x5b}, 32)
	var pubs [][]byte
	for _, m := range mldsaSuites {
		s := mustSuite(t, m.id)
		p1, err1 := s.SignaturePublicKey(seed)
		p2, err2 := s.SignaturePublicKey(bytes.Clone(seed))
		if err1 != nil || err2 != nil || !bytes.Equal(p1, p2) {
			t.Fatalf("%s: public key of one seed: %v, %v, equal %v", m.param, err1, err2, bytes.Equal(p1, p2))
		}
		if p3, _ := s.SignaturePublicKey(other); bytes.Equal(p1, p3) {
			t.Errorf("%s: two seeds give the same public key", m.param)
		}
		pk, _ := m.scheme.DeriveKey(seed)
		if want, _ := pk.MarshalBinary(); !bytes.Equal(p1, want) {
			t.Errorf("%s: public key differs from circl's DeriveKey", m.param)
		}
		// A signature under the seed verifies under the derived public key.
		sig, err := s.SignWithLabel(seed, "L", []byte("c"))
		if err != nil || s.VerifyWithLabel(p1, "L", []byte("c"), sig) != nil {
			t.Errorf("%s: signature under the seed does not verify (%v)", m.param, err)
		}
		pubs = append(pubs, p1)
	}
	// KeyGen hashes the seed with the parameter set's (k, l), so one seed
	// gives unrelated keys: even rho, the first 32 bytes, differs.
	if bytes.Equal(pubs[0][:32], pubs[1][:32]) || bytes.Equal(pubs[1][:32], pubs[2][:32]) || bytes.Equal(pubs[0][:32], pubs[2][:32]) {
		t.Error("parameter sets derive the same rho from one seed")
	}
}

// TestMLDSAKeyGenKAT checks ML-DSA.KeyGen_internal(seed) against NIST's
// ACVP known-answer values (draft-celi-acvp-ml-dsa, Table 1, the first
// case per parameter set, as Go's crypto/internal/fips140/mldsa tests
// carry them): SHA-256(pk || sk) with sk in its expanded skEncode form.
// The seed is our private key, so this pins the private key format.
func TestMLDSAKeyGenKAT(t *testing.T) {
	kats := []struct {
		id            ID
		seed, keyHash string
	}{
		{MLS128MLKEM768X25519ChaCha20Poly1305SHA384MLDSA44,
			"5C624FCC1862452452D0C665840D8237F43108E5499EDCDC108FBC49D596E4B7",
			"AC825C59D8A4C453A2C4EFEA8395741CA404F3000E28D56B25D03BB402E5CB2F"},
		{MLS192MLKEM768AES256GCMSHA384MLDSA65,
			"464756A985E5DF03739D95DD309C1ED9C5B04254CC294E7E7EB9B9365EE15117",
			"AE95EA0DAA80199E7B4A74EB5A1B1DC6C3805BD01D2FA78D7C4FBA8C255AA13D"},
		{MLS256MLKEM1024AES256GCMSHA384MLDSA87,
			"0D58219132746BE077DFE821E9F8FD87857B28AB91D6A567E312A73E2636032C",
			"4D261270341A7AC6B66900DDC2B8AB34AB483C897410DDF3B2C072BDDA416434"},
	}
	for _, k := range kats {
		s := mustSuite(t, k.id)
		g := s.sig.(*mldsaSigner)
		seed := unhex(t, k.seed)
		pub, err := s.SignaturePublicKey(seed)
		if err != nil {
			t.Fatal(err)
		}
		_, sk, err := g.key(seed)
		if err != nil {
			t.Fatal(err)
		}
		skBytes, err := sk.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		h.Write(pub)
		h.Write(skBytes)
		if got := h.Sum(nil); !bytes.Equal(got, unhex(t, k.keyHash)) {
			t.Errorf("%s: SHA-256(pk || sk) = %X, want %s", s, got, k.keyHash)
		}
	}
}

// TestMLDSAContextAndInterop checks our signatures against circl's ML-DSA
// used directly over the encoded SignContent: pure ML-DSA with an empty
// context string in both directions (circl's signing there is
// deterministic, which our verification must accept), and rejection when
// either side uses a non-empty context.
func TestMLDSAContextAndInterop(t *testing.T) {
	for _, m := range mldsaSuites {
		s := mustSuite(t, m.id)
		t.Run(m.param, func(t *testing.T) {
			priv, pub, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatal(err)
			}
			label, content := "KeyPackageTBS", []byte("key package")
			msg, err := signContent(label, content)
			if err != nil {
				t.Fatal(err)
			}
			pk, sk := m.scheme.DeriveKey(priv)

			ours, err := s.SignWithLabel(priv, label, content)
			if err != nil {
				t.Fatal(err)
			}
			if !m.scheme.Verify(pk, msg, ours, nil) {
				t.Error("circl does not verify our signature with an empty context")
			}
			if m.scheme.Verify(pk, msg, ours, &sign.SignatureOpts{Context: "MLS"}) {
				t.Error("circl verifies our signature with a non-empty context")
			}

			theirs := m.scheme.Sign(sk, msg, nil)
			if err := s.VerifyWithLabel(pub, label, content, theirs); err != nil {
				t.Errorf("circl's deterministic signature: %v", err)
			}
			withCtx := m.scheme.Sign(sk, msg, &sign.SignatureOpts{Context: "MLS"})
			if err := s.VerifyWithLabel(pub, label, content, withCtx); err == nil {
				t.Error("a signature with a non-empty context verified")
			}
			// The message is SignContent, not the bare content.
			bare := m.scheme.Sign(sk, content, nil)
			if err := s.VerifyWithLabel(pub, label, content, bare); err == nil {
				t.Error("a signature over the bare content verified")
			}
		})
	}
}
