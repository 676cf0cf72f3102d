package interop_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	"google.golang.org/grpc/status"

	"github.com/parley-chat/parley/interop/client"
	pb "github.com/parley-chat/parley/interop/proto"
	"github.com/parley-chat/parley/mls"
)

// TestInterop builds cmd/mls-client, starts two instances on free loopback
// ports and drives them over gRPC through the scenarios of the MLS interop
// harness, as the official test-runner does: actors alternate between the
// two processes, and after every step all members must agree on StateAuth
// and on an exported secret. Scenarios run for suite 1 and the X-Wing suite
// TBD1, with handshake messages in the clear and encrypted.
func TestInterop(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two client processes")
	}
	bin := filepath.Join(t.TempDir(), "mls-client")
	build := exec.Command("go", "build", "-o", bin, "./cmd/mls-client")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	clients := []pb.MLSClientClient{startClient(t, bin), startClient(t, bin)}

	names := map[string]bool{}
	for i, c := range clients {
		nr, err := c.Name(ctx(t), &pb.NameRequest{})
		if err != nil {
			t.Fatal(err)
		}
		names[nr.GetName()] = true
		sr, err := c.SupportedCiphersuites(ctx(t), &pb.SupportedCiphersuitesRequest{})
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []mls.CipherSuite{mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519, mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519} {
			if !slices.Contains(sr.GetCiphersuites(), uint32(want)) {
				t.Fatalf("client %d does not offer suite %#04x: %v", i, uint16(want), sr.GetCiphersuites())
			}
		}
	}
	if len(names) != 1 || !names[client.Name] {
		t.Fatalf("clients report names %v, want %q", names, client.Name)
	}

	suites := []struct {
		name string
		cs   mls.CipherSuite
	}{
		{"suite1", mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519},
		{"xwing-TBD1", mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519},
	}
	ran := 0
	for _, s := range suites {
		for _, encrypt := range []bool{false, true} {
			mode := "public"
			if encrypt {
				mode = "private"
			}
			for _, sc := range scenarios {
				t.Run(s.name+"/"+mode+"/"+sc.name, func(t *testing.T) {
					h := &harness{t: t, clients: clients, cs: uint32(s.cs), encrypt: encrypt, actors: map[string]*actor{}}
					sc.run(h)
				})
				ran++
			}
		}
	}
	t.Logf("%d scenario runs", ran)
}

// startClient starts one client process on a free loopback port and
// connects to it.
func startClient(t *testing.T, bin string) pb.MLSClientClient {
	t.Helper()
	cmd := exec.Command(bin, "-port", "0")
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	lines := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		if sc.Scan() {
			lines <- sc.Text()
		}
		close(lines)
	}()
	var addr string
	select {
	case l := <-lines:
		addr = strings.TrimPrefix(l, "listening on ")
	case <-time.After(30 * time.Second):
		t.Fatal("client did not report its address")
	}
	if addr == "" {
		t.Fatal("client exited before listening")
	}
	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return pb.NewMLSClientClient(conn)
}

func ctx(t *testing.T) context.Context {
	c, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return c
}

// actor is one participant of a scenario, served by one of the clients.
type actor struct {
	name   string
	c      pb.MLSClientClient
	state  uint32
	tx     uint32
	signer uint32
	reinit uint32
	kp     []byte
}

// harness plays the test-runner for one scenario run.
type harness struct {
	t       *testing.T
	clients []pb.MLSClientClient
	cs      uint32
	encrypt bool
	actors  map[string]*actor
	// group lists the actors currently in the group, in order of joining.
	group   []string
	groupID []byte
	epoch   int
	// psks are the installed external PSKs, by id.
	psks map[string][]byte
}

// a returns the actor of the given name, assigning new actors to the
// clients in turn so that every scenario crosses process boundaries.
func (h *harness) a(name string) *actor {
	if ac, ok := h.actors[name]; ok {
		return ac
	}
	ac := &actor{name: name, c: h.clients[len(h.actors)%len(h.clients)]}
	h.actors[name] = ac
	return ac
}

// ok fails the scenario on err. Every RPC is implemented: an
// Unimplemented answer fails too, never skips.
func (h *harness) ok(err error, step string) {
	h.t.Helper()
	if err == nil {
		return
	}
	h.t.Fatalf("%s: %v (code %v)", step, err, status.Code(err))
}

// check asserts that all members agree on StateAuth and an exported
// secret.
func (h *harness) check(step string) {
	h.t.Helper()
	var auth, exp []byte
	label := fmt.Sprintf("parley interop %d", h.epoch)
	for i, name := range h.group {
		ac := h.a(name)
		sa, err := ac.c.StateAuth(ctx(h.t), &pb.StateAuthRequest{StateId: ac.state})
		h.ok(err, step+": StateAuth "+name)
		ex, err := ac.c.Export(ctx(h.t), &pb.ExportRequest{StateId: ac.state, Label: label, Context: []byte("ctx"), KeyLength: 32})
		h.ok(err, step+": Export "+name)
		if len(sa.GetStateAuthSecret()) == 0 || len(ex.GetExportedSecret()) != 32 {
			h.t.Fatalf("%s: %s: empty state auth or export", step, name)
		}
		if i == 0 {
			auth, exp = sa.GetStateAuthSecret(), ex.GetExportedSecret()
			continue
		}
		if !bytes.Equal(auth, sa.GetStateAuthSecret()) {
			h.t.Fatalf("%s: %s disagrees with %s on StateAuth", step, name, h.group[0])
		}
		if !bytes.Equal(exp, ex.GetExportedSecret()) {
			h.t.Fatalf("%s: %s disagrees with %s on Export", step, name, h.group[0])
		}
	}
}

func (h *harness) createGroup(name string) {
	h.t.Helper()
	ac := h.a(name)
	h.groupID = []byte(rand.Text())
	r, err := ac.c.CreateGroup(ctx(h.t), &pb.CreateGroupRequest{GroupId: h.groupID, CipherSuite: h.cs, EncryptHandshake: h.encrypt, Identity: []byte(name)})
	h.ok(err, "CreateGroup")
	ac.state = r.GetStateId()
	h.group = []string{name}
	h.check("CreateGroup")
}

// groupOf creates a group of creator and adds the others in one commit.
func (h *harness) groupOf(creator string, others ...string) {
	h.t.Helper()
	h.createGroup(creator)
	var kps []*pb.ProposalDescription
	for _, o := range others {
		kps = append(kps, &pb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: h.keyPackage(o)})
	}
	h.fullCommit(creator, commitSpec{byValue: kps, joiners: others})
}

func (h *harness) keyPackage(name string) []byte {
	h.t.Helper()
	ac := h.a(name)
	r, err := ac.c.CreateKeyPackage(ctx(h.t), &pb.CreateKeyPackageRequest{CipherSuite: h.cs, Identity: []byte(name)})
	h.ok(err, "CreateKeyPackage "+name)
	if len(r.GetKeyPackage()) == 0 || len(r.GetInitPriv()) == 0 || len(r.GetEncryptionPriv()) == 0 || len(r.GetSignaturePriv()) == 0 {
		h.t.Fatalf("CreateKeyPackage %s: empty field", name)
	}
	ac.tx = r.GetTransactionId()
	return r.GetKeyPackage()
}

// installPSK stores a fresh external PSK at the named actors (their state,
// or their pending transaction) and returns its id.
func (h *harness) installPSK(names ...string) []byte {
	h.t.Helper()
	id, secret := []byte(rand.Text()), []byte(rand.Text())
	if h.psks == nil {
		h.psks = map[string][]byte{}
	}
	h.psks[string(id)] = secret
	for _, n := range names {
		ac := h.a(n)
		sid := ac.state
		if sid == 0 {
			sid = ac.tx
		}
		_, err := ac.c.StorePSK(ctx(h.t), &pb.StorePSKRequest{StateOrTransactionId: sid, PskId: id, PskSecret: secret})
		h.ok(err, "StorePSK "+n)
	}
	return id
}

// propose runs one proposal RPC.
func (h *harness) propose(name, kind string, f func(ac *actor) (*pb.ProposalResponse, error)) []byte {
	h.t.Helper()
	r, err := f(h.a(name))
	h.ok(err, kind+" by "+name)
	if len(r.GetProposal()) == 0 {
		h.t.Fatalf("%s by %s: empty proposal", kind, name)
	}
	return r.GetProposal()
}

func (h *harness) addProposal(name string, kp []byte) []byte {
	return h.propose(name, "AddProposal", func(ac *actor) (*pb.ProposalResponse, error) {
		return ac.c.AddProposal(ctx(h.t), &pb.AddProposalRequest{StateId: ac.state, KeyPackage: kp})
	})
}

func (h *harness) updateProposal(name string) []byte {
	return h.propose(name, "UpdateProposal", func(ac *actor) (*pb.ProposalResponse, error) {
		return ac.c.UpdateProposal(ctx(h.t), &pb.UpdateProposalRequest{StateId: ac.state})
	})
}

func (h *harness) removeProposal(name, removed string) []byte {
	return h.propose(name, "RemoveProposal", func(ac *actor) (*pb.ProposalResponse, error) {
		return ac.c.RemoveProposal(ctx(h.t), &pb.RemoveProposalRequest{StateId: ac.state, RemovedId: []byte(removed)})
	})
}

func (h *harness) externalPSKProposal(name string, id []byte) []byte {
	return h.propose(name, "ExternalPSKProposal", func(ac *actor) (*pb.ProposalResponse, error) {
		return ac.c.ExternalPSKProposal(ctx(h.t), &pb.ExternalPSKProposalRequest{StateId: ac.state, PskId: id})
	})
}

func (h *harness) resumptionPSKProposal(name string, epoch uint64) []byte {
	return h.propose(name, "ResumptionPSKProposal", func(ac *actor) (*pb.ProposalResponse, error) {
		return ac.c.ResumptionPSKProposal(ctx(h.t), &pb.ResumptionPSKProposalRequest{StateId: ac.state, EpochId: epoch})
	})
}

func (h *harness) gceProposal(name string, exts []*pb.Extension) []byte {
	return h.propose(name, "GroupContextExtensionsProposal", func(ac *actor) (*pb.ProposalResponse, error) {
		return ac.c.GroupContextExtensionsProposal(ctx(h.t), &pb.GroupContextExtensionsProposalRequest{StateId: ac.state, Extensions: exts})
	})
}

// commitSpec is a commit step: proposals by reference (messages) and by
// value, who handles it and who joins from its Welcome. Members of the
// group not listed as handlers or committer (the removed) leave the group.
type commitSpec struct {
	byRef        [][]byte
	byValue      []*pb.ProposalDescription
	members      []string
	joiners      []string
	forcePath    bool
	externalTree bool
}

// fullCommit has committer commit, merge, the members handle the commit
// and the joiners join, checking the epoch authenticators as it goes.
func (h *harness) fullCommit(committer string, s commitSpec) {
	h.t.Helper()
	c := h.a(committer)
	cr, err := c.c.Commit(ctx(h.t), &pb.CommitRequest{StateId: c.state, ByReference: s.byRef, ByValue: s.byValue, ForcePath: s.forcePath, ExternalTree: s.externalTree})
	h.ok(err, "Commit by "+committer)
	if len(s.joiners) > 0 && len(cr.GetWelcome()) == 0 {
		h.t.Fatal("Commit: no Welcome for the joiners")
	}
	if s.externalTree != (len(cr.GetRatchetTree()) > 0) {
		h.t.Fatalf("Commit: external_tree %v but ratchet_tree of %d bytes", s.externalTree, len(cr.GetRatchetTree()))
	}
	pr, err := c.c.HandlePendingCommit(ctx(h.t), &pb.HandlePendingCommitRequest{StateId: c.state})
	h.ok(err, "HandlePendingCommit by "+committer)
	c.state = pr.GetStateId()
	want := pr.GetEpochAuthenticator()
	for _, m := range s.members {
		ac := h.a(m)
		r, err := ac.c.HandleCommit(ctx(h.t), &pb.HandleCommitRequest{StateId: ac.state, Proposal: s.byRef, Commit: cr.GetCommit()})
		h.ok(err, "HandleCommit by "+m)
		if !bytes.Equal(r.GetEpochAuthenticator(), want) {
			h.t.Fatalf("HandleCommit: %s disagrees on the epoch authenticator", m)
		}
		ac.state = r.GetStateId()
	}
	for _, j := range s.joiners {
		ac := h.a(j)
		req := &pb.JoinGroupRequest{TransactionId: ac.tx, Welcome: cr.GetWelcome(), EncryptHandshake: h.encrypt, Identity: []byte(j)}
		if s.externalTree {
			req.RatchetTree = cr.GetRatchetTree()
		}
		r, err := ac.c.JoinGroup(ctx(h.t), req)
		h.ok(err, "JoinGroup by "+j)
		if !bytes.Equal(r.GetEpochAuthenticator(), want) {
			h.t.Fatalf("JoinGroup: %s disagrees on the epoch authenticator", j)
		}
		ac.state = r.GetStateId()
	}
	h.group = append(append([]string{committer}, s.members...), s.joiners...)
	h.epoch++
	h.check("commit by " + committer)
}

// externalJoin has joiner join by external commit from actor's GroupInfo;
// actor and members handle the commit.
func (h *harness) externalJoin(from, joiner string, members []string, externalTree, removePrior bool, psks ...[]byte) {
	h.t.Helper()
	f := h.a(from)
	gi, err := f.c.GroupInfo(ctx(h.t), &pb.GroupInfoRequest{StateId: f.state, ExternalTree: externalTree})
	h.ok(err, "GroupInfo by "+from)
	if externalTree != (len(gi.GetRatchetTree()) > 0) {
		h.t.Fatalf("GroupInfo: external_tree %v but ratchet_tree of %d bytes", externalTree, len(gi.GetRatchetTree()))
	}
	j := h.a(joiner)
	req := &pb.ExternalJoinRequest{GroupInfo: gi.GetGroupInfo(), RatchetTree: gi.GetRatchetTree(), EncryptHandshake: h.encrypt, Identity: []byte(joiner), RemovePrior: removePrior}
	for _, id := range psks {
		req.Psks = append(req.Psks, &pb.PreSharedKey{PskId: id, PskSecret: h.psks[string(id)]})
	}
	r, err := j.c.ExternalJoin(ctx(h.t), req)
	h.ok(err, "ExternalJoin by "+joiner)
	j.state = r.GetStateId()
	for _, m := range append([]string{from}, members...) {
		ac := h.a(m)
		hr, err := ac.c.HandleCommit(ctx(h.t), &pb.HandleCommitRequest{StateId: ac.state, Commit: r.GetCommit()})
		h.ok(err, "HandleCommit by "+m)
		if !bytes.Equal(hr.GetEpochAuthenticator(), r.GetEpochAuthenticator()) {
			h.t.Fatalf("external join: %s disagrees on the epoch authenticator", m)
		}
		ac.state = hr.GetStateId()
	}
	h.group = append(append([]string{from}, members...), joiner)
	h.epoch++
	h.check("external join of " + joiner)
}

// message has from protect a message that each of to unprotects.
func (h *harness) protect(from, text string) []byte {
	h.t.Helper()
	ac := h.a(from)
	r, err := ac.c.Protect(ctx(h.t), &pb.ProtectRequest{StateId: ac.state, AuthenticatedData: []byte("aad " + text), Plaintext: []byte(text)})
	h.ok(err, "Protect by "+from)
	return r.GetCiphertext()
}

func (h *harness) unprotect(to string, ct []byte, text string) {
	h.t.Helper()
	ac := h.a(to)
	r, err := ac.c.Unprotect(ctx(h.t), &pb.UnprotectRequest{StateId: ac.state, Ciphertext: ct})
	h.ok(err, "Unprotect by "+to)
	if string(r.GetPlaintext()) != text || string(r.GetAuthenticatedData()) != "aad "+text {
		h.t.Fatalf("Unprotect by %s: got %q / %q, want %q", to, r.GetPlaintext(), r.GetAuthenticatedData(), text)
	}
}

func add(kp []byte) *pb.ProposalDescription {
	return &pb.ProposalDescription{ProposalType: []byte("add"), KeyPackage: kp}
}

func remove(name string) *pb.ProposalDescription {
	return &pb.ProposalDescription{ProposalType: []byte("remove"), RemovedId: []byte(name)}
}

func extPSK(id []byte) *pb.ProposalDescription {
	return &pb.ProposalDescription{ProposalType: []byte("externalPSK"), PskId: id}
}

func resPSK(epoch uint64) *pb.ProposalDescription {
	return &pb.ProposalDescription{ProposalType: []byte("resumptionPSK"), EpochId: epoch}
}

func gce(exts []*pb.Extension) *pb.ProposalDescription {
	return &pb.ProposalDescription{ProposalType: []byte("groupContextExtensions"), Extensions: exts}
}

// someExtensions are an empty required_capabilities and an empty
// external_senders.
func someExtensions() []*pb.Extension {
	return []*pb.Extension{
		{ExtensionType: uint32(mls.ExtensionRequiredCapabilities), ExtensionData: []byte{0, 0, 0}},
		{ExtensionType: uint32(mls.ExtensionExternalSenders), ExtensionData: []byte{0}},
	}
}
