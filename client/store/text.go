package store

import (
	"encoding/json"
	"fmt"
	"strconv"
)

var stateNames = [...]string{Received: "received", Pending: "pending", Sent: "sent", Read: "read", Failed: "failed"}

// String names the state ("received", "pending", "sent", "read",
// "failed").
func (s DeliveryState) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "state(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText encodes the state by name, so that JSON carries the name.
func (s DeliveryState) MarshalText() ([]byte, error) {
	if int(s) >= len(stateNames) {
		return nil, fmt.Errorf("store: marshal delivery state %d: unknown state", uint8(s))
	}
	return []byte(stateNames[s]), nil
}

// UnmarshalText decodes a state name written by MarshalText.
func (s *DeliveryState) UnmarshalText(b []byte) error {
	for i, n := range stateNames {
		if n == string(b) {
			*s = DeliveryState(i)
			return nil
		}
	}
	return fmt.Errorf("store: unmarshal delivery state %q: unknown state", b)
}

// UnmarshalJSON decodes a state name, or the number that stores written
// before states had names hold.
func (s *DeliveryState) UnmarshalJSON(b []byte) error {
	var n uint8
	if err := json.Unmarshal(b, &n); err == nil {
		if int(n) >= len(stateNames) {
			return fmt.Errorf("store: unmarshal delivery state %d: unknown state", n)
		}
		*s = DeliveryState(n)
		return nil
	}
	var name string
	if err := json.Unmarshal(b, &name); err != nil {
		return fmt.Errorf("store: unmarshal delivery state %s: want a name or a number", b)
	}
	return s.UnmarshalText([]byte(name))
}
