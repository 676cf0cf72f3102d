package store

import (
	"encoding/json"
	"testing"
)

// TestDeliveryStateJSON: states travel by name; numbers of older stores
// still decode.
func TestDeliveryStateJSON(t *testing.T) {
	for _, s := range []DeliveryState{Received, Pending, Sent, Read} {
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if want := `"` + s.String() + `"`; string(b) != want {
			t.Errorf("marshal %d = %s, want %s", s, b, want)
		}
		var got DeliveryState
		if err := json.Unmarshal(b, &got); err != nil || got != s {
			t.Errorf("unmarshal %s = %v, %v", b, got, err)
		}
		var old DeliveryState
		if err := json.Unmarshal([]byte{'0' + byte(s)}, &old); err != nil || old != s {
			t.Errorf("unmarshal number %d = %v, %v", s, old, err)
		}
	}
	var bad DeliveryState
	for _, in := range []string{`"lost"`, `7`, `{}`} {
		if err := json.Unmarshal([]byte(in), &bad); err == nil {
			t.Errorf("unmarshal %s: no error", in)
		}
	}
}
