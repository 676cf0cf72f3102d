package suite

import (
	"bytes"
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/vectors"
)

type cryptoBasicsVector struct {
	CipherSuite ID `json:"cipher_suite"`
	RefHash     struct {
		Label string      `json:"label"`
		Value vectors.Hex `json:"value"`
		Out   vectors.Hex `json:"out"`
	} `json:"ref_hash"`
	ExpandWithLabel struct {
		Secret  vectors.Hex `json:"secret"`
		Label   string      `json:"label"`
		Context vectors.Hex `json:"context"`
		Length  int         `json:"length"`
		Out     vectors.Hex `json:"out"`
	} `json:"expand_with_label"`
	DeriveSecret struct {
		Secret vectors.Hex `json:"secret"`
		Label  string      `json:"label"`
		Out    vectors.Hex `json:"out"`
	} `json:"derive_secret"`
	DeriveTreeSecret struct {
		Secret     vectors.Hex `json:"secret"`
		Label      string      `json:"label"`
		Generation uint32      `json:"generation"`
		Length     int         `json:"length"`
		Out        vectors.Hex `json:"out"`
	} `json:"derive_tree_secret"`
	SignWithLabel struct {
		Priv      vectors.Hex `json:"priv"`
		Pub       vectors.Hex `json:"pub"`
		Content   vectors.Hex `json:"content"`
		Label     string      `json:"label"`
		Signature vectors.Hex `json:"signature"`
	} `json:"sign_with_label"`
	EncryptWithLabel struct {
		Priv       vectors.Hex `json:"priv"`
		Pub        vectors.Hex `json:"pub"`
		Label      string      `json:"label"`
		Context    vectors.Hex `json:"context"`
		Plaintext  vectors.Hex `json:"plaintext"`
		KEMOutput  vectors.Hex `json:"kem_output"`
		Ciphertext vectors.Hex `json:"ciphertext"`
	} `json:"encrypt_with_label"`
}

// TestVectorsCryptoBasics checks every item of test-vectors.md §Crypto
// Basics for each suite in crypto-basics.json.
func TestVectorsCryptoBasics(t *testing.T) {
	const file = "crypto-basics.json"
	var vs []cryptoBasicsVector
	vectors.Load(t, file, &vs)
	c := vectors.NewCounter(file)
	for i, v := range vs {
		c.Run(t, fmt.Sprintf("%d/suite-%d", i, v.CipherSuite), func(t *testing.T) {
			s, err := New(v.CipherSuite)
			if err != nil {
				t.Fatal(err)
			}

			r := v.RefHash
			if got := s.RefHash(r.Label, r.Value); !bytes.Equal(got, r.Out) {
				t.Errorf("ref_hash: got %x, want %x", got, r.Out)
			}

			e := v.ExpandWithLabel
			got, err := s.ExpandWithLabel(e.Secret, e.Label, e.Context, e.Length)
			if err != nil || !bytes.Equal(got, e.Out) {
				t.Errorf("expand_with_label: got %x, %v; want %x", got, err, e.Out)
			}

			d := v.DeriveSecret
			got, err = s.DeriveSecret(d.Secret, d.Label)
			if err != nil || !bytes.Equal(got, d.Out) {
				t.Errorf("derive_secret: got %x, %v; want %x", got, err, d.Out)
			}

			ts := v.DeriveTreeSecret
			got, err = s.DeriveTreeSecret(ts.Secret, ts.Label, ts.Generation, ts.Length)
			if err != nil || !bytes.Equal(got, ts.Out) {
				t.Errorf("derive_tree_secret: got %x, %v; want %x", got, err, ts.Out)
			}

			sg := v.SignWithLabel
			if err := s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sg.Signature); err != nil {
				t.Errorf("sign_with_label: vector signature: %v", err)
			}
			sig, err := s.SignWithLabel(sg.Priv, sg.Label, sg.Content)
			if err != nil {
				t.Errorf("sign_with_label: sign: %v", err)
			} else if err := s.VerifyWithLabel(sg.Pub, sg.Label, sg.Content, sig); err != nil {
				t.Errorf("sign_with_label: own signature: %v", err)
			}
			if pub, err := s.SignaturePublicKey(sg.Priv); err != nil || !bytes.Equal(pub, sg.Pub) {
				t.Errorf("sign_with_label: public key of priv: got %x, %v; want %x", pub, err, sg.Pub)
			}

			ew := v.EncryptWithLabel
			pt, err := s.DecryptWithLabel(ew.Priv, ew.Label, ew.Context, ew.KEMOutput, ew.Ciphertext)
			if err != nil || !bytes.Equal(pt, ew.Plaintext) {
				t.Errorf("encrypt_with_label: decrypt vector: got %x, %v; want %x", pt, err, ew.Plaintext)
			}
			kemOut, ct, err := s.EncryptWithLabel(ew.Pub, ew.Label, ew.Context, ew.Plaintext)
			if err != nil {
				t.Errorf("encrypt_with_label: encrypt: %v", err)
			} else if pt, err := s.DecryptWithLabel(ew.Priv, ew.Label, ew.Context, kemOut, ct); err != nil || !bytes.Equal(pt, ew.Plaintext) {
				t.Errorf("encrypt_with_label: decrypt own: got %x, %v; want %x", pt, err, ew.Plaintext)
			}
			if pub, err := s.HPKEPublicKey(ew.Priv); err != nil || !bytes.Equal(pub, ew.Pub) {
				t.Errorf("encrypt_with_label: public key of priv: got %x, %v; want %x", pub, err, ew.Pub)
			}
		})
	}
	c.Report(t)
}
