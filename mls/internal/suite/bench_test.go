package suite

import (
	"fmt"
	"testing"
)

// benchSuites are suite 1 plus suites 2 and 5 for comparison, the
// post-quantum TBD1 (X-Wing, suite 1's counterpart), TBD5 (MLKEM1024-P384)
// and TBD8 (ML-KEM-1024), and the fully post-quantum TBD9-TBD11, whose
// SignWithLabel/VerifyWithLabel lines are ML-DSA-44, -65 and -87.
var benchSuites = []ID{
	MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	MLS128DHKEMP256AES128GCMSHA256P256,
	MLS256DHKEMP521AES256GCMSHA512P521,
	MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
	MLS192MLKEM1024P384AES256GCMSHA384P384,
	MLS192MLKEM1024AES256GCMSHA384P384,
	MLS128MLKEM768X25519ChaCha20Poly1305SHA384MLDSA44,
	MLS192MLKEM768AES256GCMSHA384MLDSA65,
	MLS256MLKEM1024AES256GCMSHA384MLDSA87,
}

// benchName names RFC 9420 suites by decimal id (suite-1, as in earlier
// recorded runs) and private-use ones in hex (suite-0xf001).
func benchName(id ID) string {
	if id >= 0xF000 {
		return fmt.Sprintf("suite-%#04x", uint16(id))
	}
	return fmt.Sprintf("suite-%d", id)
}

func forBenchSuites(b *testing.B, f func(b *testing.B, s *Suite)) {
	for _, id := range benchSuites {
		s := mustSuite(b, id)
		b.Run(benchName(id), func(b *testing.B) { f(b, s) })
	}
}

var benchPlaintext = make([]byte, 64) // about a path secret plus framing

func BenchmarkEncryptWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s *Suite) {
		_, pub, err := s.GenerateHPKEKey()
		if err != nil {
			b.Fatal(err)
		}
		ctx := make([]byte, 100)
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.EncryptWithLabel(pub, "UpdatePathNode", ctx, benchPlaintext); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecryptWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s *Suite) {
		priv, pub, err := s.GenerateHPKEKey()
		if err != nil {
			b.Fatal(err)
		}
		ctx := make([]byte, 100)
		kem, ct, err := s.EncryptWithLabel(pub, "UpdatePathNode", ctx, benchPlaintext)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.DecryptWithLabel(priv, "UpdatePathNode", ctx, kem, ct); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDeriveKeyPair(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s *Suite) {
		ikm := make([]byte, s.HashSize())
		b.ReportAllocs()
		for b.Loop() {
			if _, _, err := s.DeriveKeyPair(ikm); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkSignWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s *Suite) {
		priv, _, err := s.GenerateSignatureKey()
		if err != nil {
			b.Fatal(err)
		}
		content := make([]byte, 256)
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.SignWithLabel(priv, "FramedContentTBS", content); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerifyWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s *Suite) {
		priv, pub, err := s.GenerateSignatureKey()
		if err != nil {
			b.Fatal(err)
		}
		content := make([]byte, 256)
		sig, err := s.SignWithLabel(priv, "FramedContentTBS", content)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportAllocs()
		for b.Loop() {
			if err := s.VerifyWithLabel(pub, "FramedContentTBS", content, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkExpandWithLabel(b *testing.B) {
	forBenchSuites(b, func(b *testing.B, s *Suite) {
		secret := make([]byte, s.HashSize())
		b.ReportAllocs()
		for b.Loop() {
			if _, err := s.DeriveTreeSecret(secret, "key", 42, s.AEADKeySize()); err != nil {
				b.Fatal(err)
			}
		}
	})
}
