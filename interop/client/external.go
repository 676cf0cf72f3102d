package client

import (
	"bytes"
	"context"
	"slices"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/parley-chat/parley/interop/proto"
	"github.com/parley-chat/parley/mls"
)

// senderIndex finds the external sender whose encoding is sender in the
// group's external_senders.
func senderIndex(senders []mls.ExternalSender, sender []byte) (uint32, error) {
	for i, es := range senders {
		b, err := es.MarshalBinary()
		if err != nil {
			return 0, errorf("external senders", err)
		}
		if bytes.Equal(b, sender) {
			return uint32(i), nil
		}
	}
	return 0, errf("the signer is not in the group's external_senders")
}

// CreateExternalSigner implements the CreateExternalSigner RPC: a signature
// key pair and basic credential for a party outside the group, returned as
// an encoded ExternalSender (RFC 9420 §12.1.8.1).
func (s *Server) CreateExternalSigner(_ context.Context, req *pb.CreateExternalSignerRequest) (*pb.CreateExternalSignerResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "create external signer"
	cs, err := suite(req.GetCipherSuite())
	if err != nil {
		return nil, err
	}
	signer, err := mls.GenerateSigner(cs)
	if err != nil {
		return nil, errorf(op, err)
	}
	id := bytes.Clone(req.GetIdentity())
	es, err := mls.ExternalSender{SignatureKey: signer.PublicKey(), Credential: mls.BasicCredential(id)}.MarshalBinary()
	if err != nil {
		return nil, errorf(op, err)
	}
	sid := s.newID()
	s.signers[sid] = &externalSigner{signer: signer, identity: id, sender: es}
	return &pb.CreateExternalSignerResponse{SignerId: sid, ExternalSender: es}, nil
}

// AddExternalSigner implements the AddExternalSigner RPC: a
// GroupContextExtensions proposal that keeps the group's extensions and
// appends external_sender to external_senders.
func (s *Server) AddExternalSigner(_ context.Context, req *pb.AddExternalSignerRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "add external signer", func(st *state) ([]byte, error) {
		var es mls.ExternalSender
		if err := es.UnmarshalBinary(req.GetExternalSender()); err != nil {
			return nil, err
		}
		senders := append(slices.Clone(st.g.ExternalSenders()), es)
		exts := slices.Clone(st.g.Extensions())
		i := slices.IndexFunc(exts, func(e mls.Extension) bool { return e.Type == mls.ExtensionExternalSenders })
		if i < 0 {
			exts = append(exts, mls.ExternalSendersExtension(senders))
		} else {
			exts[i] = mls.ExternalSendersExtension(senders)
		}
		return st.g.ProposeGroupContextExtensions(exts)
	})
}

// ExternalSignerProposal implements the ExternalSignerProposal RPC: a
// proposal signed by an external sender of the group described by the
// GroupInfo (and ratchet tree), which is validated first. The signer's index
// in external_senders is looked up by its encoding (the harness leaves
// signer_index unset). A ReInit is for the request's group id, suite and
// extensions; a resumption PSK is of the group's own epoch epoch_id.
func (s *Server) ExternalSignerProposal(_ context.Context, req *pb.ExternalSignerProposalRequest) (*pb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "external signer proposal"
	es, ok := s.signers[req.GetSignerId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no external signer %d", req.GetSignerId())
	}
	pg, err := mls.NewPublicGroup(nil, req.GetGroupInfo(), orNil(req.GetRatchetTree()))
	if err != nil {
		return nil, errorf(op, err)
	}
	cs := pg.CipherSuite()
	if cs != es.signer.CipherSuite() {
		return nil, errf("%s: signer is for suite %#04x, the group uses %#04x", op, uint16(es.signer.CipherSuite()), uint16(cs))
	}
	index, err := senderIndex(pg.ExternalSenders(), es.sender)
	if err != nil {
		return nil, err
	}
	d := req.GetDescription()
	var p mls.ExternalProposal
	switch t := string(d.GetProposalType()); t {
	case "add":
		p.Add = d.GetKeyPackage()
	case "remove":
		leaf, err := leafOf(pg.Members(), d.GetRemovedId())
		if err != nil {
			return nil, err
		}
		p.Remove = &leaf
	case "externalPSK":
		p.ExternalPSK = d.GetPskId()
	case "resumptionPSK":
		p.ResumptionPSK = &mls.ResumptionPSKID{GroupID: pg.GroupID(), Epoch: d.GetEpochId()}
	case "groupContextExtensions":
		exts, err := extensions(d.GetExtensions())
		if err != nil {
			return nil, err
		}
		p.GroupContextExtensions, p.SetExtensions = exts, true
	case "reinit":
		rcs, err := suite(d.GetCipherSuite())
		if err != nil {
			return nil, err
		}
		exts, err := extensions(d.GetExtensions())
		if err != nil {
			return nil, err
		}
		p.ReInit = &mls.ReInitParams{GroupID: bytes.Clone(d.GetGroupId()), CipherSuite: rcs, Extensions: exts}
	default:
		return nil, errf("%s: unknown proposal type %q", op, t)
	}
	msg, err := mls.NewExternalProposal(nil, cs, pg.GroupID(), pg.Epoch(), es.signer, index, p)
	if err != nil {
		return nil, errorf(op, err)
	}
	return &pb.ProposalResponse{Proposal: msg}, nil
}

// NewMemberAddProposal implements the NewMemberAddProposal RPC: a fresh
// KeyPackage in the group's suite and its self-signed Add (sender
// new_member_proposal, RFC 9420 §12.1.8). The transaction waits for the
// Welcome (JoinGroup).
func (s *Server) NewMemberAddProposal(_ context.Context, req *pb.NewMemberAddProposalRequest) (*pb.NewMemberAddProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "new member add proposal"
	// The GroupInfo, validated, gives the suite of the KeyPackage; it
	// carries the ratchet tree (the request has no other).
	pg, err := mls.NewPublicGroup(nil, req.GetGroupInfo(), nil)
	if err != nil {
		return nil, errorf(op, err)
	}
	b, signer, err := newKeyPackage(pg.CipherSuite(), req.GetIdentity())
	if err != nil {
		return nil, errorf(op, err)
	}
	msg, err := mls.NewMemberAddProposal(req.GetGroupInfo(), b)
	if err != nil {
		return nil, errorf(op, err)
	}
	id := s.newID()
	s.txs[id] = &transaction{bundle: b, identity: bytes.Clone(req.GetIdentity()), psks: newPSKs()}
	return &pb.NewMemberAddProposalResponse{
		TransactionId:  id,
		Proposal:       msg,
		InitPriv:       b.InitPrivateKey,
		EncryptionPriv: b.EncryptionPrivateKey,
		SignaturePriv:  signer.PrivateKey(),
	}, nil
}
