package padding

import "testing"

func TestMessage(t *testing.T) {
	for _, c := range []struct{ n, want int }{
		{0, 256}, {1, 256}, {256, 256}, {257, 512}, {1000, 1024}, {1024, 1024},
		{1025, 1088}, {4000, 4096}, {100 << 10, 100 << 10},
	} {
		if got := Message(c.n); got != c.want {
			t.Errorf("Message(%d) = %d, want %d", c.n, got, c.want)
		}
	}
}

func TestPadme(t *testing.T) {
	for _, c := range []struct{ n, want int64 }{
		{0, 0}, {1, 1}, {2, 2}, {3, 3}, {9, 10}, {100, 104}, {1001, 1024}, {5000, 5120},
		{1 << 20, 1 << 20}, {1<<20 + 1, 1<<20 + 1<<15},
	} {
		if got := Padme(c.n); got != c.want {
			t.Errorf("Padme(%d) = %d, want %d", c.n, got, c.want)
		}
	}
	// At least n, at most 12% more, never decreasing.
	prev := int64(0)
	for n := int64(1); n < 1<<16; n++ {
		p := Padme(n)
		if p < n || float64(p) > 1.12*float64(n)+1 || p < prev {
			t.Fatalf("Padme(%d) = %d after %d", n, p, prev)
		}
		prev = p
	}
}

func TestAttachment(t *testing.T) {
	if a, b := Attachment(1), Attachment(1000); a != b || a != AttachmentMin {
		t.Errorf("Attachment(1) = %d, Attachment(1000) = %d, want both %d", a, b, AttachmentMin)
	}
	for _, n := range []int64{0, 4095, 4096, 1 << 20, 100 << 20} {
		if p := Attachment(n); p < n+1 {
			t.Errorf("Attachment(%d) = %d leaves no room for the marker", n, p)
		}
	}
}
