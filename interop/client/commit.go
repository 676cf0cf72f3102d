package client

import (
	"bytes"
	"context"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	pb "github.com/parley-chat/parley/interop/proto"
	"github.com/parley-chat/parley/mls"
)

// propose runs one Propose method and remembers the message as this
// member's own.
func (s *Server) propose(id uint32, op string, f func(st *state) ([]byte, error)) (*pb.ProposalResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(id)
	if err != nil {
		return nil, err
	}
	msg, err := f(st)
	if err != nil {
		return nil, errorf(op, err)
	}
	// The proposal just sent is the last one cached.
	cached := st.g.CachedProposals()
	st.own[string(msg)] = cached[len(cached)-1].Ref
	return &pb.ProposalResponse{Proposal: msg}, nil
}

// AddProposal implements the AddProposal RPC.
func (s *Server) AddProposal(_ context.Context, req *pb.AddProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "add proposal", func(st *state) ([]byte, error) {
		return st.g.ProposeAdd(req.GetKeyPackage())
	})
}

// UpdateProposal implements the UpdateProposal RPC.
func (s *Server) UpdateProposal(_ context.Context, req *pb.UpdateProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "update proposal", func(st *state) ([]byte, error) {
		return st.g.ProposeUpdate()
	})
}

// RemoveProposal implements the RemoveProposal RPC; removed_id is the
// identity of the member to remove.
func (s *Server) RemoveProposal(_ context.Context, req *pb.RemoveProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "remove proposal", func(st *state) ([]byte, error) {
		leaf, err := leafOf(st.g.Members(), req.GetRemovedId())
		if err != nil {
			return nil, err
		}
		return st.g.ProposeRemove(leaf)
	})
}

// ExternalPSKProposal implements the ExternalPSKProposal RPC; the PSK must
// have been stored with StorePSK.
func (s *Server) ExternalPSKProposal(_ context.Context, req *pb.ExternalPSKProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "external PSK proposal", func(st *state) ([]byte, error) {
		return st.g.ProposeExternalPSK(req.GetPskId())
	})
}

// ResumptionPSKProposal implements the ResumptionPSKProposal RPC.
func (s *Server) ResumptionPSKProposal(_ context.Context, req *pb.ResumptionPSKProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "resumption PSK proposal", func(st *state) ([]byte, error) {
		return st.g.ProposeResumptionPSK(req.GetEpochId())
	})
}

// GroupContextExtensionsProposal implements the
// GroupContextExtensionsProposal RPC.
func (s *Server) GroupContextExtensionsProposal(_ context.Context, req *pb.GroupContextExtensionsProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "group context extensions proposal", func(st *state) ([]byte, error) {
		exts, err := extensions(req.GetExtensions())
		if err != nil {
			return nil, err
		}
		return st.g.ProposeGroupContextExtensions(exts)
	})
}

// ReInitProposal implements the ReInitProposal RPC.
func (s *Server) ReInitProposal(_ context.Context, req *pb.ReInitProposalRequest) (*pb.ProposalResponse, error) {
	return s.propose(req.GetStateId(), "reinit proposal", func(st *state) ([]byte, error) {
		cs, err := suite(req.GetCipherSuite())
		if err != nil {
			return nil, err
		}
		exts, err := extensions(req.GetExtensions())
		if err != nil {
			return nil, err
		}
		return st.g.ProposeReInit(mls.ReInitParams{GroupID: bytes.Clone(req.GetGroupId()), CipherSuite: cs, Extensions: exts})
	})
}

// receiveProposals processes proposal messages of the current epoch and
// returns their ProposalRefs, in order. This member's own are cached
// already and not processed again. Each must be a proposal.
func receiveProposals(st *state, msgs [][]byte, op string) ([][]byte, error) {
	refs := make([][]byte, 0, len(msgs))
	for i, m := range msgs {
		if ref, ok := st.own[string(m)]; ok {
			refs = append(refs, ref)
			continue
		}
		p, err := st.g.Process(m)
		if err != nil {
			return nil, errorf(op, err)
		}
		if p.Kind != mls.KindProposal {
			return nil, status.Errorf(codes.InvalidArgument, "%s: by-reference message %d is not a proposal (kind %d)", op, i, p.Kind)
		}
		refs = append(refs, p.Proposal.Ref)
	}
	return refs, nil
}

// commitOptions turns the harness's by-value proposal descriptions into
// CommitOptions.
func commitOptions(st *state, descs []*pb.ProposalDescription) (mls.CommitOptions, error) {
	var opts mls.CommitOptions
	for i, d := range descs {
		switch t := string(d.GetProposalType()); t {
		case "add":
			opts.Add = append(opts.Add, d.GetKeyPackage())
		case "remove":
			leaf, err := leafOf(st.g.Members(), d.GetRemovedId())
			if err != nil {
				return opts, err
			}
			opts.Remove = append(opts.Remove, leaf)
		case "externalPSK":
			opts.ExternalPSKs = append(opts.ExternalPSKs, d.GetPskId())
		case "resumptionPSK":
			opts.ResumptionPSKs = append(opts.ResumptionPSKs, d.GetEpochId())
		case "groupContextExtensions":
			if opts.SetExtensions {
				return opts, errf("by_value %d: a second groupContextExtensions proposal (RFC 9420 §12.2)", i)
			}
			exts, err := extensions(d.GetExtensions())
			if err != nil {
				return opts, err
			}
			opts.GroupContextExtensions, opts.SetExtensions = exts, true
		case "reinit":
			cs, err := suite(d.GetCipherSuite())
			if err != nil {
				return opts, err
			}
			exts, err := extensions(d.GetExtensions())
			if err != nil {
				return opts, err
			}
			opts.ReInit = &mls.ReInitParams{GroupID: bytes.Clone(d.GetGroupId()), CipherSuite: cs, Extensions: exts}
		default:
			return opts, errf("by_value %d: unknown proposal type %q", i, t)
		}
	}
	return opts, nil
}

// commit creates a Commit of the by-reference proposals and the by-value
// descriptions and keeps it pending.
func (s *Server) commit(req *pb.CommitRequest, op string) (*pb.CommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, err
	}
	refs, err := receiveProposals(st, req.GetByReference(), op)
	if err != nil {
		return nil, err
	}
	opts, err := commitOptions(st, req.GetByValue())
	if err != nil {
		return nil, err
	}
	opts.References = refs
	opts.ForcePath = req.GetForcePath()
	opts.InlineRatchetTree = !req.GetExternalTree()
	if st.pending != nil {
		st.g.DiscardPendingCommit(st.pending)
		st.pending = nil
	}
	pc, err := st.g.Commit(opts)
	if err != nil {
		return nil, errorf(op, err)
	}
	resp := &pb.CommitResponse{Commit: pc.Message, Welcome: pc.Welcome}
	if req.GetExternalTree() {
		if resp.RatchetTree, err = pc.RatchetTree(); err != nil {
			st.g.DiscardPendingCommit(pc)
			return nil, errorf(op, err)
		}
	}
	st.pending = pc
	return resp, nil
}

// Commit implements the Commit RPC: a Commit of exactly the by_reference
// proposals (by reference) and the by_value ones. by_reference proposals
// from others are processed first; this member's own are cached already.
func (s *Server) Commit(_ context.Context, req *pb.CommitRequest) (*pb.CommitResponse, error) {
	return s.commit(req, "commit")
}

// HandlePendingCommit implements the HandlePendingCommit RPC: the pending
// Commit is merged.
func (s *Server) HandlePendingCommit(_ context.Context, req *pb.HandlePendingCommitRequest) (*pb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, err := s.mergePending(req.GetStateId(), "handle pending commit")
	if err != nil {
		return nil, err
	}
	return &pb.HandleCommitResponse{StateId: req.GetStateId(), EpochAuthenticator: st.g.EpochAuthenticator()}, nil
}

func (s *Server) mergePending(id uint32, op string) (*state, error) {
	st, err := s.state(id)
	if err != nil {
		return nil, err
	}
	if st.pending == nil {
		return nil, status.Errorf(codes.FailedPrecondition, "%s: no pending commit", op)
	}
	pc := st.pending
	st.pending = nil
	if err := st.g.MergePendingCommit(pc); err != nil {
		return nil, errorf(op, err)
	}
	return st, nil
}

// handleCommit processes the proposals and the Commit and merges it.
func (s *Server) handleCommit(req *pb.HandleCommitRequest, op string) (*state, *mls.StagedCommit, error) {
	st, err := s.state(req.GetStateId())
	if err != nil {
		return nil, nil, err
	}
	if _, err := receiveProposals(st, req.GetProposal(), op); err != nil {
		return nil, nil, err
	}
	p, err := st.g.Process(req.GetCommit())
	if err != nil {
		return nil, nil, errorf(op, err)
	}
	if p.Kind != mls.KindCommit {
		return nil, nil, status.Errorf(codes.InvalidArgument, "%s: message is not a commit (kind %d)", op, p.Kind)
	}
	if err := st.g.MergeStagedCommit(p.Commit); err != nil {
		return nil, nil, errorf(op, err)
	}
	if st.pending != nil {
		// A commit of another member won: ours is void.
		st.g.DiscardPendingCommit(st.pending)
		st.pending = nil
	}
	return st, p.Commit, nil
}

// HandleCommit implements the HandleCommit RPC. A member removed by the
// commit gets an empty epoch authenticator: it has no new epoch.
func (s *Server) HandleCommit(_ context.Context, req *pb.HandleCommitRequest) (*pb.HandleCommitResponse, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	st, sc, err := s.handleCommit(req, "handle commit")
	if err != nil {
		return nil, err
	}
	resp := &pb.HandleCommitResponse{StateId: req.GetStateId()}
	if !sc.SelfRemoved {
		resp.EpochAuthenticator = st.g.EpochAuthenticator()
	}
	return resp, nil
}
