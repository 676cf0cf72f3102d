package suite

import "crypto/hpke"

// Post-quantum cipher suites of draft-ietf-mls-pq-ciphersuites-06. TBD1 to
// TBD8 pair an ML-KEM or hybrid ML-KEM KEM (draft-ietf-hpke-pq) with
// AES-GCM, HMAC-SHA-2 and a classical signature scheme: they give
// post-quantum confidentiality only, authentication stays classical. TBD9
// to TBD11 are fully post-quantum: they add ML-DSA signatures (mldsa.go) to
// X-Wing with ChaCha20-Poly1305 (TBD9) or pure ML-KEM with AES-256-GCM
// (TBD10, TBD11), all with SHA-384.
//
// IANA has not assigned codepoints yet. The values below are Parley's
// defaults from the range RFC 9420 §17.1 reserves for private use
// (0xF000-0xFFFF), numbered 0xF000 + n for the draft's TBDn. This block is
// the one place to change when IANA assigns the real values; peers using
// other private-use values for these suites will not interoperate with ours.
//
// The names follow the draft, including TBD10's "192" security level with
// ML-KEM-768 (KEM 0x0041 in the draft's table).
const (
	MLS128MLKEM768X25519AES128GCMSHA256Ed25519 ID = 0xF001 // TBD1: X-Wing; the post-quantum counterpart of suite 1
	MLS128MLKEM768X25519AES256GCMSHA384Ed25519 ID = 0xF002 // TBD2
	MLS128MLKEM768P256AES128GCMSHA256P256      ID = 0xF003 // TBD3
	MLS128MLKEM768P256AES256GCMSHA384P256      ID = 0xF004 // TBD4
	MLS192MLKEM1024P384AES256GCMSHA384P384     ID = 0xF005 // TBD5
	MLS128MLKEM768AES256GCMSHA384Ed25519       ID = 0xF006 // TBD6
	MLS128MLKEM768AES256GCMSHA384P256          ID = 0xF007 // TBD7
	MLS192MLKEM1024AES256GCMSHA384P384         ID = 0xF008 // TBD8

	MLS128MLKEM768X25519ChaCha20Poly1305SHA384MLDSA44 ID = 0xF009 // TBD9: X-Wing, ML-DSA-44
	MLS192MLKEM768AES256GCMSHA384MLDSA65              ID = 0xF00A // TBD10: ML-KEM-768, ML-DSA-65
	MLS256MLKEM1024AES256GCMSHA384MLDSA87             ID = 0xF00B // TBD11: ML-KEM-1024, ML-DSA-87
)

// pqKEM returns the HPKE piece of a post-quantum suite: kem from crypto/hpke
// in base mode with the HPKE KDF and AEAD of the draft's table.
//
// In every row of the draft's table (TBD1-TBD11) the HPKE KDF is the HKDF
// over the suite's MLS hash (0x0001 HKDF-SHA256 with SHA256, 0x0002
// HKDF-SHA384 with SHA384) and the HPKE AEAD is the suite's AEAD (0x0003
// ChaCha20-Poly1305 for TBD9), so HPKE's
// key schedule and MLS's ExpandWithLabel use the same HKDF. The KEMs
// themselves use SHAKE256 and SHA3-256 internally (key derivation and the
// hybrid combiner), independently of that KDF.
//
// Keys, as draft-ietf-hpke-pq serializes them:
//
//   - private keys are seeds: 32 bytes for the hybrids (expanded with
//     SHAKE256 into the ML-KEM d||z and the curve scalar), 64 bytes (d||z of
//     FIPS 203) for pure ML-KEM;
//   - public keys are the ML-KEM encapsulation key, followed for the hybrids
//     by the curve point (X25519: 32 bytes; P-256/P-384: uncompressed);
//   - kem_output is the ML-KEM ciphertext, followed for the hybrids by the
//     ephemeral curve point.
//
// DeriveKeyPair(ikm) is draft-ietf-hpke-pq's: seed = SHAKE256-based
// LabeledDerive(ikm, "DeriveKeyPair", "", Nsk) under suite_id "KEM" ||
// kem_id, then the key pair of that seed. It takes ikm of any length; MLS
// passes Nh bytes (32 for TBD1 and TBD3, 48 for the others), at least the
// 32 bytes of security the KEMs target.
func pqKEM(k hpke.KEM, kdf hpke.KDF, aead hpke.AEAD, name string) *stdKEM {
	return &stdKEM{kem: k, kdf: kdf, aead: aead, name: name}
}

// PostQuantum reports whether the suite's KEM is ML-KEM or a hybrid with
// ML-KEM, so that HPKE encryptions to its keys resist a quantum attacker.
// It says nothing about signatures: those are classical for TBD1-TBD8 and
// ML-DSA for TBD9-TBD11.
func (s *Suite) PostQuantum() bool { return s.pq }

// PostQuantumIDs returns the supported post-quantum suite ids (those for
// which PostQuantum is true) in ascending order. They are a subset of IDs.
func PostQuantumIDs() []ID {
	var ids []ID
	for i := range table {
		if table[i].pq {
			ids = append(ids, table[i].id)
		}
	}
	return ids
}
