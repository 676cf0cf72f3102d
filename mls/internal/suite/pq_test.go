package suite

import (
	"bytes"
	"crypto/hpke"
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"strings"
	"testing"

	"github.com/parley-chat/parley/mls/internal/codec"
)

// pqKEMSizes are the sizes of draft-ietf-hpke-pq (FIPS 203 for the ML-KEM
// parts): Nsk (the seed), Npk and Nenc, by HPKE KEM id.
var pqKEMSizes = map[uint16]struct{ nsk, npk, nenc int }{
	0x647a: {32, 1184 + 32, 1088 + 32}, // MLKEM768-X25519 (X-Wing)
	0x0050: {32, 1184 + 65, 1088 + 65}, // MLKEM768-P256
	0x0051: {32, 1568 + 97, 1568 + 97}, // MLKEM1024-P384
	0x0041: {64, 1184, 1088},           // ML-KEM-768
	0x0042: {64, 1568, 1568},           // ML-KEM-1024
}

// pqTable is the mapping table of draft-ietf-mls-pq-ciphersuites §IANA
// Considerations for TBD1-TBD11, keyed by our private-use codepoints.
var pqTable = []struct {
	id             ID
	tbd            int
	kem, kdf, aead uint16
	hash, sig      string
}{
	{0xF001, 1, 0x647a, 0x0001, 0x0001, "SHA256", "ed25519"},
	{0xF002, 2, 0x647a, 0x0002, 0x0002, "SHA384", "ed25519"},
	{0xF003, 3, 0x0050, 0x0001, 0x0001, "SHA256", "ecdsa_secp256r1_sha256"},
	{0xF004, 4, 0x0050, 0x0002, 0x0002, "SHA384", "ecdsa_secp256r1_sha256"},
	{0xF005, 5, 0x0051, 0x0002, 0x0002, "SHA384", "ecdsa_secp384r1_sha384"},
	{0xF006, 6, 0x0041, 0x0002, 0x0002, "SHA384", "ed25519"},
	{0xF007, 7, 0x0041, 0x0002, 0x0002, "SHA384", "ecdsa_secp256r1_sha256"},
	{0xF008, 8, 0x0042, 0x0002, 0x0002, "SHA384", "ecdsa_secp384r1_sha384"},
	{0xF009, 9, 0x647a, 0x0002, 0x0003, "SHA384", "mldsa44"},
	{0xF00A, 10, 0x0041, 0x0002, 0x0002, "SHA384", "mldsa65"},
	{0xF00B, 11, 0x0042, 0x0002, 0x0002, "SHA384", "mldsa87"},
}

func sigName(s *Suite) string {
	switch g := s.sig.(type) {
	case ed25519Signer:
		return "ed25519"
	case *ecdsaSigner:
		return g.name
	case *mldsaSigner:
		return g.name
	}
	return "?"
}

func pqStdKEM(t testing.TB, s *Suite) *stdKEM {
	t.Helper()
	k, ok := s.kem.(*stdKEM)
	if !ok {
		t.Fatalf("%s: KEM is %T", s, s.kem)
	}
	return k
}

// TestPQSuiteTable checks each post-quantum suite against the draft's table:
// HPKE KEM, KDF and AEAD ids, the MLS hash (and so the MLS KDF) and the
// signature scheme, and that the MLS AEAD is the HPKE one.
func TestPQSuiteTable(t *testing.T) {
	var ids []ID
	for _, w := range pqTable {
		s := mustSuite(t, w.id)
		ids = append(ids, w.id)
		k := pqStdKEM(t, s)
		if k.kem.ID() != w.kem || k.kdf.ID() != w.kdf || k.aead.ID() != w.aead {
			t.Errorf("TBD%d %s: HPKE (%#04x, %#04x, %#04x), want (%#04x, %#04x, %#04x)", w.tbd, s,
				k.kem.ID(), k.kdf.ID(), k.aead.ID(), w.kem, w.kdf, w.aead)
		}
		if s.kdf.name != w.hash || sigName(s) != w.sig {
			t.Errorf("TBD%d %s: hash %s, signature %s; want %s, %s", w.tbd, s, s.kdf.name, sigName(s), w.hash, w.sig)
		}
		// The HPKE KDF is HKDF over the MLS hash, the HPKE AEAD the MLS AEAD.
		if wantKDF := map[string]uint16{"SHA256": 1, "SHA384": 2}[s.kdf.name]; k.kdf.ID() != wantKDF {
			t.Errorf("TBD%d %s: HPKE KDF %#04x is not HKDF-%s", w.tbd, s, k.kdf.ID(), s.kdf.name)
		}
		if wantAEAD := map[string]uint16{"AES128GCM": 1, "AES256GCM": 2, "CHACHA20POLY1305": 3}[s.aead.name]; k.aead.ID() != wantAEAD {
			t.Errorf("TBD%d %s: HPKE AEAD %#04x differs from the MLS AEAD %s", w.tbd, s, k.aead.ID(), s.aead.name)
		}
		if !s.PostQuantum() || !strings.Contains(s.String(), "MLKEM") {
			t.Errorf("TBD%d %s: PostQuantum() = %v", w.tbd, s, s.PostQuantum())
		}
		if w.id < 0xF000 {
			t.Errorf("TBD%d: %#04x outside the private-use range", w.tbd, uint16(w.id))
		}
	}
	if got := PostQuantumIDs(); !slices.Equal(got, ids) {
		t.Errorf("PostQuantumIDs() = %v, want %v", got, ids)
	}
	all := IDs()
	if !slices.IsSorted(all) {
		t.Errorf("IDs() not sorted: %v", all)
	}
	for _, id := range all {
		s := mustSuite(t, id)
		if s.PostQuantum() != slices.Contains(ids, id) {
			t.Errorf("%s: PostQuantum() = %v", s, s.PostQuantum())
		}
	}
}

// TestPQKDFFollowsHash checks that the MLS KDF of each post-quantum suite is
// HKDF over its hash column: its ExpandWithLabel equals that of the RFC 9420
// suite with the same hash (suite 1 for SHA256, suite 7 for SHA384).
func TestPQKDFFollowsHash(t *testing.T) {
	ref := map[string]*Suite{"SHA256": mustSuite(t, 1), "SHA384": mustSuite(t, 7)}
	secret := []byte("0123456789abcdef0123456789abcdef")
	for _, w := range pqTable {
		s, r := mustSuite(t, w.id), ref[w.hash]
		a, err1 := s.ExpandWithLabel(secret, "key", []byte("ctx"), 40)
		b, err2 := r.ExpandWithLabel(secret, "key", []byte("ctx"), 40)
		if err1 != nil || err2 != nil || !bytes.Equal(a, b) || !bytes.Equal(s.Hash(secret), r.Hash(secret)) {
			t.Errorf("TBD%d %s: KDF differs from %s (%v, %v)", w.tbd, s, r, err1, err2)
		}
	}
}

// TestPQKeySizes checks the sizes of keys, kem_output and ciphertext, and
// that DeriveKeyPair is deterministic and its private key (a seed)
// round-trips through HPKEPublicKey and DecryptWithLabel.
func TestPQKeySizes(t *testing.T) {
	pt := []byte("a path secret of thirty-two byte")
	for _, w := range pqTable {
		s := mustSuite(t, w.id)
		t.Run(s.String(), func(t *testing.T) {
			want := pqKEMSizes[w.kem]
			ikm := bytes.Repeat([]byte{0x42}, s.HashSize())
			priv, pub, err := s.DeriveKeyPair(ikm)
			if err != nil {
				t.Fatal(err)
			}
			if len(priv) != want.nsk || len(pub) != want.npk {
				t.Errorf("key sizes %d, %d; want %d, %d", len(priv), len(pub), want.nsk, want.npk)
			}
			priv2, pub2, err := s.DeriveKeyPair(ikm)
			if err != nil || !bytes.Equal(priv, priv2) || !bytes.Equal(pub, pub2) {
				t.Errorf("DeriveKeyPair not deterministic (%v)", err)
			}
			if p, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(p, pub) {
				t.Errorf("HPKEPublicKey(priv) = %d bytes, %v; want the derived key", len(p), err)
			}
			kemOut, ct, err := s.EncryptWithLabel(pub, "UpdatePathNode", []byte("ctx"), pt)
			if err != nil {
				t.Fatal(err)
			}
			if len(kemOut) != want.nenc || len(ct) != len(pt)+16 {
				t.Errorf("kem_output %d bytes, ciphertext %d; want %d, %d", len(kemOut), len(ct), want.nenc, len(pt)+16)
			}
			if got, err := s.DecryptWithLabel(priv, "UpdatePathNode", []byte("ctx"), kemOut, ct); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("round trip: %q, %v", got, err)
			}
			gpriv, gpub, err := s.GenerateHPKEKey()
			if err != nil || len(gpriv) != want.nsk || len(gpub) != want.npk {
				t.Errorf("GenerateHPKEKey: %d, %d bytes, %v", len(gpriv), len(gpub), err)
			}
		})
	}
}

// TestPQInteropCryptoHPKE checks our EncryptWithLabel against crypto/hpke
// used directly with the draft's (KEM, KDF, AEAD) and an EncryptContext
// built by the codec package, and a key generated by crypto/hpke against
// our HPKEPublicKey and DecryptWithLabel.
func TestPQInteropCryptoHPKE(t *testing.T) {
	for _, w := range pqTable {
		s := mustSuite(t, w.id)
		t.Run(s.String(), func(t *testing.T) {
			kem, err := hpke.NewKEM(w.kem)
			if err != nil {
				t.Fatal(err)
			}
			kdf, _ := hpke.NewKDF(w.kdf)
			aead, _ := hpke.NewAEAD(w.aead)
			sk, err := kem.GenerateKey()
			if err != nil {
				t.Fatal(err)
			}
			priv, err := sk.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			pub := sk.PublicKey().Bytes()
			if p, err := s.HPKEPublicKey(priv); err != nil || !bytes.Equal(p, pub) {
				t.Fatalf("HPKEPublicKey(crypto/hpke key): %v", err)
			}

			b := codec.NewBuilder(nil)
			b.AddOpaque([]byte("MLS 1.0 Welcome"))
			b.AddOpaque([]byte("group context"))
			info, err := b.Bytes()
			if err != nil {
				t.Fatal(err)
			}
			kemOut, ct, err := s.EncryptWithLabel(pub, "Welcome", []byte("group context"), []byte("joiner secret"))
			if err != nil {
				t.Fatal(err)
			}
			r, err := hpke.NewRecipient(kemOut, sk, kdf, aead, info)
			if err != nil {
				t.Fatal(err)
			}
			if got, err := r.Open(nil, ct); err != nil || string(got) != "joiner secret" {
				t.Errorf("crypto/hpke Open of our ciphertext: %q, %v", got, err)
			}

			enc, sender, err := hpke.NewSender(sk.PublicKey(), kdf, aead, info)
			if err != nil {
				t.Fatal(err)
			}
			ct2, err := sender.Seal(nil, []byte("from crypto/hpke"))
			if err != nil {
				t.Fatal(err)
			}
			if got, err := s.DecryptWithLabel(priv, "Welcome", []byte("group context"), enc, ct2); err != nil || string(got) != "from crypto/hpke" {
				t.Errorf("DecryptWithLabel of crypto/hpke ciphertext: %q, %v", got, err)
			}
		})
	}
}

// TestPQDeriveKeyPairVectors checks DeriveKeyPair (ikmR -> skRm, pkRm) for
// each KEM against the first vector of that KEM in Go's
// src/crypto/hpke/testdata/hpke-pq.json (draft-ietf-hpke-pq vectors); the
// public keys are compared by SHA-256. DeriveKeyPair depends on the KEM
// only, so any suite with that KEM will do.
func TestPQDeriveKeyPairVectors(t *testing.T) {
	kats := []struct {
		id           ID
		ikm, sk, pub string
	}{
		{MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
			"0379761fa4f6869592b0d1f9a71eb92b122dc030a7a8858132109f6b1a4bbde4",
			"b3f98b03126a431ccecc62ae0f68e102c2d8e1cc7b21ba85d821d8e31761e0f8",
			"120b60e0ae3c00c1c9def1c61aeb12de710bfa49646ae6f99a7e564b25ace493"},
		{MLS128MLKEM768P256AES128GCMSHA256P256,
			"eeae80edb6af9026dcbd638fcef2f4a19e03ef68ed699e507780f2c7d167ca53",
			"dfa3a04d54a0ec2f7edec57185e3df94063855fc7af64f25b815417a2c6eb0e4",
			"df5a72888ef5948abfc5ede46c7fc5063208b6f065ff53f317c34044cc5b468f"},
		{MLS192MLKEM1024P384AES256GCMSHA384P384,
			"0ac1e0b6b264f0de171b33b9fea8b6695c06f46bd5f838fa29cbcae1c6ce1119",
			"f1f10a30f20972ad29572652176e80ee17d2bd8a259e2b194eb05b8171a7f791",
			"b87fb8b7fe25f4b92469bbe8f6093dda950a7a22c524ada72e927e5fa9211886"},
		{MLS128MLKEM768AES256GCMSHA384Ed25519,
			"16835630bb0fbe89f7a5605bd673559f4a665773fd52aec4ea0cd4e7509e112ee5f9bbc75753ec5e86665343136139d2e8676ccd973ccf3114732dbae7445cf0",
			"3530176644619eb968895c1a251e8568e063278a7d9f4314b7d0ad973be2fd0b9560e77a2ca3f07958d782cab43cbae46e16bbc90277545d333e11ddcf18df61",
			"b058724fd859b4dc182a1dbe76de12093c13c394a07729bf4004c7806f97ae52"},
		{MLS192MLKEM1024AES256GCMSHA384P384,
			"7544cdff18a3f8789f512337a27b6c68efd145a30ed3dc630f5dcc5ec6932929bce1c023147c48c954fdc213a7c9c0dd8895b8d28ec5c5e44d0b30abf9d8ca47",
			"f279454d08150d5bd81252001d02e1099f12fb7e9be6da2fe427bbaa2d79b0ab67306c0153c052610c4fdba3fad3435aeb1b65817d442c5c18ce07ea42440005",
			"045b09f696f517d228b93d275cd20b872ea30d72da15ba15fd17a7b386847d42"},
	}
	for _, k := range kats {
		s := mustSuite(t, k.id)
		sk, pub, err := s.DeriveKeyPair(unhex(t, k.ikm))
		if err != nil {
			t.Fatalf("%s: %v", s, err)
		}
		h := sha256.Sum256(pub)
		if !bytes.Equal(sk, unhex(t, k.sk)) || hex.EncodeToString(h[:]) != k.pub {
			t.Errorf("%s: DeriveKeyPair = %x, SHA-256(pub) %x; want %s, %s", s, sk, h, k.sk, k.pub)
		}
	}
	// The same KEM gives the same key pair whatever the suite's KDF and AEAD.
	a1, b1, _ := mustSuite(t, MLS128MLKEM768X25519AES128GCMSHA256Ed25519).DeriveKeyPair([]byte("ikm"))
	a2, b2, _ := mustSuite(t, MLS128MLKEM768X25519AES256GCMSHA384Ed25519).DeriveKeyPair([]byte("ikm"))
	if !bytes.Equal(a1, a2) || !bytes.Equal(b1, b2) {
		t.Error("TBD1 and TBD2 derive different X-Wing keys from the same ikm")
	}
}

// TestXWingDraftVector checks the X-Wing key pair of the first test vector
// of draft-connolly-cfrg-xwing-kem-08 Appendix C (its 32-byte seed is the
// HPKE private key of MLKEM768-X25519); the public key is compared by
// SHA-256 and its trailing X25519 part in full.
func TestXWingDraftVector(t *testing.T) {
	s := mustSuite(t, MLS128MLKEM768X25519AES128GCMSHA256Ed25519)
	seed := unhex(t, "7f9c2ba4e88f827d616045507605853ed73b8093f6efbc88eb1a6eacfa66ef26")
	pub, err := s.HPKEPublicKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.Sum256(pub)
	const wantHash = "2e816deebcd76c5c80d0cd2d174478871658e8e2ff42bc9d4a6e486372e856bb"
	const wantX25519 = "859edb06eff389b27dce59844570216223593d4ba32d9abac8cd049040ef6534"
	if len(pub) != 1216 || hex.EncodeToString(h[:]) != wantHash || hex.EncodeToString(pub[1184:]) != wantX25519 {
		t.Errorf("X-Wing public key: %d bytes, SHA-256 %x, X25519 part %x", len(pub), h, pub[min(len(pub), 1184):])
	}
}

// TestPQMalformedPublicKeys checks that public keys and KEM outputs that
// are malformed in their ML-KEM or their curve part are rejected with an
// error naming the operation, without panicking.
func TestPQMalformedPublicKeys(t *testing.T) {
	for _, w := range pqTable {
		s := mustSuite(t, w.id)
		t.Run(s.String(), func(t *testing.T) {
			sz := pqKEMSizes[w.kem]
			priv, pub, err := s.DeriveKeyPair(bytes.Repeat([]byte{1}, s.HashSize()))
			if err != nil {
				t.Fatal(err)
			}
			badPK := bytes.Clone(pub) // first ML-KEM coefficient 0xfff >= q
			badPK[0], badPK[1] = 0xff, 0x0f
			pubs := map[string][]byte{
				"empty": nil, "one byte": pub[:1], "short": pub[:len(pub)-1], "long": append(bytes.Clone(pub), 0),
				"ML-KEM coefficient": badPK,
			}
			kemOut, ct, err := s.EncryptWithLabel(pub, "L", nil, []byte("pt"))
			if err != nil {
				t.Fatal(err)
			}
			point := map[uint16]int{0x647a: 32, 0x0050: 65, 0x0051: 97}[w.kem] // 0 for pure ML-KEM
			ffCT := bytes.Clone(kemOut)                                        // ML-KEM ciphertext all-ff: implicit rejection, then AEAD failure
			for i := range len(ffCT) - point {
				ffCT[i] = 0xff
			}
			outs := map[string][]byte{
				"empty": nil, "short": kemOut[:len(kemOut)-1], "long": append(bytes.Clone(kemOut), 0),
				"ML-KEM all-ff": ffCT,
			}
			if point > 0 {
				// Hybrid: corrupt the curve point of the public key and of the KEM output.
				pt, ko := bytes.Clone(pub), bytes.Clone(kemOut)
				if point == 32 { // X25519: the all-zero point is low-order
					clear(pt[len(pt)-point:])
					clear(ko[len(ko)-point:])
				} else { // NIST: not the uncompressed form (prefix 0x04 -> 0x00), off the curve
					pt[len(pt)-point] = 0x00
					ko[len(ko)-point] = 0x00
					pubs["off-curve point"] = flip(pub, len(pub)-1)
					outs["off-curve point"] = flip(kemOut, len(kemOut)-1)
				}
				pubs["bad curve point"] = pt
				pubs["ML-KEM part only"] = pub[:len(pub)-point]
				outs["bad curve point"] = ko
			}
			for name, p := range pubs {
				k, c, err := s.EncryptWithLabel(p, "L", nil, []byte("pt"))
				if err == nil || k != nil || c != nil {
					t.Errorf("public key %q (%d bytes): accepted", name, len(p))
				} else if !strings.HasPrefix(err.Error(), "suite: EncryptWithLabel") {
					t.Errorf("public key %q: error %q lacks package and operation", name, err)
				}
			}
			for name, o := range outs {
				got, err := s.DecryptWithLabel(priv, "L", nil, o, ct)
				if err == nil || got != nil {
					t.Errorf("kem_output %q (%d bytes): accepted", name, len(o))
				} else if !strings.HasPrefix(err.Error(), "suite: DecryptWithLabel") {
					t.Errorf("kem_output %q: error %q lacks package and operation", name, err)
				}
			}
			for _, n := range []int{0, 1, sz.nsk - 1, sz.nsk + 1, 2400} {
				if _, err := s.HPKEPublicKey(make([]byte, n)); err == nil {
					t.Errorf("HPKEPublicKey accepted a %d-byte private key", n)
				}
			}
		})
	}
}
