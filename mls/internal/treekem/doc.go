// Package treekem implements TreeKEM, the private half of the MLS ratchet
// tree (RFC 9420 §7.4-§7.6, with §7.9 parent hashes and §12.4.2 commit
// secrets): a member's private keys for its leaf and for the nodes of its
// direct path, the creation of an UpdatePath by a committer and its
// processing by every other member. The public tree is package tree.
//
// Map of files to RFC 9420 sections:
//
//	private.go  §4 tree invariant (a member knows the private keys of its
//	            leaf and of the non-blank nodes on its direct path), §7.4
//	            path secret -> node secret -> node key pair derivation,
//	            §12.4.3.1 implanting a Welcome's path_secret
//	context.go  §12.4.2 the provisional GroupContext, serialized with the
//	            tree hash of the tree after the UpdatePath is merged
//	create.go   §7.4 "updating the direct path" and §7.5 "encrypting path
//	            secrets to the group", §7.6 HPKECiphertext, §12.4.2
//	            commit_secret and the path secret for a new member's
//	            Welcome (lowest common ancestor, §12.4.3.1)
//	apply.go    §7.5 "merging an UpdatePath into the tree" (with the
//	            UpdatePath checks of §12.4.2 and the leaf parent hash of
//	            §7.9), §7.5 "decrypting the path secrets", §7.6
//
// Secrets. Path secrets, node secrets, HPKE private keys and commit
// secrets are secret. A Private owns copies of the secrets given to it and
// zeroes a secret when it replaces or drops it and on Zero. Operations
// never modify their inputs: CreateUpdatePath and ApplyUpdatePath work on
// a clone of the tree and a new Private and return them, so a failure
// leaves the caller's tree and private state untouched, and the caller
// adopts the new state (and zeroes the old Private) only once the whole
// Commit has been accepted (RFC 9420 §12.4.2: after the confirmation tag
// verified).
//
// Input from the network (an UpdatePath and the sender's leaf index) is
// checked before use; a malformed UpdatePath yields an error, never a
// panic.
package treekem
