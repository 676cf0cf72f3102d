package sqlstore

import (
	"bytes"
	"errors"
	"strconv"
	"testing"

	"github.com/parley-chat/parley/server/store"
)

func TestNodesRoundTrip(t *testing.T) {
	in := []store.TreeNode{{Index: 7, Data: []byte("seven")}, {Index: 0, Data: []byte("zero")}, {Index: 3}}
	b, err := encodeNodes(in)
	if err != nil {
		t.Fatal(err)
	}
	if in[0].Index != 7 {
		t.Fatal("encodeNodes sorted the caller's slice")
	}
	out, err := decodeNodes(b)
	if err != nil {
		t.Fatal(err)
	}
	want := []store.TreeNode{{Index: 0, Data: []byte("zero")}, {Index: 3}, {Index: 7, Data: []byte("seven")}}
	if treeText(out) != treeText(want) {
		t.Fatalf("decoded %s, want %s", treeText(out), treeText(want))
	}
	if _, err := encodeNodes([]store.TreeNode{{Index: 1}, {Index: 1, Data: []byte("x")}}); !errors.Is(err, store.ErrInvalid) {
		t.Fatalf("a node given twice: %v, want ErrInvalid", err)
	}
	if b, err := encodeNodes(nil); err != nil || len(b) != 0 {
		t.Fatalf("no nodes: %x, %v", b, err)
	}
}

func TestDecodeNodesRefuses(t *testing.T) {
	for name, b := range map[string][]byte{
		"header cut short":    {0, 0, 0, 1, 0, 0},
		"data cut short":      {0, 0, 0, 1, 0, 0, 0, 5, 'a', 'b'},
		"empty but not blank": {0, 0, 0, 1, 0, 0, 0, 1},
		"out of order":        {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 0},
		"twice":               {0, 0, 0, 2, 0, 0, 0, 0, 0, 0, 0, 2, 0, 0, 0, 0},
		"length past the end": {0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 'a'},
	} {
		if out, err := decodeNodes(b); err == nil {
			t.Errorf("%s: decoded %s", name, treeText(out))
		}
	}
}

func TestApplyChanges(t *testing.T) {
	base := []store.TreeNode{{Index: 0, Data: []byte("a")}, {Index: 2, Data: []byte("b")}, {Index: 6, Data: []byte("g")}}
	folded := nodeChanges{}
	for _, epoch := range [][]store.TreeNode{
		{{Index: 0, Data: []byte("a1")}, {Index: 4, Data: []byte("e1")}},
		{{Index: 2}, {Index: 4, Data: []byte("e2")}, {Index: 8, Data: []byte("i2")}},
		{{Index: 8}},
	} {
		b, err := encodeNodes(epoch)
		if err != nil {
			t.Fatal(err)
		}
		if err := folded.add(b); err != nil {
			t.Fatal(err)
		}
	}
	changes := folded.sorted()
	if got, want := treeText(changes), "0:a1 2: 4:e2 8:"; got != want {
		t.Fatalf("folded changes %s, want %s", got, want)
	}
	if got, want := treeText(applyChanges(base, changes)), "0:a1 4:e2 6:g"; got != want {
		t.Fatalf("applied %s, want %s", got, want)
	}
}

// FuzzDecodeNodes: whatever is stored, decoding returns an error or
// nodes that encode back to the same bytes; it never panics.
func FuzzDecodeNodes(f *testing.F) {
	b, _ := encodeNodes([]store.TreeNode{{Index: 0, Data: []byte("leaf")}, {Index: 1}, {Index: 5, Data: bytes.Repeat([]byte{1}, 40)}})
	f.Add(b)
	f.Add([]byte{})
	f.Add([]byte{0, 0, 0, 1, 0, 0, 0, 1})
	f.Fuzz(func(t *testing.T, b []byte) {
		nodes, err := decodeNodes(b)
		if err != nil {
			return
		}
		again, err := encodeNodes(nodes)
		if err != nil {
			t.Fatalf("decoded nodes do not encode: %v", err)
		}
		if !bytes.Equal(again, b) {
			t.Fatalf("decoded and encoded again: %x, was %x", again, b)
		}
	})
}

// treeText renders nodes as "index:data" pairs.
func treeText(nodes []store.TreeNode) string {
	var b bytes.Buffer
	for i, nd := range nodes {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(strconv.FormatUint(uint64(nd.Index), 10))
		b.WriteByte(':')
		b.Write(nd.Data)
	}
	return b.String()
}

func TestSplitNodes(t *testing.T) {
	var nodes []store.TreeNode
	for i := range 3000 {
		nodes = append(nodes, store.TreeNode{Index: uint32(i), Data: bytes.Repeat([]byte{byte(i)}, 1000)})
	}
	nodes = append(nodes, store.TreeNode{Index: 5000}, store.TreeNode{Index: 5001, Data: make([]byte, 3<<20)})
	b, err := encodeNodes(nodes)
	if err != nil {
		t.Fatal(err)
	}
	parts := splitNodes(b)
	// Two of 1,041 small nodes (the first past 1 MiB), and the rest with
	// the 3 MiB node, which is not cut.
	if len(parts) != 3 || len(parts[0]) != 1041*1008 || len(parts[2]) != len(b)-2*1041*1008 {
		t.Errorf("%d parts of %d bytes, want 3", len(parts), len(b))
	}
	var joined []byte
	for i, p := range parts {
		if _, err := decodeNodes(p); err != nil {
			t.Fatalf("part %d: %v", i, err)
		}
		if i < len(parts)-1 && len(p) < snapshotPart {
			t.Errorf("part %d of %d bytes before the last", i, len(p))
		}
		joined = append(joined, p...)
	}
	if !bytes.Equal(joined, b) {
		t.Fatal("the parts do not make the encoding")
	}
	if parts := splitNodes(nil); len(parts) != 1 || len(parts[0]) != 0 {
		t.Fatalf("no nodes: %d parts", len(parts))
	}
}
