package wire

import (
	"testing"
)

// benchMessages returns the MLSMessages of the first messages.json case.
func benchMessages(b *testing.B) map[string][]byte {
	cases := loadMessages(b)
	if len(cases) == 0 {
		b.Fatal("no cases")
	}
	c := cases[0]
	return map[string][]byte{
		"welcome":       c.MLSWelcome,
		"public_commit": c.PublicMessageCommit,
		"private":       c.PrivateMessage,
		"key_package":   c.MLSKeyPackage,
	}
}

func BenchmarkDecodeMLSMessage(b *testing.B) {
	for name, data := range benchMessages(b) {
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				var m MLSMessage
				if err := Unmarshal(data, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkEncodeMLSMessage(b *testing.B) {
	for name, data := range benchMessages(b) {
		b.Run(name, func(b *testing.B) {
			var m MLSMessage
			if err := Unmarshal(data, &m); err != nil {
				b.Fatal(err)
			}
			b.ReportAllocs()
			b.SetBytes(int64(len(data)))
			for b.Loop() {
				if _, err := Marshal(&m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
