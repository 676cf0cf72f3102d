// Package tree holds the public state of an MLS ratchet tree (RFC 9420 §4,
// §7) and the operations on it that need no private keys: structure checks
// on a received tree, adding, updating and removing leaves, resolutions and
// filtered direct paths, tree hashes, parent hashes and the validation a
// joining member performs. TreeKEM (path secrets, HPKE) is built on top of
// it elsewhere.
//
// Map of files to RFC 9420 sections:
//
//	tree.go        §4.1 array representation, §7.7 extend/truncate,
//	               §12.4.3.3 ratchet_tree decoding (padding, trailing blanks),
//	               §12.1.1-§12.1.3 applying Add, Update, Remove
//	resolution.go  §4.1.1 resolution, §4.1.2 direct path, copath and
//	               filtered direct path
//	hash.go        §7.8 tree hashes (TreeHashInput, LeafNodeHashInput,
//	               ParentNodeHashInput), cached per node
//	parenthash.go  §7.9 ParentHashInput and original sibling tree hash,
//	               §7.9.1 setting parent hashes along a path,
//	               §7.9.2 verifying that every parent is parent-hash valid
//	validate.go    §12.4.3.1 "verify the integrity of the ratchet tree" and
//	               §7.3 leaf node validation for leaves of a tree
//	store.go       copy-on-write node storage and the key index behind the
//	               §7.3 uniqueness rules (EncryptionKeyNode, SignatureKeyLeaf)
//	diff.go        the nodes where two versions of a tree differ, found by
//	               their §7.8 tree hashes (ChangedSince)
//
// Nodes are shared and immutable. A Tree takes ownership of every
// *wire.Node, *wire.LeafNode and *wire.ParentNode handed to it, and the
// values it returns must not be modified by callers: operations that change
// a node (adding an unmerged leaf, setting a parent hash) store a new node
// instead of mutating the old one. Storage is copy-on-write in chunks of 32
// nodes (with their cached hashes) and buckets of key-index entries, shared
// between clones: Clone copies O(n/32) pointers, and a change along one
// direct path then copies O(log n) chunks and buckets, so staging a commit
// on a clone costs kilobytes, not the whole tree.
//
// A Tree is not safe for concurrent use; tree hashes are cached lazily, so
// even reading methods such as TreeHash write to the Tree, and Clone
// writes to its source (both get new write tokens). Clones are
// independent and may be used from different goroutines.
package tree
