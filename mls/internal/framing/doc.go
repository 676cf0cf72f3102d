// Package framing protects and unprotects MLS messages and opens Welcome
// messages: the symmetric and signature layers between an
// AuthenticatedContent and the bytes on the wire.
//
// Map of files to RFC 9420 sections:
//
//	context.go    §6.1 FramedContentTBS and FramedContentAuthData.signature:
//	              the per-epoch Context that binds a signature to a group
//	              and epoch; SignContent, VerifyContent, SignerLookup
//	public.go     §6.2 PublicMessage: ProtectPublic, SealPublic,
//	              UnprotectPublic; the membership tag over
//	              AuthenticatedContentTBM
//	private.go    §6.3 PrivateMessage: ProtectPrivate, SealPrivate,
//	              UnprotectPrivate; §6.3.1 content encryption with the
//	              sender's ratchet key, the reuse guard and zero padding;
//	              §6.3.2 sender data encryption keyed by the ciphertext
//	              sample; §9 the secret tree seen through SecretTree
//	transcript.go §6.1 confirmation tags, §8.2 transcript hashes of a
//	              commit's AuthenticatedContent
//	welcome.go    §12.4.3.1 joining via Welcome: finding our
//	              EncryptedGroupSecrets, DecryptWithLabel("Welcome"), the
//	              welcome key and nonce, GroupInfo decryption and signature
//	              verification (§12.4.3), confirmation tag check
//
// The package has no ratchet tree: signature public keys come from a
// caller-supplied SignerLookup, and per-leaf ratchet keys from a
// SecretTree, so the group state machine decides who is a member.
//
// Everything that reads network input returns an error rather than
// panicking, and errors name the package, the operation and the offending
// input: "framing: unprotect PrivateMessage: sender data: leaf 7 out of
// range (2 leaves)". Sentinel errors exist only where callers branch:
// ErrWrongGroup and ErrWrongEpoch here, and the secret tree's
// schedule.ErrGenerationUsed (a replay), ErrGenerationExpired and
// ErrGenerationTooFar, which UnprotectPrivate wraps.
package framing
