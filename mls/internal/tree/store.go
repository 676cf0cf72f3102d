package tree

import (
	"bytes"
	"hash/maphash"
	"slices"

	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// Node storage and the key index are copy-on-write, so that Clone costs
// O(n / chunkSize) pointer copies and a change to one direct path copies
// O(log n) small chunks and buckets, instead of the whole tree.
//
// Each chunk and bucket records the owner token of the one Tree that may
// write it in place. Clone gives both the source and the clone fresh
// tokens, so every chunk and bucket they share is owned by neither; the
// first write by either copies it. The cached tree hash of a node lives in
// the node's chunk, so caching a hash is a write too: a hash computed for a
// node whose subtree differs between two trees never leaks from one to the
// other.

const (
	chunkShift = 5
	chunkSize  = 1 << chunkShift
	chunkMask  = chunkSize - 1
)

// owner is the write token of a Tree; only its address matters (it is not
// zero-sized, so distinct tokens have distinct addresses).
type owner struct{ _ byte }

// chunk holds chunkSize consecutive nodes and their cached tree hashes.
type chunk struct {
	owner  *owner
	nodes  [chunkSize]*wire.Node
	hashes [chunkSize][]byte
}

func chunksFor(n int) int { return (n + chunkMask) >> chunkShift }

// at returns node x; x must be below t.n.
func (t *Tree) at(x treemath.NodeIndex) *wire.Node {
	return t.chunks[x>>chunkShift].nodes[x&chunkMask]
}

// hashAt returns the cached tree hash of node x, or nil; x must be below t.n.
func (t *Tree) hashAt(x treemath.NodeIndex) []byte {
	return t.chunks[x>>chunkShift].hashes[x&chunkMask]
}

// writable returns the chunk holding node x, copied first if t does not
// own it.
func (t *Tree) writable(x treemath.NodeIndex) *chunk {
	i := x >> chunkShift
	c := t.chunks[i]
	if c.owner != t.own {
		nc := *c
		nc.owner = t.own
		t.chunks[i] = &nc
		c = &nc
	}
	return c
}

// setHash caches h as the tree hash of node x.
func (t *Tree) setHash(x treemath.NodeIndex, h []byte) {
	t.writable(x).hashes[x&chunkMask] = h
}

// clearHashes drops every cached tree hash.
func (t *Tree) clearHashes() {
	for i := range t.chunks {
		c := t.chunks[i]
		if c.owner != t.own {
			nc := *c
			nc.owner = t.own
			t.chunks[i] = &nc
			c = &nc
		}
		clear(c.hashes[:])
	}
}

// resize sets the node count to n, adding blank nodes or dropping nodes
// at the end. Dropped nodes leave the key index.
func (t *Tree) resize(n int) {
	for x := n; x < t.n; x++ {
		if nd := t.at(treemath.NodeIndex(x)); nd != nil {
			t.keys.update(t, treemath.NodeIndex(x), nd, nil)
		}
	}
	if n < t.n {
		// Clear the tail of the last kept chunk so that a later resize
		// finds it blank.
		if n&chunkMask != 0 {
			c := t.writable(treemath.NodeIndex(n - 1))
			clear(c.nodes[n&chunkMask:])
			clear(c.hashes[n&chunkMask:])
		}
		clear(t.chunks[chunksFor(n):])
		t.chunks = t.chunks[:chunksFor(n)]
	}
	for len(t.chunks) < chunksFor(n) {
		t.chunks = append(t.chunks, &chunk{owner: t.own})
	}
	t.n = n
}

// keyIndex indexes the encryption keys of all non-blank nodes and the
// signature keys of all non-blank leaves, for the uniqueness rules of RFC
// 9420 §7.3 and §12.4.2 in O(1) per key instead of a scan of the tree. Keys
// are indexed by a seeded 64-bit hash; every hit is confirmed against the
// key bytes of the node it names, so the answers are exact. The index is
// kept in step with the nodes by every write (Tree.set) and shared
// copy-on-write between clones like the nodes.
type keyIndex struct {
	seed     maphash.Seed
	enc, sig keyTable
}

// keyTable is a multiset of (key hash, node) entries in 2^bits buckets,
// chosen by the top bits of the hash, each sorted by (hash, node).
type keyTable struct {
	bits    uint8
	count   int
	buckets []*keyBucket
}

type keyBucket struct {
	owner   *owner
	entries []keyEntry
}

type keyEntry struct {
	h uint64
	x treemath.NodeIndex
}

func (e keyEntry) cmp(f keyEntry) int {
	if c := compareUint64(e.h, f.h); c != 0 {
		return c
	}
	return compareUint64(uint64(e.x), uint64(f.x))
}

func compareUint64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// maxBucketLoad is the average number of entries per bucket above which a
// table doubles its buckets.
const maxBucketLoad = 32

func newKeyTable(own *owner, bits uint8) keyTable {
	kt := keyTable{bits: bits, buckets: make([]*keyBucket, 1<<bits)}
	bs := make([]keyBucket, len(kt.buckets))
	for i := range kt.buckets {
		bs[i].owner = own
		kt.buckets[i] = &bs[i]
	}
	return kt
}

func (kt *keyTable) bucketOf(h uint64) int {
	if kt.bits == 0 {
		return 0
	}
	return int(h >> (64 - kt.bits))
}

// clone returns a table sharing kt's buckets (both must then copy on write,
// which the callers' fresh owner tokens ensure).
func (kt *keyTable) clone() keyTable {
	return keyTable{bits: kt.bits, count: kt.count, buckets: slices.Clone(kt.buckets)}
}

func (kt *keyTable) writable(own *owner, i int) *keyBucket {
	b := kt.buckets[i]
	if b.owner != own {
		b = &keyBucket{owner: own, entries: slices.Clone(b.entries)}
		kt.buckets[i] = b
	}
	return b
}

func (kt *keyTable) insert(own *owner, e keyEntry) {
	b := kt.writable(own, kt.bucketOf(e.h))
	pos, _ := slices.BinarySearchFunc(b.entries, e, keyEntry.cmp)
	b.entries = slices.Insert(b.entries, pos, e)
	kt.count++
	if kt.count > maxBucketLoad<<kt.bits && kt.bits < 24 {
		kt.grow(own)
	}
}

func (kt *keyTable) delete(own *owner, e keyEntry) {
	i := kt.bucketOf(e.h)
	pos, found := slices.BinarySearchFunc(kt.buckets[i].entries, e, keyEntry.cmp)
	if !found {
		return
	}
	b := kt.writable(own, i)
	b.entries = slices.Delete(b.entries, pos, pos+1)
	kt.count--
}

// grow doubles the buckets: each splits on the next bit of the hash.
func (kt *keyTable) grow(own *owner) {
	nb := make([]*keyBucket, 2*len(kt.buckets))
	shift := 63 - kt.bits // the bit that now selects the half
	for i, b := range kt.buckets {
		split, _ := slices.BinarySearchFunc(b.entries, uint64(1)<<shift, func(e keyEntry, bit uint64) int {
			if e.h&bit != 0 {
				return 1
			}
			return -1
		})
		nb[2*i] = &keyBucket{owner: own, entries: slices.Clone(b.entries[:split])}
		nb[2*i+1] = &keyBucket{owner: own, entries: slices.Clone(b.entries[split:])}
	}
	kt.buckets = nb
	kt.bits++
}

// find calls yes for each node whose entry has hash h, in node order, until
// yes returns true; it returns that node.
func (kt *keyTable) find(h uint64, yes func(treemath.NodeIndex) bool) (treemath.NodeIndex, bool) {
	es := kt.buckets[kt.bucketOf(h)].entries
	pos, _ := slices.BinarySearchFunc(es, keyEntry{h: h}, keyEntry.cmp)
	for ; pos < len(es) && es[pos].h == h; pos++ {
		if yes(es[pos].x) {
			return es[pos].x, true
		}
	}
	return 0, false
}

// newKeyIndex indexes every node of t.
func newKeyIndex(t *Tree) keyIndex {
	k := keyIndex{seed: maphash.MakeSeed()}
	var nodes, leaves int
	for x := range t.n {
		if nd := t.at(treemath.NodeIndex(x)); nd != nil {
			nodes++
			if nd.Leaf != nil {
				leaves++
			}
		}
	}
	// The entries become the buckets' storage: size them exactly.
	encs, sigs := make([]keyEntry, 0, nodes), make([]keyEntry, 0, leaves)
	for x := range t.n {
		nd := t.at(treemath.NodeIndex(x))
		if nd == nil {
			continue
		}
		encs = append(encs, keyEntry{k.hash(nd.EncryptionKey()), treemath.NodeIndex(x)})
		if nd.Leaf != nil {
			sigs = append(sigs, keyEntry{k.hash(nd.Leaf.SignatureKey), treemath.NodeIndex(x)})
		}
	}
	k.enc = buildKeyTable(t.own, encs)
	k.sig = buildKeyTable(t.own, sigs)
	return k
}

func buildKeyTable(own *owner, es []keyEntry) keyTable {
	bits := uint8(0)
	for len(es) > maxBucketLoad<<bits {
		bits++
	}
	kt := newKeyTable(own, bits)
	slices.SortFunc(es, keyEntry.cmp)
	for i := 0; i < len(es); {
		b := kt.bucketOf(es[i].h)
		j := i
		for j < len(es) && kt.bucketOf(es[j].h) == b {
			j++
		}
		kt.buckets[b].entries = es[i:j:j]
		i = j
	}
	kt.count = len(es)
	return kt
}

func (k *keyIndex) hash(key []byte) uint64 { return maphash.Bytes(k.seed, key) }

func (k *keyIndex) clone() keyIndex {
	return keyIndex{seed: k.seed, enc: k.enc.clone(), sig: k.sig.clone()}
}

// update replaces the entries of node x, which held old, by those of nd.
func (k *keyIndex) update(t *Tree, x treemath.NodeIndex, old, nd *wire.Node) {
	oldEnc, newEnc := old.EncryptionKey(), nd.EncryptionKey()
	if old == nil || nd == nil || !bytes.Equal(oldEnc, newEnc) {
		if old != nil {
			k.enc.delete(t.own, keyEntry{k.hash(oldEnc), x})
		}
		if nd != nil {
			k.enc.insert(t.own, keyEntry{k.hash(newEnc), x})
		}
	}
	var oldSig, newSig []byte
	if old != nil && old.Leaf != nil {
		oldSig = old.Leaf.SignatureKey
	}
	if nd != nil && nd.Leaf != nil {
		newSig = nd.Leaf.SignatureKey
	}
	hadSig, hasSig := old != nil && old.Leaf != nil, nd != nil && nd.Leaf != nil
	if hadSig && hasSig && bytes.Equal(oldSig, newSig) {
		return
	}
	if hadSig {
		k.sig.delete(t.own, keyEntry{k.hash(oldSig), x})
	}
	if hasSig {
		k.sig.insert(t.own, keyEntry{k.hash(newSig), x})
	}
}

// EncryptionKeyNode returns a non-blank node of t whose encryption_key is
// key (the lowest such node index), and whether there is one. It costs
// O(1) expected, through an index maintained with the nodes (RFC 9420 §7.3:
// encryption keys are unique among all non-blank nodes).
func (t *Tree) EncryptionKeyNode(key []byte) (treemath.NodeIndex, bool) {
	if t.n == 0 {
		return 0, false
	}
	return t.keys.enc.find(t.keys.hash(key), func(x treemath.NodeIndex) bool {
		return bytes.Equal(t.at(x).EncryptionKey(), key)
	})
}

// SignatureKeyLeaf returns a non-blank leaf of t whose signature_key is key
// (the lowest such leaf index), and whether there is one, in O(1) expected
// (RFC 9420 §7.3: signature keys are unique among all leaves).
func (t *Tree) SignatureKeyLeaf(key []byte) (treemath.LeafIndex, bool) {
	if t.n == 0 {
		return 0, false
	}
	x, ok := t.keys.sig.find(t.keys.hash(key), func(x treemath.NodeIndex) bool {
		nd := t.at(x)
		return nd != nil && nd.Leaf != nil && bytes.Equal(nd.Leaf.SignatureKey, key)
	})
	if !ok {
		return 0, false
	}
	li, _ := x.Leaf()
	return li, true
}

// duplicateEncryptionKey reports two nodes with the same encryption key,
// choosing the lowest second node; ok is false if all keys are unique.
func (t *Tree) duplicateEncryptionKey() (first, second treemath.NodeIndex, ok bool) {
	return t.keys.enc.duplicate(func(a, b treemath.NodeIndex) bool {
		return bytes.Equal(t.at(a).EncryptionKey(), t.at(b).EncryptionKey())
	})
}

// duplicateSignatureKey is duplicateEncryptionKey for the signature keys
// of leaves (as node indices).
func (t *Tree) duplicateSignatureKey() (first, second treemath.NodeIndex, ok bool) {
	return t.keys.sig.duplicate(func(a, b treemath.NodeIndex) bool {
		return bytes.Equal(t.at(a).Leaf.SignatureKey, t.at(b).Leaf.SignatureKey)
	})
}

// duplicate finds two entries with equal keys (same hash, same confirmed
// by same), choosing the pair whose second node is lowest.
func (kt *keyTable) duplicate(same func(a, b treemath.NodeIndex) bool) (first, second treemath.NodeIndex, ok bool) {
	for _, b := range kt.buckets {
		es := b.entries
		for i := 0; i < len(es); {
			j := i + 1
			for j < len(es) && es[j].h == es[i].h {
				j++
			}
			// es[i:j] share a hash, sorted by node: the lowest node that
			// repeats an earlier key ends the group's search.
		group:
			for q := i + 1; q < j; q++ {
				if ok && es[q].x >= second {
					break
				}
				for p := i; p < q; p++ {
					if same(es[p].x, es[q].x) {
						first, second, ok = es[p].x, es[q].x, true
						break group
					}
				}
			}
			i = j
		}
	}
	return first, second, ok
}
