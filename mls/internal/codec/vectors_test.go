package codec

import (
	"fmt"
	"testing"

	"github.com/parley-chat/parley/mls/internal/vectors"
)

// TestVectorsDeserialization checks deserialization.json: each header
// decodes to the given vector length.
func TestVectorsDeserialization(t *testing.T) {
	var cases []struct {
		Header vectors.Hex `json:"vlbytes_header"`
		Length uint64      `json:"length"`
	}
	vectors.Load(t, "deserialization.json", &cases)
	c := vectors.NewCounter("deserialization.json")
	for i, tc := range cases {
		c.Run(t, fmt.Sprint(i), func(t *testing.T) {
			v, n, err := ReadVarint(tc.Header)
			if err != nil || v != tc.Length || n != len(tc.Header) {
				t.Fatalf("ReadVarint(%x) = %d, %d, %v; want %d", tc.Header, v, n, err, tc.Length)
			}
			enc, err := AppendVarint(nil, v)
			if err != nil || string(enc) != string(tc.Header) {
				t.Fatalf("AppendVarint(%d) = %x, %v; want %x", v, enc, err, []byte(tc.Header))
			}
		})
	}
	c.Report(t)
}
