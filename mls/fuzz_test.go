package mls

import (
	"bytes"
	"sync"
	"testing"
)

// fuzzFixture is a small group and the real messages it exchanged, from
// which the fuzz targets are seeded, with bob's and the follower's states
// from before bob received them.
type fuzzFixture struct {
	cfg      *Config
	signers  map[string]*Signer
	states   map[string][]byte // member name → MarshalBinary
	ratchets [][]byte          // RatchetState values
	public   []byte            // follower state
	messages [][]byte          // messages bob and the follower have not seen
	welcome  []byte
	bundle   *KeyPackageBundle
	kps      [][]byte
}

var (
	fixtureOnce sync.Once
	fixture     *fuzzFixture
)

func getFuzzFixture(f *testing.F) *fuzzFixture {
	fixtureOnce.Do(func() {
		t := &testing.T{}
		w, signers := stateWorld(t, MLS128DHKEMX25519AES128GCMSHA256Ed25519)
		fx := &fuzzFixture{cfg: w.cfg, signers: signers, states: map[string][]byte{}}
		for name, g := range w.members {
			b, err := g.MarshalBinary()
			if err != nil {
				panic(err)
			}
			fx.states[name] = b
			rs, err := g.RatchetState()
			if err != nil {
				panic(err)
			}
			fx.ratchets = append(fx.ratchets, rs)
		}
		pb, err := w.pg.MarshalBinary()
		if err != nil {
			panic(err)
		}
		fx.public = pb
		alice, carol := w.members["alice"], w.members["carol"]
		add := func(b []byte, err error) {
			if err != nil {
				panic(err)
			}
			fx.messages = append(fx.messages, b)
		}
		add(alice.Encrypt([]byte("hello"), []byte("ad")))
		add(carol.Encrypt([]byte("hi"), nil))
		add(alice.ProposeRemove(carol.OwnLeaf()))
		add(carol.ProposeUpdate())
		s, _ := GenerateSigner(MLS128DHKEMX25519AES128GCMSHA256Ed25519)
		dave, err := NewKeyPackage(w.cfg, MLS128DHKEMX25519AES128GCMSHA256Ed25519, s, BasicCredential([]byte("dave")), KeyPackageOptions{})
		if err != nil {
			panic(err)
		}
		fx.bundle = dave
		fx.kps = append(fx.kps, dave.KeyPackage, w.kp("erin").KeyPackage)
		add(alice.ProposeAdd(dave.KeyPackage))
		pc, err := carol.Commit(CommitOptions{Add: [][]byte{dave.KeyPackage}, InlineRatchetTree: true, ExternalPub: true})
		if err != nil {
			panic(err)
		}
		fx.messages = append(fx.messages, pc.Message, pc.GroupInfo)
		fx.welcome = pc.Welcome
		pc2, err := alice.Commit(CommitOptions{ForcePath: true, Remove: []LeafIndex{carol.OwnLeaf()}})
		if err != nil {
			panic(err)
		}
		fx.messages = append(fx.messages, pc2.Message)
		fixture = fx
	})
	if fixture == nil {
		f.Fatal("fuzz fixture failed")
	}
	return fixture
}

// FuzzProcess feeds arbitrary MLSMessage bytes to a member: no panic, and
// a message that fails leaves the member's state exactly as it was.
func FuzzProcess(f *testing.F) {
	fx := getFuzzFixture(f)
	for _, m := range fx.messages {
		f.Add(m)
	}
	before := fx.states["bob"]
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := LoadGroup(fx.cfg, before, fx.signers["bob"])
		if err != nil {
			t.Fatal(err)
		}
		p, err := g.Process(data)
		if err != nil {
			after, merr := g.MarshalBinary()
			if merr != nil {
				t.Fatal(merr)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("state changed by a failed Process: %v", err)
			}
			return
		}
		if p.Kind == KindCommit {
			if err := g.MergeStagedCommit(p.Commit); err != nil {
				t.Fatal(err)
			}
			if _, err := g.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzPublicGroupProcess feeds arbitrary bytes to the follower: no panic,
// and a failure leaves its state unchanged.
func FuzzPublicGroupProcess(f *testing.F) {
	fx := getFuzzFixture(f)
	for _, m := range fx.messages {
		f.Add(m)
	}
	before := fx.public
	f.Fuzz(func(t *testing.T, data []byte) {
		pg, err := LoadPublicGroup(fx.cfg, before)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := pg.Process(data)
		if err != nil {
			after, merr := pg.MarshalBinary()
			if merr != nil {
				t.Fatal(merr)
			}
			if !bytes.Equal(before, after) {
				t.Fatalf("state changed by a failed Process: %v", err)
			}
			return
		}
		if ch.Kind == KindCommit {
			if err := pg.Merge(ch); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzJoinFromWelcome feeds arbitrary Welcome bytes to a real bundle.
func FuzzJoinFromWelcome(f *testing.F) {
	fx := getFuzzFixture(f)
	f.Add(fx.welcome)
	for _, m := range fx.messages {
		f.Add(m)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		g, err := JoinFromWelcome(fx.cfg, data, fx.bundle, JoinOptions{})
		if err == nil {
			if _, err := g.MarshalBinary(); err != nil {
				t.Fatal(err)
			}
		}
	})
}

// FuzzValidateKeyPackage feeds arbitrary bytes to ValidateKeyPackage.
func FuzzValidateKeyPackage(f *testing.F) {
	fx := getFuzzFixture(f)
	for _, kp := range fx.kps {
		f.Add(kp)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		info, err := ValidateKeyPackage(fx.cfg, 0, data)
		if err == nil && (info == nil || len(info.Ref) == 0) {
			t.Fatal("accepted without info")
		}
	})
}

// FuzzLoadGroup feeds arbitrary bytes to LoadGroup (with each member's
// signer), LoadPublicGroup and ApplyRatchetState: no panic, and accepted
// input marshals back to exactly the same bytes.
func FuzzLoadGroup(f *testing.F) {
	fx := getFuzzFixture(f)
	for _, s := range fx.states {
		f.Add(s)
	}
	for _, r := range fx.ratchets {
		f.Add(r)
	}
	f.Add(fx.public)
	f.Fuzz(func(t *testing.T, data []byte) {
		for _, s := range fx.signers {
			g, err := LoadGroup(fx.cfg, data, s)
			if err != nil {
				continue
			}
			out, err := g.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("accepted state re-marshals differently:\n in %x\nout %x", data, out)
			}
		}
		if pg, err := LoadPublicGroup(fx.cfg, data); err == nil {
			out, err := pg.MarshalBinary()
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out, data) {
				t.Fatalf("accepted public state re-marshals differently")
			}
		}
		if len(data) < 2 || data[1] != stateKindRatchets {
			return
		}
		g, err := LoadGroup(fx.cfg, fx.states["bob"], fx.signers["bob"])
		if err != nil {
			t.Fatal(err)
		}
		before, _ := g.RatchetState()
		if err := g.ApplyRatchetState(data); err != nil {
			if after, _ := g.RatchetState(); !bytes.Equal(before, after) {
				t.Fatalf("failed ApplyRatchetState changed the state: %v", err)
			}
		}
	})
}
