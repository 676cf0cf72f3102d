// Package mls is Parley's implementation of the Messaging Layer Security
// protocol (RFC 9420), in pure Go on the standard library's cryptography.
//
// The library is built in layers, each an internal package that maps to
// sections of the RFC and is checked against the official test vectors:
//
//   - internal/codec: the TLS presentation language with the variable-length
//     integers of §2.1.2. Bounded decoding; no cryptography.
//   - internal/suite: the cipher suites of §5.1 and §17.1 — hash, KDF with
//     ExpandWithLabel/DeriveSecret/DeriveTreeSecret, AEAD, HPKE with
//     EncryptWithLabel/DecryptWithLabel and DeriveKeyPair, signatures with
//     SignWithLabel/VerifyWithLabel, RefHash (§5.2).
//   - internal/treemath: the array representation of the ratchet tree
//     (§4.2, Appendix C).
//   - internal/wire: every structure that crosses the wire (§6–§12), with
//     encodings that reproduce their input byte for byte.
//   - internal/tree: the ratchet tree (§7): resolution, tree and parent
//     hashes, validation, and TreeKEM (§7.4–§7.6).
//   - internal/schedule: the key schedule (§8), pre-shared keys (§8.4),
//     transcript hashes (§8.2), the exporter (§8.5) and the secret tree (§9).
//   - internal/framing: protection of PublicMessage and PrivateMessage (§6)
//     and Welcome processing (§12.4.3).
//
// This package is the public face of the library; the group state machine
// (§12–§14) is built on the layers above.
package mls
