package schedule

import (
	"fmt"
	"testing"
)

// BenchmarkSecretTreeKey builds a fresh 16-leaf secret tree and derives
// the application key of leaf 0 at one generation (the skipped keys of
// the generations before it are kept, within the default window).
func BenchmarkSecretTreeKey(b *testing.B) {
	s := newSuite(b, 1)
	enc := EncryptionSecret(testSecret(s, 0x42))
	for _, gen := range []uint32{1, 1000} {
		b.Run(fmt.Sprintf("generation=%d", gen), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tree, err := NewSecretTree(s, enc, 16, DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				if _, err := tree.Key(0, Application, gen); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSecretTreePeekConsume is BenchmarkSecretTreeKey through the
// receive path: Peek the key on copies, then Consume the generation.
func BenchmarkSecretTreePeekConsume(b *testing.B) {
	s := newSuite(b, 1)
	enc := EncryptionSecret(testSecret(s, 0x42))
	for _, gen := range []uint32{1, 1000} {
		b.Run(fmt.Sprintf("generation=%d", gen), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				tree, err := NewSecretTree(s, enc, 16, DefaultConfig())
				if err != nil {
					b.Fatal(err)
				}
				kn, err := tree.Peek(0, Application, gen)
				if err != nil {
					b.Fatal(err)
				}
				kn.Zero()
				if err := tree.Consume(0, Application, gen); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkSecretTreeNext measures the steady-state cost of one in-order
// message key.
func BenchmarkSecretTreeNext(b *testing.B) {
	s := newSuite(b, 1)
	tree, err := NewSecretTree(s, testSecret(s, 0x42), 16, DefaultConfig())
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := tree.Next(3, Application); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkDeriveEpoch runs the key schedule for one epoch.
func BenchmarkDeriveEpoch(b *testing.B) {
	s := newSuite(b, 1)
	init, commit := InitSecret(testSecret(s, 1)), CommitSecret(testSecret(s, 2))
	gc := make([]byte, 120) // about the size of a real GroupContext
	b.ReportAllocs()
	for b.Loop() {
		if _, err := DeriveEpoch(s, init, commit, nil, gc); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkExport runs MLS-Exporter for a 32-byte secret.
func BenchmarkExport(b *testing.B) {
	s := newSuite(b, 1)
	e, err := DeriveEpoch(s, testSecret(s, 1), testSecret(s, 2), nil, []byte("gc"))
	if err != nil {
		b.Fatal(err)
	}
	ctx := []byte("context")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := e.Export("parley test", ctx, 32); err != nil {
			b.Fatal(err)
		}
	}
}
