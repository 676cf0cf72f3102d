package sqlstore

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"maps"
	"slices"

	"github.com/parley-chat/parley/server/store"
)

// A list of tree nodes is stored as one value (a snapshot's tree, a
// commit's changes): for each node in ascending index order, its index
// (4 bytes, big-endian), its length plus one (4 bytes; 0 for a blank
// node) and its data.

// nodeHeader is the bytes before each node's data.
const nodeHeader = 8

// encodeNodes encodes nodes, which it sorts by index (a copy; the
// caller's slice is left as it was). Two nodes with one index are
// refused.
func encodeNodes(nodes []store.TreeNode) ([]byte, error) {
	sorted := slices.SortedFunc(slices.Values(nodes), func(a, b store.TreeNode) int { return cmp.Compare(a.Index, b.Index) })
	size := 0
	for i, nd := range sorted {
		if i > 0 && sorted[i-1].Index == nd.Index {
			return nil, fmt.Errorf("node %d given twice: %w", nd.Index, store.ErrInvalid)
		}
		if uint64(len(nd.Data)) >= 1<<32-1 {
			return nil, fmt.Errorf("node %d of %d bytes: %w", nd.Index, len(nd.Data), store.ErrInvalid)
		}
		size += nodeHeader + len(nd.Data)
	}
	out := make([]byte, 0, size)
	for _, nd := range sorted {
		n := uint32(0)
		if len(nd.Data) > 0 {
			n = uint32(len(nd.Data)) + 1
		}
		out = binary.BigEndian.AppendUint32(out, nd.Index)
		out = binary.BigEndian.AppendUint32(out, n)
		out = append(out, nd.Data...)
	}
	return out, nil
}

// decodeNodes decodes what encodeNodes encoded. The nodes' data share
// b's memory. Anything else (a node cut short, indices out of order) is
// an error: the value is read from disk.
func decodeNodes(b []byte) ([]store.TreeNode, error) {
	var out []store.TreeNode
	for off := 0; off < len(b); {
		if len(b)-off < nodeHeader {
			return nil, fmt.Errorf("stored tree nodes: %d bytes left at offset %d, want a node header", len(b)-off, off)
		}
		idx := binary.BigEndian.Uint32(b[off:])
		n := binary.BigEndian.Uint32(b[off+4:])
		off += nodeHeader
		if len(out) > 0 && idx <= out[len(out)-1].Index {
			return nil, fmt.Errorf("stored tree nodes: node %d after node %d", idx, out[len(out)-1].Index)
		}
		nd := store.TreeNode{Index: idx}
		if n > 0 {
			if uint64(n-1) > uint64(len(b)-off) {
				return nil, fmt.Errorf("stored tree nodes: node %d of %d bytes, %d left", idx, n-1, len(b)-off)
			}
			if n == 1 {
				return nil, fmt.Errorf("stored tree nodes: node %d is empty but not blank", idx)
			}
			nd.Data = b[off : off+int(n-1) : off+int(n-1)]
			off += int(n - 1)
		}
		out = append(out, nd)
	}
	return out, nil
}

// nodeChanges folds the changes of successive epochs, oldest first, into
// the latest version of each node they changed (blank ones included),
// by index.
type nodeChanges map[uint32][]byte

// add decodes and folds in the changes of the next epoch.
func (c nodeChanges) add(b []byte) error {
	nodes, err := decodeNodes(b)
	if err != nil {
		return err
	}
	for _, nd := range nodes {
		c[nd.Index] = nd.Data
	}
	return nil
}

// sorted returns the changes by index, blank nodes with nil data.
func (c nodeChanges) sorted() []store.TreeNode {
	out := make([]store.TreeNode, 0, len(c))
	for _, x := range slices.Sorted(maps.Keys(c)) {
		out = append(out, store.TreeNode{Index: x, Data: c[x]})
	}
	return out
}

// applyChanges returns the non-blank nodes of base (sorted by index, as
// decodeNodes gives them) with changes (sorted likewise) applied.
func applyChanges(base, changes []store.TreeNode) []store.TreeNode {
	out := make([]store.TreeNode, 0, len(base)+len(changes))
	i, j := 0, 0
	for i < len(base) || j < len(changes) {
		var nd store.TreeNode
		switch {
		case j == len(changes) || (i < len(base) && base[i].Index < changes[j].Index):
			nd = base[i]
			i++
		case i == len(base) || changes[j].Index < base[i].Index:
			nd = changes[j]
			j++
		default: // the same node: the change wins
			nd = changes[j]
			i++
			j++
		}
		if len(nd.Data) > 0 {
			out = append(out, nd)
		}
	}
	return out
}

// nonBlank returns the nodes with data.
func nonBlank(nodes []store.TreeNode) []store.TreeNode {
	return slices.DeleteFunc(slices.Clone(nodes), func(nd store.TreeNode) bool { return len(nd.Data) == 0 })
}

// snapshotPart is the size from which a snapshot's encoding is cut into
// another part (at a node's end).
const snapshotPart = 1 << 20

// splitNodes cuts an encoding of nodes into parts of about snapshotPart
// bytes, each a whole number of nodes; no nodes give one empty part.
func splitNodes(b []byte) [][]byte {
	parts := [][]byte{}
	start := 0
	for off := 0; off < len(b); {
		n := binary.BigEndian.Uint32(b[off+4:])
		off += nodeHeader
		if n > 0 {
			off += int(n - 1)
		}
		if off-start >= snapshotPart {
			parts = append(parts, b[start:off])
			start = off
		}
	}
	if start < len(b) || len(parts) == 0 {
		parts = append(parts, b[start:])
	}
	return parts
}
