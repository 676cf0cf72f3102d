package client_test

import (
	"context"
	"testing"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// names maps the devices of a list to their names.
func names(t *testing.T, d *device) map[protocol.DeviceID]string {
	t.Helper()
	ds, err := d.c.Devices(context.Background())
	if err != nil {
		t.Fatalf("%s: devices: %v", d.name, err)
	}
	out := map[protocol.DeviceID]string{}
	for _, x := range ds {
		out[x.ID] = x.Name
	}
	return out
}

// TestSharedDeviceNames: a name given on one device of an account is
// seen by its other devices (sealed at the server under a key of the
// account); a name moved by the server to another device does not open
// and is ignored; a name removed on one device is removed on the
// others.
func TestSharedDeviceNames(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	s := newServer(t)
	alice := register(t, s, "alice")
	phone := linkDevice(t, s, alice, "phone")
	desk, mobile := mustWhoami(t, alice).Device, mustWhoami(t, phone).Device

	if err := alice.c.RenameDevice(ctx, desk, "desk"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, phone); got[desk] != "desk" || got[mobile] != "phone" {
		t.Errorf("the phone's names after alice renamed her desk: %v", got)
	}
	if err := phone.c.RenameDevice(ctx, mobile, "my phone"); err != nil {
		t.Fatal(err)
	}
	if got := names(t, alice); got[desk] != "desk" || got[mobile] != "my phone" {
		t.Errorf("alice's names after the phone renamed itself: %v", got)
	}

	// The server copies the desk's sealed name onto the phone: it does
	// not open there, and the name alice knows stays.
	d, err := s.st.Device(ctx, store.DeviceID(desk))
	if err != nil || len(d.SealedName) == 0 {
		t.Fatalf("the desk's sealed name at the server: %x, %v", d.SealedName, err)
	}
	if err := s.st.SetDeviceName(ctx, store.DeviceID(mobile), d.SealedName); err != nil {
		t.Fatal(err)
	}
	if got := names(t, alice); got[mobile] != "my phone" {
		t.Errorf("alice's name of the phone after the server moved a name: %q", got[mobile])
	}

	// Removed on the desk, the name is gone on the phone too.
	if err := alice.c.RenameDevice(ctx, mobile, ""); err != nil {
		t.Fatal(err)
	}
	if got := names(t, phone); got[mobile] != "" || got[desk] != "desk" {
		t.Errorf("the phone's names after alice removed its name: %v", got)
	}
	if got := names(t, alice); got[mobile] != "" {
		t.Errorf("alice's name of the phone after removing it: %q", got[mobile])
	}
}
