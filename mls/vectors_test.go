package mls

import (
	"fmt"
	"testing"
	"time"

	"github.com/parley-chat/parley/mls/internal/framing"
	"github.com/parley-chat/parley/mls/internal/schedule"
	"github.com/parley-chat/parley/mls/internal/vectors"
	"github.com/parley-chat/parley/mls/internal/wire"
)

type passiveVector struct {
	CipherSuite  uint16 `json:"cipher_suite"`
	ExternalPSKs []struct {
		PSKID vectors.Hex `json:"psk_id"`
		PSK   vectors.Hex `json:"psk"`
	} `json:"external_psks"`
	KeyPackage                vectors.Hex `json:"key_package"`
	SignaturePriv             vectors.Hex `json:"signature_priv"`
	EncryptionPriv            vectors.Hex `json:"encryption_priv"`
	InitPriv                  vectors.Hex `json:"init_priv"`
	Welcome                   vectors.Hex `json:"welcome"`
	RatchetTree               vectors.Hex `json:"ratchet_tree"`
	InitialEpochAuthenticator vectors.Hex `json:"initial_epoch_authenticator"`
	Epochs                    []struct {
		Proposals          []vectors.Hex `json:"proposals"`
		Commit             vectors.Hex   `json:"commit"`
		EpochAuthenticator vectors.Hex   `json:"epoch_authenticator"`
	} `json:"epochs"`
}

func TestVectorsPassiveClientWelcome(t *testing.T) { runPassive(t, "passive-client-welcome.json") }
func TestVectorsPassiveClientHandlingCommit(t *testing.T) {
	runPassive(t, "passive-client-handling-commit.json")
}
func TestVectorsPassiveClientRandom(t *testing.T) { runPassive(t, "passive-client-random.json") }

func runPassive(t *testing.T, file string) {
	var vs []passiveVector
	vectors.Load(t, file, &vs)
	c := vectors.NewCounter(file)
	for i, v := range vs {
		c.Run(t, fmt.Sprintf("%d/suite%d", i, v.CipherSuite), func(t *testing.T) {
			if err := runPassiveCase(t, &v); err != nil {
				t.Fatal(err)
			}
		})
	}
	c.Report(t)
}

func runPassiveCase(t *testing.T, v *passiveVector) error {
	cs := CipherSuite(v.CipherSuite)
	signer, err := NewSigner(cs, v.SignaturePriv)
	if err != nil {
		return err
	}
	bundle, err := NewKeyPackageBundle(v.KeyPackage, signer, v.InitPriv, v.EncryptionPriv)
	if err != nil {
		return err
	}
	psks := &PSKs{External: map[string][]byte{}}
	for _, p := range v.ExternalPSKs {
		psks.External[string(p.PSKID)] = p.PSK
	}
	// The vectors' lifetimes have expired: run the clock at the latest
	// not_before of the KeyPackage and the leaves of the group's tree
	// (the time the vectors were generated), so that every lifetime check
	// runs and passes as it did then.
	nb, err := vectorTime(bundle, v, psks)
	if err != nil {
		return err
	}
	now := time.Unix(int64(nb), 0)
	// Their leaves are valid from 0 to 2^64-1: no MaxLeafLifetime.
	cfg := &Config{Now: func() time.Time { return now }, PSKs: psks, MaxLeafLifetime: -1}
	g, err := JoinFromWelcome(cfg, v.Welcome, bundle, JoinOptions{RatchetTree: v.RatchetTree})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	if !equalBytes(g.EpochAuthenticator(), v.InitialEpochAuthenticator) {
		return fmt.Errorf("initial epoch authenticator mismatch")
	}
	for i, ep := range v.Epochs {
		for j, p := range ep.Proposals {
			pr, err := g.Process(p)
			if err != nil {
				return fmt.Errorf("epoch %d: proposal %d: %w", i, j, err)
			}
			if pr.Kind != KindProposal {
				return fmt.Errorf("epoch %d: proposal %d: kind %d", i, j, pr.Kind)
			}
		}
		pr, err := g.Process(ep.Commit)
		if err != nil {
			return fmt.Errorf("epoch %d: commit: %w", i, err)
		}
		if pr.Kind != KindCommit {
			return fmt.Errorf("epoch %d: kind %d", i, pr.Kind)
		}
		if err := g.MergeStagedCommit(pr.Commit); err != nil {
			return fmt.Errorf("epoch %d: merge: %w", i, err)
		}
		if !equalBytes(g.EpochAuthenticator(), ep.EpochAuthenticator) {
			return fmt.Errorf("epoch %d: epoch authenticator mismatch", i)
		}
	}
	return nil
}

// vectorTime opens the Welcome once to read the tree's lifetimes.
func vectorTime(b *KeyPackageBundle, v *passiveVector, psks *PSKs) (uint64, error) {
	nb := b.kp.LeafNode.Lifetime.NotBefore
	var m wire.MLSMessage
	if err := wire.Unmarshal(v.Welcome, &m); err != nil || m.Welcome == nil {
		return 0, fmt.Errorf("welcome: %v", err)
	}
	_, err := framing.OpenWelcome(b.suite, m.Welcome, b.kp, b.InitPrivateKey, func(ids []wire.PreSharedKeyID) (schedule.CombinedPSK, error) {
		return resolvePSKs(b.suite, ids, psks, nil)
	}, func(gi *wire.GroupInfo) ([]byte, error) {
		t, err := joinTree(b.suite, gi, v.RatchetTree, nil)
		if err != nil {
			return nil, err
		}
		for _, ln := range t.Members() {
			if ln.Lifetime != nil {
				nb = max(nb, ln.Lifetime.NotBefore)
			}
		}
		return t.Leaf(LeafIndex(gi.Signer)).SignatureKey, nil
	})
	return nb, err
}
