package client

import (
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/parley-chat/parley/interop/proto"
	"github.com/parley-chat/parley/mls"
)

// ReInitCommit implements the ReInitCommit RPC: a Commit of the ReInit
// proposal in by_reference, whoever proposed it (this member, another
// member or an external sender). The proposal-list rules of RFC 9420 §12.2
// refuse anything beside it.
func (s *Server) ReInitCommit(_ context.Context, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	return s.commit(req, "reinit commit")
}

// startReInit records a group ended by a ReInit and creates this member's
// KeyPackage for the new group.
func (s *Server) startReInit(st *state, op string) (*pb.HandleReInitCommitResponse, error) {
	ri := st.g.ReInit()
	if ri == nil {
		return nil, status.Errorf(codes.InvalidArgument, "%s: the commit is not a ReInit", op)
	}
	b, signer, err := newKeyPackage(ri.CipherSuite, st.identity)
	if err != nil {
		return nil, errorf(op, err)
	}
	id := s.newID()
	s.reinits[id] = &reinit{old: st, bundle: b, signer: signer, identity: st.identity}
	return &pb.HandleReInitCommitResponse{ReinitId: id, KeyPackage: b.KeyPackage, EpochAuthenticator: st.g.EpochAuthenticator()}, nil
}

// HandlePendingReInitCommit implements the HandlePendingReInitCommit RPC:
// the committer merges its ReInit commit.
func (s *Server) HandlePendingReInitCommit(_ context.Context, req *pb.HandlePendingCommitRequest) (*pb.HandleReInitCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "handle pending reinit commit"
	st, err := s.mergePending(req.GetStateId(), op)
	if err != nil {
		return nil, err
	}
	return s.startReInit(st, op)
}

// HandleReInitCommit implements the HandleReInitCommit RPC: another member's
// ReInit commit is processed and merged.
func (s *Server) HandleReInitCommit(_ context.Context, req *pb.HandleCommitRequest) (*pb.HandleReInitCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "handle reinit commit"
	st, sc, err := s.handleCommit(req, op)
	if err != nil {
		return nil, err
	}
	if sc.ReInit == nil {
		return nil, status.Errorf(codes.InvalidArgument, "%s: the commit is not a ReInit", op)
	}
	return s.startReInit(st, op)
}

// ReInitWelcome implements the ReInitWelcome RPC: this member creates the
// new group (RFC 9420 §11.2) with the others' KeyPackages and is in its
// first epoch on return.
func (s *Server) ReInitWelcome(_ context.Context, req *pb.ReInitWelcomeRequest) (*pb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "reinit welcome"
	r, ok := s.reinits[req.GetReinitId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no reinit %d", req.GetReinitId())
	}
	psks := clonePSKs(r.old.psks)
	cfg := newConfig(r.old.cfg.EncryptHandshake, psks)
	ng, pc, err := r.old.g.ReInitGroup(cfg, r.signer, mls.BasicCredential(r.identity), req.GetKeyPackage(), mls.CommitOptions{ForcePath: req.GetForcePath(), InlineRatchetTree: !req.GetExternalTree()})
	if err != nil {
		return nil, errorf(op, err)
	}
	return s.finishSubgroup(ng, pc, cfg, psks, r.signer, r.identity, req.GetExternalTree(), op)
}

// finishSubgroup merges the first commit of a re-initialized or branched
// group and registers its state.
func (s *Server) finishSubgroup(ng *mls.Group, pc *mls.PendingCommit, cfg *mls.Config, psks *mls.PSKs, signer *mls.Signer, identity []byte, externalTree bool, op string) (*pb.CreateSubgroupResponse, error) {
	if err := ng.MergePendingCommit(pc); err != nil {
		return nil, errorf(op, err)
	}
	resp := &pb.CreateSubgroupResponse{Welcome: pc.Welcome, EpochAuthenticator: ng.EpochAuthenticator()}
	if externalTree {
		var err error
		if resp.RatchetTree, err = ng.RatchetTree(); err != nil {
			return nil, errorf(op, err)
		}
	}
	resp.StateId = s.addState(&state{g: ng, cfg: cfg, psks: psks, signer: signer, identity: identity})
	return resp, nil
}

// HandleReInitWelcome implements the HandleReInitWelcome RPC: join the new
// group with the KeyPackage made for it, checking the Welcome against the
// old group's ReInit (RFC 9420 §11.2).
func (s *Server) HandleReInitWelcome(_ context.Context, req *pb.HandleReInitWelcomeRequest) (*pb.JoinGroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "handle reinit welcome"
	r, ok := s.reinits[req.GetReinitId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no reinit %d", req.GetReinitId())
	}
	psks := clonePSKs(r.old.psks)
	cfg := newConfig(r.old.cfg.EncryptHandshake, psks)
	g, err := mls.JoinFromWelcome(cfg, req.GetWelcome(), r.bundle, mls.JoinOptions{
		RatchetTree: orNil(req.GetRatchetTree()),
		PSKs:        &mls.PSKs{External: psks.External, Groups: []*mls.Group{r.old.g}},
	})
	if err != nil {
		return nil, errorf(op, err)
	}
	delete(s.reinits, req.GetReinitId())
	id := s.addState(&state{g: g, cfg: cfg, psks: psks, signer: r.signer, identity: r.identity})
	return &pb.JoinGroupResponse{StateId: id, EpochAuthenticator: g.EpochAuthenticator()}, nil
}

// CreateBranch implements the CreateBranch RPC: a subgroup (RFC 9420 §11.3)
// with the given id and extensions, adding the KeyPackages, linked by a
// branch resumption PSK. This member is in the subgroup's first epoch on
// return; the old state stays usable.
func (s *Server) CreateBranch(_ context.Context, req *pb.CreateBranchRequest) (*pb.CreateSubgroupResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "create branch"
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	exts, err := extensions(req.GetExtensions())
	if err != nil {
		return nil, err
	}
	opts := mls.BranchOptions{
		Extensions: exts, SetExtensions: true,
		Commit: mls.CommitOptions{ForcePath: req.GetForcePath(), InlineRatchetTree: !req.GetExternalTree()},
	}
	psks := clonePSKs(st.psks)
	cfg := newConfig(st.cfg.EncryptHandshake, psks)
	ng, pc, err := st.g.Branch(cfg, req.GetGroupId(), req.GetKeyPackages(), opts)
	if err != nil {
		return nil, errorf(op, err)
	}
	return s.finishSubgroup(ng, pc, cfg, psks, st.signer, st.identity, req.GetExternalTree(), op)
}

// HandleBranch implements the HandleBranch RPC: join a subgroup of the
// state's group with the transaction's KeyPackage.
func (s *Server) HandleBranch(_ context.Context, req *pb.HandleBranchRequest) (*pb.HandleBranchResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	const op = "handle branch"
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	tx, ok := s.txs[req.GetTransactionId()]
	if !ok {
		return nil, status.Errorf(codes.NotFound, "no transaction %d", req.GetTransactionId())
	}
	psks := clonePSKs(st.psks)
	for k, v := range tx.psks.External {
		psks.External[k] = v
	}
	cfg := newConfig(st.cfg.EncryptHandshake, psks)
	g, err := mls.JoinFromWelcome(cfg, req.GetWelcome(), tx.bundle, mls.JoinOptions{
		RatchetTree: orNil(req.GetRatchetTree()),
		PSKs:        &mls.PSKs{External: psks.External, Groups: []*mls.Group{st.g}},
	})
	if err != nil {
		return nil, errorf(op, err)
	}
	delete(s.txs, req.GetTransactionId())
	id := s.addState(&state{g: g, cfg: cfg, psks: psks, signer: tx.bundle.Signer, identity: tx.identity})
	return &pb.HandleBranchResponse{StateId: id, EpochAuthenticator: g.EpochAuthenticator()}, nil
}
