package suite

import (
	"bytes"
	"strings"
	"testing"
)

// withHeadroom returns value after off bytes of junk, as a caller of the
// headroom operations lays out its buffer.
func withHeadroom(off int, value []byte) []byte {
	return append(bytes.Repeat([]byte{0xee}, off), value...)
}

// TestLabeledAt checks that the in-place labelled struct equals labeled's
// across varint size boundaries, for the smallest and a larger headroom,
// and leaves the value alone.
func TestLabeledAt(t *testing.T) {
	for _, n := range []int{0, 1, 63, 64, 16383, 16384, 70000} {
		value := bytes.Repeat([]byte{0xab}, n)
		label := strings.Repeat("l", n%100)
		want, err := labeled(labelPrefix, label, value, 0)
		if err != nil {
			t.Fatal(err)
		}
		hdr := len(want) - n
		if hdr > LabelHeadroom(label) {
			t.Fatalf("n=%d: header is %d bytes, LabelHeadroom %d", n, hdr, LabelHeadroom(label))
		}
		for _, off := range []int{hdr, LabelHeadroom(label) + 7} {
			buf := withHeadroom(off, value)
			got, err := labeledAt(labelPrefix, label, buf, off)
			if err != nil || !bytes.Equal(got, want) {
				t.Errorf("n=%d off=%d: in-place encoding differs (err %v)", n, off, err)
			}
			if !bytes.Equal(buf[off:], value) {
				t.Errorf("n=%d off=%d: value modified", n, off)
			}
		}
		if _, err := labeledAt(labelPrefix, label, withHeadroom(hdr-1, value), hdr-1); err == nil {
			t.Errorf("n=%d: headroom of %d bytes accepted, need %d", n, hdr-1, hdr)
		}
	}
	for _, off := range []int{-1, 4} {
		if _, err := labeledAt(labelPrefix, "x", make([]byte, 3), off); err == nil {
			t.Errorf("headroom %d of a 3-byte buffer accepted", off)
		}
	}
}

// TestHeadroomOps checks DecryptWithLabelHeadroom, VerifyWithLabelHeadroom
// and OpenInPlace against the copying operations.
func TestHeadroomOps(t *testing.T) {
	for _, s := range allSuites(t) {
		t.Run(s.String(), func(t *testing.T) {
			ctx, pt := []byte("encrypted group info"), []byte("group secrets")
			priv, pub, err := s.GenerateHPKEKey()
			if err != nil {
				t.Fatal(err)
			}
			kem, ct, err := s.EncryptWithLabel(pub, "Welcome", ctx, pt)
			if err != nil {
				t.Fatal(err)
			}
			off := LabelHeadroom("Welcome")
			buf := withHeadroom(off, ctx)
			if got, err := s.DecryptWithLabelHeadroom(priv, "Welcome", buf, off, kem, ct); err != nil || !bytes.Equal(got, pt) {
				t.Errorf("DecryptWithLabelHeadroom = %x, %v", got, err)
			}
			if !bytes.Equal(buf[off:], ctx) {
				t.Error("DecryptWithLabelHeadroom modified the context")
			}
			wrong := withHeadroom(off, []byte("encrypted group infO"))
			if _, err := s.DecryptWithLabelHeadroom(priv, "Welcome", wrong, off, kem, ct); err == nil {
				t.Error("DecryptWithLabelHeadroom accepted the wrong context")
			}
			if _, err := s.DecryptWithLabelHeadroom(priv, "Welcome", buf[1:], 1, kem, ct); err == nil {
				t.Error("DecryptWithLabelHeadroom accepted 1 byte of headroom")
			}

			spriv, spub, err := s.GenerateSignatureKey()
			if err != nil {
				t.Fatal(err)
			}
			content := []byte("group info tbs")
			sig, err := s.SignWithLabel(spriv, "GroupInfoTBS", content)
			if err != nil {
				t.Fatal(err)
			}
			off = LabelHeadroom("GroupInfoTBS")
			buf = withHeadroom(off, content)
			if err := s.VerifyWithLabelHeadroom(spub, "GroupInfoTBS", buf, off, sig); err != nil {
				t.Errorf("VerifyWithLabelHeadroom: %v", err)
			}
			if !bytes.Equal(buf[off:], content) {
				t.Error("VerifyWithLabelHeadroom modified the content")
			}
			if err := s.VerifyWithLabelHeadroom(spub, "LeafNodeTBS", buf, off, sig); err == nil {
				t.Error("VerifyWithLabelHeadroom accepted the wrong label")
			}
			if err := s.VerifyWithLabelHeadroom(spub, "GroupInfoTBS", buf[:len(buf)-1], off, sig); err == nil {
				t.Error("VerifyWithLabelHeadroom accepted truncated content")
			}
			if err := s.VerifyWithLabelHeadroom(spub, "GroupInfoTBS", buf[2:], 2, sig); err == nil || !strings.HasPrefix(err.Error(), "suite: VerifyWithLabel") {
				t.Errorf("VerifyWithLabelHeadroom with 2 bytes of headroom: %v", err)
			}

			key, nonce := make([]byte, s.AEADKeySize()), make([]byte, s.AEADNonceSize())
			sealed, err := s.Seal(key, nonce, nil, pt)
			if err != nil {
				t.Fatal(err)
			}
			in := bytes.Clone(sealed)
			got, err := s.OpenInPlace(key, nonce, nil, in)
			if err != nil || !bytes.Equal(got, pt) || &got[0] != &in[0] {
				t.Errorf("OpenInPlace = %x, %v (in place: %v)", got, err, err == nil && &got[0] == &in[0])
			}
			if _, err := s.OpenInPlace(key, nonce, nil, flip(sealed, 1)); err == nil {
				t.Error("OpenInPlace accepted a tampered ciphertext")
			}
			if _, err := s.OpenInPlace(key, nonce[1:], nil, bytes.Clone(sealed)); err == nil {
				t.Error("OpenInPlace accepted a short nonce")
			}
		})
	}
}
