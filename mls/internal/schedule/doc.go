// Package schedule implements the MLS key schedule and the secrets derived
// from it (RFC 9420 §8, §9, §6.3.2, §12.4.3.1):
//
//   - keyschedule.go: §8 "Key Schedule". DeriveEpoch runs one epoch from
//     init_secret, commit_secret, psk_secret and the encoded GroupContext
//     through joiner_secret (§8), welcome_secret (§8, §12.4.3.1) and
//     epoch_secret to the epoch-derived secrets of Table 4; FromJoiner is
//     the same derivation entered at joiner_secret, as a new member does
//     (§12.4.3.1); FromEpochSecret starts at epoch_secret, as a group's
//     creator does for epoch 0 (§11). ExternalKeyPair is §8 KEM.DeriveKeyPair(external_secret);
//     Export is §8.5 MLS-Exporter; WelcomeKeyNonce is §12.4.3.1.
//   - psk.go: §8.4 "Pre-Shared Keys", the psk_secret chain over PSKLabel.
//   - transcript.go: §8.2 "Transcript Hashes".
//   - secrettree.go: §9 "Secret Tree" and §9.1 "Encryption Keys", with the
//     deletion schedule of §9.2, and the sender-data key and nonce of
//     §6.3.2.
//
// Each stage of the schedule has its own type (InitSecret, CommitSecret,
// JoinerSecret, ...), so a secret of one stage cannot be passed where
// another is expected without an explicit conversion. All secrets are Nh
// bytes long (the suite's hash size) unless said otherwise; functions
// reject inputs of any other length.
//
// The package does not import the MLS wire structures: where the RFC feeds
// an MLS struct into a derivation (GroupContext, PreSharedKeyID,
// ConfirmedTranscriptHashInput, InterimTranscriptHashInput) the caller
// passes its TLS encoding.
//
// Values of this package hold secrets. Functions never log them; byte
// slices returned are owned by the caller, who should zero them (Zero) once
// consumed, as §9.2 requires.
package schedule
