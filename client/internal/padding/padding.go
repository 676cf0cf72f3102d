// Package padding holds the length-hiding rules of Parley's client: which
// sizes an MLS application message and an encrypted attachment may have on
// the wire, so that the server learns a size class rather than a size.
// docs/content.md ("Padding") explains the choice and its overhead.
//
// Both rules are pure functions of a length; the MLS layer
// (mls.Config.Padding) and package client/attach apply them.
package padding

import "math/bits"

// MessageBlock is the step of the small message sizes: a
// PrivateMessageContent of up to MessageSmall bytes is padded to the next
// multiple of MessageBlock.
const MessageBlock = 256

// MessageSmall is the largest PrivateMessageContent padded to a multiple
// of MessageBlock; longer ones are padded with [Padme].
const MessageSmall = 1024

// Message returns the length to which Parley pads the encoded
// PrivateMessageContent of an application message or handshake message of
// n bytes (RFC 9420 §6.3.1): the next multiple of 256 bytes up to 1 KiB,
// so that read receipts, reactions and texts of up to about 150 bytes are
// all 256 bytes, then [Padme] (at most 6.25% more, 3.13% above 64 KiB).
// It returns at least n, and at least 256.
func Message(n int) int {
	if n <= MessageSmall {
		return max(MessageBlock, (n+MessageBlock-1)/MessageBlock*MessageBlock)
	}
	return int(Padme(int64(n)))
}

// AttachmentMin is the smallest padded attachment plaintext: every file of
// up to AttachmentMin-1 bytes yields a blob of one size.
const AttachmentMin = 4096

// Attachment returns the padded plaintext length of an attachment of n
// bytes: the file, the 0x80 marker byte and zero bytes up to
// max(AttachmentMin, Padme(n+1)). It returns at least n+1.
func Attachment(n int64) int64 {
	return max(AttachmentMin, Padme(n+1))
}

// Padme returns the Padmé length of n (Nikitin et al., "Reducing Metadata
// Leakage from Encrypted Files and Communication with PURBs", PETS 2019):
// n rounded up so that only the top floor(log2(E))+1 bits below the leading
// one stay free, where E = floor(log2(n)): it rounds n up to a multiple
// of 2^(E-S) with S = floor(log2(E))+1. The result is at least n and at
// most n·(1+2^-S) (12.5% for n from 16, 6.25% from 256, 3.13% from
// 65536); lengths below 2 are returned unchanged.
func Padme(n int64) int64 {
	if n < 2 {
		return n
	}
	e := bits.Len64(uint64(n)) - 1 // floor(log2 n)
	s := bits.Len64(uint64(e))     // floor(log2 e) + 1
	mask := int64(1)<<(e-s) - 1
	return (n + mask) &^ mask
}
