// Package client implements the MLSClient gRPC service of the MLS working
// group's interop harness (../proto/mls_client.proto) on top of Parley's
// public mls package.
//
// Every group state, pending join (transaction), ReInit in progress and
// external signer is named by a uint32 id drawn from one counter, so that
// StorePSK's state_or_transaction_id is never ambiguous. Ids start at 1.
// A state keeps its id across epochs: HandleCommit and HandlePendingCommit
// return the id they were given.
//
// Members use basic credentials whose identity is the harness's identity
// bytes; a member to remove is named by that identity (removed_id).
// Proposals and commits are sent as PublicMessage unless the state was
// created or joined with encrypt_handshake, which maps to
// mls.Config.EncryptHandshake.
//
// The Server serializes all calls with one mutex: the harness drives a
// client one call at a time, and an mls.Group is not safe for concurrent
// use.
package client

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/parley-chat/parley/interop/proto"
	"github.com/parley-chat/parley/mls"
)

// Name is what the Name RPC reports.
const Name = "Parley (Go)"

// Suites lists the cipher suites the client offers: the seven of RFC 9420
// and the post-quantum suites TBD1-TBD11 at Parley's private-use codepoints.
var Suites = []mls.CipherSuite{
	mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519,
	mls.MLS128DHKEMP256AES128GCMSHA256P256,
	mls.MLS128DHKEMX25519ChaCha20Poly1305SHA256Ed25519,
	mls.MLS256DHKEMX448AES256GCMSHA512Ed448,
	mls.MLS256DHKEMP521AES256GCMSHA512P521,
	mls.MLS256DHKEMX448ChaCha20Poly1305SHA512Ed448,
	mls.MLS256DHKEMP384AES256GCMSHA384P384,
	mls.MLS128MLKEM768X25519AES128GCMSHA256Ed25519,
	mls.MLS128MLKEM768X25519AES256GCMSHA384Ed25519,
	mls.MLS128MLKEM768P256AES128GCMSHA256P256,
	mls.MLS128MLKEM768P256AES256GCMSHA384P256,
	mls.MLS192MLKEM1024P384AES256GCMSHA384P384,
	mls.MLS128MLKEM768AES256GCMSHA384Ed25519,
	mls.MLS128MLKEM768AES256GCMSHA384P256,
	mls.MLS192MLKEM1024AES256GCMSHA384P384,
	mls.MLS128MLKEM768X25519ChaCha20Poly1305SHA384MLDSA44,
	mls.MLS192MLKEM768AES256GCMSHA384MLDSA65,
	mls.MLS256MLKEM1024AES256GCMSHA384MLDSA87,
}

// Server implements pb.MLSClientServer. The zero value is not usable; call
// New.
type Server struct {
	pb.UnimplementedMLSClientServer

	mu      sync.Mutex
	next    uint32
	states  map[uint32]*state
	txs     map[uint32]*transaction
	reinits map[uint32]*reinit
	signers map[uint32]*externalSigner
}

// New returns a Server with no state.
func New() *Server {
	return &Server{
		states:  map[uint32]*state{},
		txs:     map[uint32]*transaction{},
		reinits: map[uint32]*reinit{},
		signers: map[uint32]*externalSigner{},
	}
}

// state is one member's view of one group.
type state struct {
	g        *mls.Group
	cfg      *mls.Config
	psks     *mls.PSKs
	signer   *mls.Signer
	identity []byte
	// pending is the Commit created by Commit or ReInitCommit, waiting for
	// HandlePending(ReInit)Commit.
	pending *mls.PendingCommit
	// own maps the proposal messages this member sent in the current
	// epoch to their ProposalRefs: they are cached already and, as
	// PrivateMessages, could not be decrypted by their sender.
	own      map[string][]byte
	ownEpoch uint64
}

// resetOwn forgets the own proposals of past epochs.
func (st *state) resetOwn() {
	st.own, st.ownEpoch = map[string][]byte{}, st.g.Epoch()
}

// transaction is a KeyPackage waiting for its Welcome.
type transaction struct {
	bundle   *mls.KeyPackageBundle
	identity []byte
	psks     *mls.PSKs
}

// reinit is a group ended by a committed ReInit, with the KeyPackage this
// member offers for the new group.
type reinit struct {
	old      *state
	bundle   *mls.KeyPackageBundle
	signer   *mls.Signer
	identity []byte
}

// externalSigner is a party outside the group listed in external_senders.
type externalSigner struct {
	signer   *mls.Signer
	identity []byte
	// sender is the encoded ExternalSender (RFC 9420 §12.1.8.1).
	sender []byte
}

func (s *Server) newID() uint32 {
	s.next++
	return s.next
}

func (s *Server) state(id uint32) (*state, error) {
	st, ok := s.states[id]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no state %d", id)
	}
	if st.own == nil || st.ownEpoch != st.g.Epoch() {
		st.resetOwn()
	}
	return st, nil
}

func (s *Server) addState(st *state) uint32 {
	id := s.newID()
	st.resetOwn()
	s.states[id] = st
	return id
}

// suite checks a cipher suite from a request.
func suite(v uint32) (mls.CipherSuite, error) {
	for _, cs := range Suites {
		if uint32(cs) == v {
			return cs, nil
		}
	}
	return 0, status.Errorf(codes.InvalidArgument, "unsupported cipher suite %#04x", v)
}

// capabilities announces every suite the client supports, so that a ReInit
// may move the group to any of them.
func capabilities() *mls.Capabilities {
	return &mls.Capabilities{CipherSuites: Suites, Credentials: []mls.CredentialType{mls.CredentialBasic}}
}

// newConfig returns the Config of a new state. Leaf lifetimes are not
// bounded: the interop harness's other implementations make KeyPackages
// valid from 0 to 2^64-1 seconds, as the official test vectors do, and
// the bound is an application's choice (RFC 9420 §7.2), not the
// harness's.
func newConfig(encrypt bool, psks *mls.PSKs) *mls.Config {
	return &mls.Config{EncryptHandshake: encrypt, PSKs: psks, MaxLeafLifetime: -1}
}

func newPSKs() *mls.PSKs { return &mls.PSKs{External: map[string][]byte{}} }

// clonePSKs copies the external PSKs of p into a new store.
func clonePSKs(p *mls.PSKs) *mls.PSKs {
	q := newPSKs()
	if p != nil {
		for k, v := range p.External {
			q.External[k] = v
		}
	}
	return q
}

// errorf maps an mls error to a gRPC status: malformed or invalid input is
// InvalidArgument, a missing PSK or a group that moved on FailedPrecondition,
// anything else Internal. The message is the mls error's.
func errorf(op string, err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok {
		return err
	}
	code := codes.Internal
	switch {
	case errors.Is(err, mls.ErrMalformed), errors.Is(err, mls.ErrInvalidCommit),
		errors.Is(err, mls.ErrInvalidProposal), errors.Is(err, mls.ErrInvalidKeyPackage),
		errors.Is(err, mls.ErrInvalidLeafNode), errors.Is(err, mls.ErrInvalidWelcome),
		errors.Is(err, mls.ErrCredentialRejected), errors.Is(err, mls.ErrWrongGroup),
		errors.Is(err, mls.ErrWrongEpoch), errors.Is(err, mls.ErrReplay),
		errors.Is(err, mls.ErrGenerationExpired), errors.Is(err, mls.ErrGenerationTooFar),
		errors.Is(err, mls.ErrNotMember), errors.Is(err, mls.ErrOwnCommit):
		code = codes.InvalidArgument
	case errors.Is(err, mls.ErrMissingPSK), errors.Is(err, mls.ErrStale), errors.Is(err, mls.ErrRemoved):
		code = codes.FailedPrecondition
	}
	return status.Errorf(code, "%s: %v", op, err)
}

// orNil returns nil for an empty slice: protobuf does not distinguish
// absent from empty bytes, the mls package does.
func orNil(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

func extensions(in []*pb.Extension) ([]mls.Extension, error) {
	out := make([]mls.Extension, 0, len(in))
	for _, e := range in {
		if e.GetExtensionType() > 0xffff {
			return nil, status.Errorf(codes.InvalidArgument, "extension type %d exceeds uint16", e.GetExtensionType())
		}
		out = append(out, mls.Extension{Type: uint16(e.GetExtensionType()), Data: bytes.Clone(e.GetExtensionData())})
	}
	return out, nil
}

// leafOf finds the member whose basic credential identity is id.
func leafOf(members []mls.Member, id []byte) (mls.LeafIndex, error) {
	for _, m := range members {
		if m.Credential.Type == mls.CredentialBasic && bytes.Equal(m.Credential.Identity, id) {
			return m.Leaf, nil
		}
	}
	return 0, status.Errorf(codes.InvalidArgument, "no member with identity %q", id)
}

// Name implements the Name RPC.
func (s *Server) Name(context.Context, *pb.NameRequest) (*pb.NameResponse, error) {
	return &pb.NameResponse{Name: Name}, nil
}

// SupportedCiphersuites implements the SupportedCiphersuites RPC.
func (s *Server) SupportedCiphersuites(context.Context, *pb.SupportedCiphersuitesRequest) (*pb.SupportedCiphersuitesResponse, error) {
	out := make([]uint32, len(Suites))
	for i, cs := range Suites {
		out[i] = uint32(cs)
	}
	return &pb.SupportedCiphersuitesResponse{Ciphersuites: out}, nil
}

// CreateGroup implements the CreateGroup RPC: a one-member group with a
// basic credential for identity and a fresh signature key.
func (s *Server) CreateGroup(_ context.Context, req *pb.CreateGroupRequest) (*pb.CreateGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := suite(req.GetCipherSuite())
	if err != nil {
		return nil, err
	}
	signer, err := mls.GenerateSigner(cs)
	if err != nil {
		return nil, errorf("create group", err)
	}
	psks := newPSKs()
	cfg := newConfig(req.GetEncryptHandshake(), psks)
	g, err := mls.CreateGroup(cfg, cs, req.GetGroupId(), signer, mls.BasicCredential(bytes.Clone(req.GetIdentity())), mls.CreateOptions{Capabilities: capabilities()})
	if err != nil {
		return nil, errorf("create group", err)
	}
	id := s.addState(&state{g: g, cfg: cfg, psks: psks, signer: signer, identity: bytes.Clone(req.GetIdentity())})
	return &pb.CreateGroupResponse{StateId: id}, nil
}

// newKeyPackage creates a KeyPackage with a fresh signer.
func newKeyPackage(cs mls.CipherSuite, identity []byte) (*mls.KeyPackageBundle, *mls.Signer, error) {
	signer, err := mls.GenerateSigner(cs)
	if err != nil {
		return nil, nil, err
	}
	b, err := mls.NewKeyPackage(nil, cs, signer, mls.BasicCredential(bytes.Clone(identity)), mls.KeyPackageOptions{Capabilities: capabilities()})
	if err != nil {
		return nil, nil, err
	}
	return b, signer, nil
}

// CreateKeyPackage implements the CreateKeyPackage RPC. The transaction it
// opens is consumed by JoinGroup (or HandleBranch).
func (s *Server) CreateKeyPackage(_ context.Context, req *pb.CreateKeyPackageRequest) (*pb.CreateKeyPackageResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cs, err := suite(req.GetCipherSuite())
	if err != nil {
		return nil, err
	}
	b, signer, err := newKeyPackage(cs, req.GetIdentity())
	if err != nil {
		return nil, errorf("create key package", err)
	}
	id := s.newID()
	s.txs[id] = &transaction{bundle: b, identity: bytes.Clone(req.GetIdentity()), psks: newPSKs()}
	return &pb.CreateKeyPackageResponse{
		TransactionId:  id,
		KeyPackage:     b.KeyPackage,
		InitPriv:       b.InitPrivateKey,
		EncryptionPriv: b.EncryptionPrivateKey,
		SignaturePriv:  signer.PrivateKey(),
	}, nil
}

// JoinGroup implements the JoinGroup RPC: join from a Welcome with the
// transaction's KeyPackage, with the ratchet tree given out of band when
// the Welcome lacks it.
func (s *Server) JoinGroup(_ context.Context, req *pb.JoinGroupRequest) (*pb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	tx, ok := s.txs[req.GetTransactionId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no transaction %d", req.GetTransactionId())
	}
	cfg := newConfig(req.GetEncryptHandshake(), tx.psks)
	g, err := mls.JoinFromWelcome(cfg, req.GetWelcome(), tx.bundle, mls.JoinOptions{RatchetTree: orNil(req.GetRatchetTree())})
	if err != nil {
		return nil, errorf("join group", err)
	}
	delete(s.txs, req.GetTransactionId()) // the init key is used once (RFC 9420 §16.8)
	id := s.addState(&state{g: g, cfg: cfg, psks: tx.psks, signer: tx.bundle.Signer, identity: tx.identity})
	return &pb.JoinGroupResponse{StateId: id, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// ExternalJoin implements the ExternalJoin RPC: an external commit from the
// GroupInfo, removing the member with the same identity when remove_prior is
// set (a resync), injecting the given external PSKs. The joiner's state is
// in the new epoch at once: the harness delivers the commit.
func (s *Server) ExternalJoin(_ context.Context, req *pb.ExternalJoinRequest) (*pb.ExternalJoinResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "external join"
	psks := newPSKs()
	opts := mls.ExternalJoinOptions{RatchetTree: orNil(req.GetRatchetTree()), Capabilities: capabilities()}
	for _, p := range req.GetPsks() {
		psks.External[string(p.GetPskId())] = bytes.Clone(p.GetPskSecret())
		opts.ExternalPSKs = append(opts.ExternalPSKs, bytes.Clone(p.GetPskId()))
	}
	cfg := newConfig(req.GetEncryptHandshake(), psks)
	pg, err := mls.NewPublicGroup(cfg, req.GetGroupInfo(), opts.RatchetTree)
	if err != nil {
		return nil, errorf(op, err)
	}
	if req.GetRemovePrior() {
		leaf, err := leafOf(pg.Members(), req.GetIdentity())
		if err != nil {
			return nil, err
		}
		opts.ResyncLeaf = &leaf
	}
	signer, err := mls.GenerateSigner(pg.CipherSuite())
	if err != nil {
		return nil, errorf(op, err)
	}
	g, pc, err := mls.JoinExternal(cfg, req.GetGroupInfo(), signer, mls.BasicCredential(bytes.Clone(req.GetIdentity())), opts)
	if err != nil {
		return nil, errorf(op, err)
	}
	if err := g.MergePendingCommit(pc); err != nil {
		return nil, errorf(op, err)
	}
	id := s.addState(&state{g: g, cfg: cfg, psks: psks, signer: signer, identity: bytes.Clone(req.GetIdentity())})
	return &pb.ExternalJoinResponse{StateId: id, Commit: pc.Message, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// GroupInfo implements the GroupInfo RPC: a signed GroupInfo with
// external_pub, carrying the ratchet tree unless external_tree is set, in
// which case the tree is returned beside it.
func (s *Server) GroupInfo(_ context.Context, req *pb.GroupInfoRequest) (*pb.GroupInfoResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	gi, err := st.g.GroupInfo(mls.GroupInfoOptions{InlineRatchetTree: !req.GetExternalTree(), ExternalPub: true})
	if err != nil {
		return nil, errorf("group info", err)
	}
	resp := &pb.GroupInfoResponse{GroupInfo: gi}
	if req.GetExternalTree() {
		if resp.RatchetTree, err = st.g.RatchetTree(); err != nil {
			return nil, errorf("group info", err)
		}
	}
	return resp, nil
}

// StateAuth implements the StateAuth RPC: the epoch authenticator.
func (s *Server) StateAuth(_ context.Context, req *pb.StateAuthRequest) (*pb.StateAuthResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	return &pb.StateAuthResponse{StateAuthSecret: st.g.EpochAuthenticator()}, nil
}

// Export implements the Export RPC: the MLS exporter of the current epoch.
func (s *Server) Export(_ context.Context, req *pb.ExportRequest) (*pb.ExportResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	if req.GetKeyLength() > 0xffff {
		return nil, status.Errorf(codes.InvalidArgument, "key_length %d exceeds uint16", req.GetKeyLength())
	}
	out, err := st.g.Export(req.GetLabel(), req.GetContext(), int(req.GetKeyLength()))
	if err != nil {
		return nil, errorf("export", err)
	}
	return &pb.ExportResponse{ExportedSecret: out}, nil
}

// Protect implements the Protect RPC: an application message.
func (s *Server) Protect(_ context.Context, req *pb.ProtectRequest) (*pb.ProtectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	ct, err := st.g.Encrypt(req.GetPlaintext(), req.GetAuthenticatedData())
	if err != nil {
		return nil, errorf("protect", err)
	}
	return &pb.ProtectResponse{Ciphertext: ct}, nil
}

// Unprotect implements the Unprotect RPC. Only application messages are
// accepted.
func (s *Server) Unprotect(_ context.Context, req *pb.UnprotectRequest) (*pb.UnprotectResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	p, err := st.g.Process(req.GetCiphertext())
	if err != nil {
		return nil, errorf("unprotect", err)
	}
	if p.Kind != mls.KindApplication {
		return nil, status.Errorf(codes.InvalidArgument, "unprotect: message is not an application message (kind %d)", p.Kind)
	}
	return &pb.UnprotectResponse{AuthenticatedData: p.AuthenticatedData, Plaintext: p.ApplicationData}, nil
}

// StorePSK implements the StorePSK RPC for a state or a pending
// transaction.
func (s *Server) StorePSK(_ context.Context, req *pb.StorePSKRequest) (*pb.StorePSKResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.GetStateOrTransactionId()
	var psks *mls.PSKs
	if st, ok := s.states[id]; ok {
		psks = st.psks
	} else if tx, ok := s.txs[id]; ok {
		psks = tx.psks
	} else {
		return nil, status.Errorf(codes.NotFound, "no state or transaction %d", id)
	}
	if len(req.GetPskId()) == 0 {
		return nil, status.Error(codes.InvalidArgument, "empty psk_id")
	}
	psks.External[string(req.GetPskId())] = bytes.Clone(req.GetPskSecret())
	return &pb.StorePSKResponse{}, nil
}

// Free implements the Free RPC: it forgets the state (or transaction,
// ReInit or signer) with the given id.
func (s *Server) Free(_ context.Context, req *pb.FreeRequest) (*pb.FreeResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id := req.GetStateId()
	delete(s.states, id)
	delete(s.txs, id)
	delete(s.reinits, id)
	delete(s.signers, id)
	return &pb.FreeResponse{}, nil
}

// errf formats an InvalidArgument status.
func errf(format string, args ...any) error {
	return status.Error(codes.InvalidArgument, fmt.Sprintf(format, args...))
}
