package tree

import (
	"bytes"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ValidateOptions configures Validate.
type ValidateOptions struct {
	// GroupID is the group's group_id, the context of the signatures of
	// update and commit leaves (RFC 9420 §7.2 LeafNodeTBS).
	GroupID []byte

	// TreeHash, if non-nil, is the expected tree hash of the root
	// (GroupInfo.group_context.tree_hash, RFC 9420 §12.4.3.1).
	TreeHash []byte

	// RequiredExtensions, RequiredProposals and RequiredCredentials are the
	// group's required_capabilities (RFC 9420 §11.1); every member must
	// list them in its capabilities. Default extension and proposal types
	// (§7.2) count as supported without being listed.
	RequiredExtensions  []wire.ExtensionType
	RequiredProposals   []wire.ProposalType
	RequiredCredentials []wire.CredentialType

	// Now, if non-nil, enables the lifetime check: every key_package leaf
	// must have not_before <= Now() <= not_after. RFC 9420 §7.3 makes this
	// check RECOMMENDED but not required for leaves received in a ratchet
	// tree (they may have expired since they were added), so it is off by
	// default; a joiner that wants it passes its clock here.
	Now func() time.Time

	// MaxLifetime, if positive, bounds the total lifetime (not_after -
	// not_before) of every key_package leaf: RFC 9420 §7.2 has the
	// application define such a maximum and reject any LeafNode whose
	// lifetime is longer. Unlike the current-time check it holds for the
	// whole life of the leaf, so it is checked in every tree received.
	MaxLifetime time.Duration

	// Workers bounds the goroutines verifying leaf signatures; zero means
	// runtime.GOMAXPROCS(0).
	Workers int
}

// Validate performs the checks of the ratchet tree that RFC 9420
// §12.4.3.1 requires of a member joining via Welcome (and that a member
// may repeat after processing a Commit), in this order, reporting the
// first failure:
//
//  1. the tree has at least one member;
//  2. unmerged_leaves: each entry is a non-blank leaf below its parent,
//     listed by every non-blank node in between (CheckUnmergedLeaves);
//  3. for each leaf in index order (RFC 9420 §7.3): leaf_node_source is
//     key_package with a lifetime, or update or commit without one;
//     the lifetime holds at opts.Now(), if given, and is no longer
//     than opts.MaxLifetime, if given; the capabilities list
//     the required extensions, proposals and credential types, every
//     non-default extension of the leaf, every credential type used
//     by any member, the protocol version mls10 and the tree's cipher
//     suite (§7.2); no extension type appears twice (§13.4);
//  4. encryption keys are unique across all non-blank nodes and signature
//     keys across all leaves;
//  5. the root tree hash equals opts.TreeHash, if given;
//  6. every non-blank parent is parent-hash valid (VerifyParentHashes);
//  7. every leaf signature verifies with opts.GroupID and its leaf index.
//
// Signatures are checked by a pool of opts.Workers goroutines; the error
// reported is that of the lowest failing leaf index, so results do not
// depend on scheduling. The cost is linear in the number of nodes.
// Credential validation against an authentication service (§5.3.1) is the
// caller's.
func (t *Tree) Validate(opts ValidateOptions) error {
	if err := t.ready(); err != nil {
		return fmt.Errorf("tree: validate: %w", err)
	}
	if t.MemberCount() == 0 {
		return errors.New("tree: validate: tree has no members")
	}
	if err := t.CheckUnmergedLeaves(); err != nil {
		return err
	}
	if err := t.checkLeaves(opts); err != nil {
		return err
	}
	if err := t.checkUniqueKeys(); err != nil {
		return err
	}
	if opts.TreeHash != nil {
		h, err := t.TreeHash()
		if err != nil {
			return fmt.Errorf("tree: validate: %w", err)
		}
		if !bytes.Equal(h, opts.TreeHash) {
			return fmt.Errorf("tree: validate: tree hash %x does not match expected %x", h, opts.TreeHash)
		}
	}
	if err := t.VerifyParentHashes(); err != nil {
		return err
	}
	return t.verifySignatures(opts.GroupID, opts.Workers)
}

// defaultExtension reports whether e is one of the extension types every
// client supports without listing it (RFC 9420 §7.2).
func defaultExtension(e wire.ExtensionType) bool {
	return e >= wire.ExtensionApplicationID && e <= wire.ExtensionExternalSenders
}

// defaultProposal reports whether p is a proposal type every client
// supports without listing it (RFC 9420 §7.2).
func defaultProposal(p wire.ProposalType) bool {
	return p >= wire.ProposalTypeAdd && p <= wire.ProposalTypeGroupContextExtensions
}

// checkLeaves runs the per-leaf checks that need no signature.
func (t *Tree) checkLeaves(opts ValidateOptions) error {
	var used []wire.CredentialType
	for _, ln := range t.Members() {
		if !slices.Contains(used, ln.Credential.Type) {
			used = append(used, ln.Credential.Type)
		}
	}
	var now uint64
	if opts.Now != nil {
		if u := opts.Now().Unix(); u > 0 {
			now = uint64(u)
		}
	}
	for i, ln := range t.Members() {
		switch ln.Source {
		case wire.LeafNodeSourceKeyPackage:
			if ln.Lifetime == nil {
				return fmt.Errorf("tree: validate: leaf %d: leaf_node_source key_package without lifetime", i)
			}
			if opts.Now != nil && (now < ln.Lifetime.NotBefore || now > ln.Lifetime.NotAfter) {
				return fmt.Errorf("tree: validate: leaf %d: lifetime [%d, %d] does not contain the current time %d", i, ln.Lifetime.NotBefore, ln.Lifetime.NotAfter, now)
			}
			if opts.MaxLifetime > 0 && !LifetimeWithin(ln.Lifetime, opts.MaxLifetime) {
				return fmt.Errorf("tree: validate: leaf %d: lifetime [%d, %d] is longer than the maximum of %d seconds", i, ln.Lifetime.NotBefore, ln.Lifetime.NotAfter, uint64(opts.MaxLifetime/time.Second))
			}
		case wire.LeafNodeSourceUpdate, wire.LeafNodeSourceCommit:
			if ln.Lifetime != nil {
				return fmt.Errorf("tree: validate: leaf %d: leaf_node_source %d with a lifetime", i, ln.Source)
			}
		default:
			return fmt.Errorf("tree: validate: leaf %d: invalid leaf_node_source %d", i, ln.Source)
		}
		caps := &ln.Capabilities
		if !slices.Contains(caps.Versions, wire.ProtocolVersionMLS10) {
			return fmt.Errorf("tree: validate: leaf %d: capabilities do not list the protocol version mls10", i)
		}
		if !slices.Contains(caps.CipherSuites, t.suite.ID()) {
			return fmt.Errorf("tree: validate: leaf %d: capabilities do not list the cipher suite %#04x", i, uint16(t.suite.ID()))
		}
		for j := range ln.Extensions {
			for k := range j {
				if ln.Extensions[j].Type == ln.Extensions[k].Type {
					return fmt.Errorf("tree: validate: leaf %d: extension type %#04x appears twice", i, uint16(ln.Extensions[j].Type))
				}
			}
		}
		for _, e := range opts.RequiredExtensions {
			if !defaultExtension(e) && !slices.Contains(caps.Extensions, e) {
				return fmt.Errorf("tree: validate: leaf %d: required extension type %#04x not in capabilities", i, uint16(e))
			}
		}
		for _, p := range opts.RequiredProposals {
			if !defaultProposal(p) && !slices.Contains(caps.Proposals, p) {
				return fmt.Errorf("tree: validate: leaf %d: required proposal type %#04x not in capabilities", i, uint16(p))
			}
		}
		for _, c := range opts.RequiredCredentials {
			if !slices.Contains(caps.Credentials, c) {
				return fmt.Errorf("tree: validate: leaf %d: required credential type %v not in capabilities", i, c)
			}
		}
		for _, c := range used {
			if !slices.Contains(caps.Credentials, c) {
				return fmt.Errorf("tree: validate: leaf %d: credential type %v used in the group not in capabilities", i, c)
			}
		}
		for _, e := range ln.Extensions {
			if !defaultExtension(e.Type) && !slices.Contains(caps.Extensions, e.Type) {
				return fmt.Errorf("tree: validate: leaf %d: extension type %#04x not in capabilities", i, uint16(e.Type))
			}
		}
	}
	return nil
}

// checkUniqueKeys checks that no encryption key appears in two nodes and
// no signature key in two leaves (RFC 9420 §7.3, §12.4.3.1), through the
// key index; it reports the duplicate whose second node is lowest,
// signature keys first.
func (t *Tree) checkUniqueKeys() error {
	sa, sb, sdup := t.duplicateSignatureKey()
	ea, eb, edup := t.duplicateEncryptionKey()
	if sdup && (!edup || sb <= eb) {
		la, _ := sa.Leaf()
		lb, _ := sb.Leaf()
		return fmt.Errorf("tree: validate: leaf %d: signature key duplicates that of leaf %d", lb, la)
	}
	if edup {
		return fmt.Errorf("tree: validate: node %d: encryption key duplicates that of node %d", eb, ea)
	}
	return nil
}

// verifySignatures verifies every leaf signature with a pool of workers
// and returns the error of the lowest failing leaf index.
func (t *Tree) verifySignatures(groupID []byte, workers int) error {
	if workers <= 0 {
		workers = runtime.GOMAXPROCS(0)
	}
	lc := int64(t.LeafCount())
	workers = int(min(int64(workers), lc))
	type failure struct {
		leaf int64
		err  error
	}
	var (
		next    atomic.Int64 // next leaf index to claim
		lowFail atomic.Int64 // lowest failing leaf index so far
		wg      sync.WaitGroup
		fails   = make([]failure, workers) // each worker's lowest failure
	)
	lowFail.Store(lc)
	const batch = 16
	for w := range workers {
		fails[w].leaf = lc
		wg.Add(1)
		go func() {
			defer wg.Done()
			// One encoding buffer per worker for every leaf it checks.
			var scratch codec.Builder
			for {
				start := next.Add(batch) - batch
				if start >= lc || start >= lowFail.Load() {
					return
				}
				for li := start; li < min(start+batch, lc); li++ {
					nd := t.at(treemath.NodeIndex(2 * li))
					if nd == nil {
						continue
					}
					if err := nd.Leaf.VerifyScratch(t.suite, groupID, uint32(li), &scratch); err != nil {
						// Batches are claimed in increasing order, so this
						// is the lowest failure this worker will see.
						fails[w] = failure{li, err}
						for {
							cur := lowFail.Load()
							if li >= cur || lowFail.CompareAndSwap(cur, li) {
								break
							}
						}
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	first := failure{leaf: lc}
	for _, f := range fails {
		if f.leaf < first.leaf {
			first = f
		}
	}
	if first.err == nil {
		return nil
	}
	return fmt.Errorf("tree: validate: leaf %d: signature invalid: %w", first.leaf, first.err)
}

// LifetimeWithin reports whether a lifetime is well formed (not_before <=
// not_after) and spans at most max (RFC 9420 §7.2: the application's
// maximum total lifetime of a LeafNode).
func LifetimeWithin(lt *wire.Lifetime, max time.Duration) bool {
	if lt == nil || lt.NotAfter < lt.NotBefore {
		return false
	}
	return lt.NotAfter-lt.NotBefore <= uint64(max/time.Second)
}
