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
//     SignWithLabel/VerifyWithLabel, RefHash (§5.2). Besides the seven
//     suites of RFC 9420 it has the post-quantum suites TBD1–TBD11 of
//     draft-ietf-mls-pq-ciphersuites at private-use codepoints 0xF001–0xF00B:
//     ML-KEM and X-Wing KEMs, and for TBD9–TBD11 ML-DSA signatures (suite.go
//     lists the constants).
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
// This package is the public face of the library: the group state machine
// of §10–§15, built on the layers above. Its files map to the RFC:
//
//   - config.go, signer.go, errors.go: Config (clock, credential hook,
//     message windows), Signer and Credential (§5.3), sentinel errors.
//   - keypackage.go: §10 KeyPackages, §10.1 validation (ValidateKeyPackage).
//   - create.go: §11 group creation.
//   - core.go: the public core that Group and PublicGroup share: §12.1
//     proposal validity, §12.2 proposal-list validation, §12.3 application,
//     §7.3 leaf node validation, §12.4 path-required rules, §12.4.2 the
//     provisional GroupContext and the next epoch's context.
//   - proposal.go, commit.go: creating proposals and commits (§12.1,
//     §12.4.1), PendingCommit, Welcome creation (§12.4.3.1), PSKs (§8.4).
//   - process.go: §12.4.2 processing commits (StagedCommit), caching
//     proposals by reference, §15 application messages.
//   - welcome.go: §12.4.3.1 joining from a Welcome.
//   - external.go: §12.4.3.2 external commits (JoinExternal).
//   - reinit.go: §11.2 ReInit and §11.3 branching via resumption PSKs.
//   - message.go: §15 application messages.
//   - public.go: PublicGroup, the Delivery Service's secret-less follower.
//   - external_sender.go: §12.1.8 proposals from outside the group
//     (NewExternalProposal, NewMemberAddProposal).
//   - state.go: persistence of Group and PublicGroup (MarshalBinary,
//     LoadGroup, LoadPublicGroup) and of the per-message ratchet state
//     (RatchetState, ApplyRatchetState), with the rule for when to write
//     which.
//   - grease.go: §13.5 GREASE values in what this client creates.
//
// Lifecycle: a Commit is created as a PendingCommit and applied with
// Group.MergePendingCommit only once the Delivery Service accepted it (or
// dropped with Group.DiscardPendingCommit); a received Commit is staged by
// Group.Process and applied with Group.MergeStagedCommit (or dropped with
// Group.DiscardStagedCommit). A failed step never changes the group.
//
// Every new or replaced credential passes through Config.ValidateCredential
// before it is accepted. Leaf lifetimes are checked against Config.Now.
package mls
