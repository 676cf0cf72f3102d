package safety

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/skip2/go-qrcode"
)

func mustHex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestSignalVector checks the fingerprint construction against libsignal's
// own test vector (NumericFingerprintGeneratorTest, version 1): the same
// algorithm with Signal's 33-byte Curve25519 keys and phone numbers.
func TestSignalVector(t *testing.T) {
	alice := mustHex(t, "0506863bc66d02b40d27b8d49ca7c09e9239236f9d7d25d6fcca5ce13c7064d868")
	bob := mustHex(t, "05f781b6fb32fed9ba1cf2de978d4d5da28dc34046ae814402b5c0dbd96fda907b")
	a := fingerprint(0, alice, []byte("+14152222222"), 5200)
	b := fingerprint(0, bob, []byte("+14153333333"), 5200)
	const want = "300354477692869396892869876765458257569162576843440918079131"
	if got := combine(a, b); got != want {
		t.Errorf("alice's view %s, want %s", got, want)
	}
	if got := combine(b, a); got != want {
		t.Errorf("bob's view %s, want %s", got, want)
	}
	// libsignal's scannable fingerprints hold the first 32 bytes.
	if got := hex.EncodeToString(a[:32]); got != "1e301a0353dce3dbe7684cb8336e85136cdc0ee96219494ada305d62a7bd61df" {
		t.Errorf("alice's scannable fingerprint %s", got)
	}
}

// key returns a deterministic Ed25519 public key.
func key(seed byte) ed25519.PublicKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s).Public().(ed25519.PublicKey)
}

func mustNew(t *testing.T, local, remote Identity) *Number {
	t.Helper()
	n, err := New(local, remote)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

var (
	alice = Identity{Name: "alice@example.org", Key: key(1)}
	bob   = Identity{Name: "bob@example.org", Key: key(2)}
)

// TestGolden pins the safety number of two fixed identities (keys from
// the seeds 32×0x01 and 32×0x02), computed by this implementation after
// TestSignalVector had checked the construction.
func TestGolden(t *testing.T) {
	n := mustNew(t, alice, bob)
	const want = "327204158020356502924173761316898105934110443386625843450227"
	if n.Digits() != want {
		t.Fatalf("safety number %s, want %s", n.Digits(), want)
	}
	if len(n.Groups()) != 12 || len(strings.ReplaceAll(n.String(), " ", "")) != 60 || len(n.Lines()) != 3 {
		t.Fatalf("bad grouping: %q %q", n.String(), n.Lines())
	}
	t.Logf("%s", n)
}

func TestSymmetric(t *testing.T) {
	ab, ba := mustNew(t, alice, bob), mustNew(t, bob, alice)
	if ab.Digits() != ba.Digits() {
		t.Fatalf("alice sees %s, bob sees %s", ab, ba)
	}
	if err := ab.CompareScanned(ba.QRPayload()); err != nil {
		t.Fatalf("alice scanning bob: %v", err)
	}
	if err := ba.CompareScanned(ab.QRPayload()); err != nil {
		t.Fatalf("bob scanning alice: %v", err)
	}
	if err := ab.CompareScanned(ab.QRPayload()); !errors.Is(err, ErrOwnCode) {
		t.Fatalf("alice scanning her own code: %v", err)
	}
}

func TestDiffers(t *testing.T) {
	base := mustNew(t, alice, bob)
	others := map[string][2]Identity{
		"other key":    {alice, {Name: bob.Name, Key: key(3)}},
		"other name":   {alice, {Name: "bob@evil.example", Key: bob.Key}},
		"other local":  {{Name: alice.Name, Key: key(4)}, bob},
		"names traded": {{Name: bob.Name, Key: alice.Key}, {Name: alice.Name, Key: bob.Key}},
	}
	for name, ids := range others {
		n := mustNew(t, ids[0], ids[1])
		if n.Digits() == base.Digits() {
			t.Errorf("%s: same safety number", name)
		}
		// The remote side of the changed pair scans our code.
		theirs := mustNew(t, ids[1], ids[0])
		if err := base.CompareScanned(theirs.QRPayload()); !errors.Is(err, ErrMismatch) {
			t.Errorf("%s: CompareScanned = %v, want ErrMismatch", name, err)
		}
	}
	for _, p := range [][]byte{nil, {QRVersion}, append([]byte{2}, base.QRPayload()[1:]...), append(base.QRPayload(), 0)} {
		if err := base.CompareScanned(p); !errors.Is(err, ErrBadPayload) {
			t.Errorf("CompareScanned(%x) = %v, want ErrBadPayload", p, err)
		}
	}
}

func TestNewRejects(t *testing.T) {
	if _, err := New(Identity{Name: "a", Key: key(1)[:31]}, bob); err == nil {
		t.Error("accepted a short key")
	}
	if _, err := New(alice, Identity{Key: key(2)}); err == nil {
		t.Error("accepted an empty name")
	}
}

// TestRenderQR checks that the half-block rendering shows exactly the
// QR code's modules, in both polarities.
func TestRenderQR(t *testing.T) {
	payload := mustNew(t, alice, bob).QRPayload()
	q, err := qrcode.New(string(payload), qrcode.Medium)
	if err != nil {
		t.Fatal(err)
	}
	bm := q.Bitmap()
	for _, invert := range []bool{false, true} {
		out, err := RenderQR(payload, invert)
		if err != nil {
			t.Fatal(err)
		}
		lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
		if len(lines) != (len(bm)+1)/2 {
			t.Fatalf("invert=%v: %d lines for %d rows", invert, len(lines), len(bm))
		}
		for y, line := range lines {
			cells := []rune(line)
			if len(cells) != len(bm) {
				t.Fatalf("invert=%v: line %d has %d cells, want %d", invert, y, len(cells), len(bm))
			}
			for x, c := range cells {
				top := c == '█' || c == '▀'
				bottom := c == '█' || c == '▄'
				if top != (bm[2*y][x] == invert) {
					t.Fatalf("invert=%v: module (%d,%d) wrong", invert, x, 2*y)
				}
				if 2*y+1 < len(bm) && bottom != (bm[2*y+1][x] == invert) {
					t.Fatalf("invert=%v: module (%d,%d) wrong", invert, x, 2*y+1)
				}
			}
		}
	}
	// Reading the code back: skip2/go-qrcode has no decoder, so the
	// payload's round trip through a camera is not tested here.
}

func BenchmarkNew(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(alice, bob); err != nil {
			b.Fatal(err)
		}
	}
}
