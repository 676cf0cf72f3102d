package tree

import (
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/treemath"
	"github.com/parley-chat/parley/mls/internal/wire"
)

func BenchmarkTreeHash(b *testing.B) {
	for _, n := range []int{1024, 16384} {
		b.Run(fmt.Sprintf("leaves=%d/cold", n), func(b *testing.B) {
			tr, _ := cachedTree(b, n)
			b.ReportAllocs()
			for b.Loop() {
				tr.clearHashes()
				if _, err := tr.TreeHash(); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("leaves=%d/after-path-change", n), func(b *testing.B) {
			tr, _ := cachedTree(b, n)
			if _, err := tr.TreeHash(); err != nil {
				b.Fatal(err)
			}
			// Two versions of leaf n/2 and its direct path, alternated so
			// that every iteration really changes the path.
			li := treemath.LeafIndex(n / 2)
			path, _ := treemath.DirectPath(li.Node(), tr.LeafCount())
			var leaves [2]*wire.LeafNode
			parents := [2][]*wire.ParentNode{}
			for v := range 2 {
				ln := *tr.Leaf(li)
				ln.EncryptionKey = append([]byte{byte(v)}, ln.EncryptionKey[1:]...)
				leaves[v] = &ln
				for _, x := range path {
					p := *tr.ParentNode(x)
					p.EncryptionKey = append([]byte{byte(v)}, p.EncryptionKey[1:]...)
					parents[v] = append(parents[v], &p)
				}
			}
			b.ReportAllocs()
			v := 0
			for b.Loop() {
				v ^= 1
				if err := tr.SetLeaf(li, leaves[v]); err != nil {
					b.Fatal(err)
				}
				for j, x := range path {
					if err := tr.SetParent(x, parents[v][j]); err != nil {
						b.Fatal(err)
					}
				}
				if _, err := tr.TreeHash(); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkValidate(b *testing.B) {
	for _, n := range []int{10000} {
		b.Run(fmt.Sprintf("members=%d", n), func(b *testing.B) {
			tr, _ := cachedTree(b, n)
			b.ReportAllocs()
			for b.Loop() {
				tr.clearHashes() // a joiner starts with no cached hashes
				if err := tr.Validate(ValidateOptions{GroupID: genGroupID}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkVerifyParentHashes(b *testing.B) {
	tr, _ := cachedTree(b, 10000)
	if _, err := tr.TreeHash(); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := tr.VerifyParentHashes(); err != nil {
			b.Fatal(err)
		}
	}
}
