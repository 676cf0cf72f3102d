// Package mls implements the Messaging Layer Security protocol (RFC 9420):
// end-to-end encrypted groups whose members agree on a shared secret per
// epoch, in pure Go on the standard library's cryptography. Besides the
// seven cipher suites of RFC 9420 it offers the post-quantum suites of
// draft-ietf-mls-pq-ciphersuites at private-use codepoints (see
// [CipherSuite]). It passes the official MLS test vectors.
//
// The package holds a member's state; it sends nothing. The application
// carries the messages it returns to a Delivery Service, which orders the
// Commits of a group, and hands every message it receives to [Group.Process].
//
// # Lifecycle
//
// A client that wants to be added publishes KeyPackages ([NewKeyPackage],
// RFC 9420 §10) and keeps each [KeyPackageBundle], which holds the private
// keys, until it is used.
//
// One client creates a group ([CreateGroup], §11) and adds others by a
// Commit naming their KeyPackages ([Group.Commit] with [CommitOptions].Add).
// They join from the Welcome ([JoinFromWelcome], §12.4.3.1). A client may
// also join on its own from a published GroupInfo ([Group.GroupInfo],
// [JoinExternal], §12.4.3.2).
//
// Members change the group with proposals ([Group.ProposeAdd],
// [Group.ProposeRemove], [Group.ProposeUpdate], [Group.ProposeSelfRemove]
// and others, §12.1) and Commits (§12.4). [Group.Commit] returns a
// [PendingCommit]: send its Message to the group and its Welcome to the
// new members, and apply it with [Group.MergePendingCommit] only once the
// Delivery Service accepted it (or drop it with [Group.DiscardPendingCommit]
// when another Commit won). A Commit can include proposals by value, cached
// proposals by reference ([CommitOptions].References), or every cached
// proposal that is valid together ([CommitOptions].IncludePending; the
// ones left out are in [PendingCommit].Dropped).
//
// [Group.Process] handles every message received: it decrypts application
// messages, validates and caches proposals, and validates Commits into a
// [StagedCommit] to inspect (who is added or removed, whether this member
// is) and apply with [Group.MergeStagedCommit] (or drop with
// [Group.DiscardStagedCommit]). A failed step never changes the group.
//
// Application messages are sealed with [Group.Encrypt] (§15); secrets for
// the application's own use come from [Group.Export] (§8.5). A group ends
// or forks with [Group.ReInitGroup] and [Group.Branch] (§11.2, §11.3).
//
// A Delivery Service can follow a group without its secrets with a
// [PublicGroup] ([NewPublicGroup], [PublicGroup.Process],
// [PublicGroup.Merge]), and send proposals as an external sender
// ([NewExternalProposal], §12.1.8).
//
// The package example shows the lifecycle from KeyPackage to application
// message.
//
// # Configuration and checks
//
// A [Config] holds the application's choices; nil or the zero Config
// takes the defaults. Every new or replaced credential passes through
// Config.ValidateCredential before it is accepted, and every proposal
// from outside the group through Config.AuthorizeExternalProposal. Leaf
// lifetimes are checked against Config.Now and bounded by
// Config.MaxLeafLifetime (§7.2). A Welcome that re-initializes or branches
// a group is checked against the old group ([JoinOptions].OldGroup).
//
// The application's duties: keep group ids unique among its groups (the
// library holds no registry of them; §12.4.3.1 has a joiner refuse a group
// whose id it already uses), decide which credentials are valid, and
// persist state as below.
//
// # Persistence
//
// [Group.MarshalBinary] encodes a member's full state, secrets included
// (encrypt it at rest), and [LoadGroup] restores it with the signer, which
// the application keeps separately. Message keys change with every
// message, so [Group.RatchetState] encodes just the ratchet positions and
// [Group.ApplyRatchetState] puts them back over a loaded full state. The
// rule:
//
//   - persist RatchetState after every Encrypt and every Process of a
//     PrivateMessage, before releasing the message (sending the
//     ciphertext, showing the plaintext);
//   - persist MarshalBinary after creating or joining, after every merge,
//     and after proposals are sent or received (they are cached);
//   - after a crash, LoadGroup the full state, then ApplyRatchetState the
//     last ratchet state if it is for the same epoch.
//
// Followed, no key is ever used twice (§9.2): a ratchet state behind the
// loaded state is refused. A [PublicGroup] persists the same way
// ([PublicGroup.MarshalBinary], [LoadPublicGroup]), or, since a commit
// changes only O(log n) nodes of a tree that reaches tens of megabytes for
// large groups on post-quantum suites, with its tree stored node by node:
// [PublicGroup.MarshalState] (everything but the tree, kilobytes) and
// [PublicGroup.TreeNodes] once, then after every merge MarshalState and
// the nodes [PublicChange.TreeChanges] reports as changed or blanked.
// [LoadPublicGroupTree] rebuilds the follower from them, checking the
// tree hash, and [EncodeRatchetTree] assembles the ratchet tree for
// joiners from the stored nodes; a joiner whose Welcome carries no tree
// fetches it through [JoinOptions].FetchRatchetTree.
//
// # Errors
//
// Errors name the operation, the RFC rule and the input ("mls: process
// commit: §12.2: duplicate Add for KeyPackage 0a1b...: invalid proposal").
// Callers branch with [errors.Is] on the sentinel errors: [ErrWrongEpoch]
// (an [*EpochError] carries the epochs), [ErrReplay],
// [ErrGenerationExpired] and [ErrGenerationTooFar] for application
// messages out of the kept window; [ErrInvalidCommit],
// [ErrInvalidProposal], [ErrInvalidKeyPackage], [ErrInvalidLeafNode],
// [ErrInvalidWelcome] and [ErrMalformed] for messages that break the RFC;
// [ErrCredentialRejected], [ErrNotMember], [ErrMissingPSK]; [ErrRemoved]
// once this member left the group; [ErrStale] for a pending or staged
// Commit overtaken by another; [ErrOwnCommit] for a Commit of this member
// coming back from the Delivery Service (merge the PendingCommit instead).
//
// # Implementation
//
// The library is built in layers, internal packages that each map to
// sections of the RFC (their files name the sections) and are checked
// against the official test vectors: internal/codec (the TLS presentation
// language, §2.1), internal/suite (cipher suites, §5), internal/treemath
// (the tree's array layout, Appendix C), internal/wire (every structure
// on the wire, §6–§12), internal/tree (the public ratchet tree: hashes,
// parent hashes and validation, §4, §7), internal/treekem (TreeKEM: the
// private keys and UpdatePaths, §7.4–§7.6), internal/schedule (the key
// schedule, PSKs, transcript hashes and secret tree, §8–§9) and
// internal/framing (message protection and Welcome opening, §6, §12.4.3).
// This package is the group state machine on top of them (§10–§15).
package mls
