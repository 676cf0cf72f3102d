package daemonapi

import (
	"context"
	"encoding/json"

	"github.com/parley-chat/parley/client"
	"github.com/parley-chat/parley/protocol"
)

// The methods of the account's own devices (parley devices). Linking a
// device needs the user at both devices and is done by the CLI on a
// profile it opens itself.

func init() {
	for name, m := range map[string]method{
		"devices":         devices,
		"rename_device":   renameDevice,
		"revoke_device":   revokeDevice,
		"add_own_devices": addOwnDevices,
	} {
		methods[name] = m
	}
}

// The params and results of the device methods.
type (
	// DevicesResult lists the account's devices (Client.Devices).
	DevicesResult struct {
		Devices []client.OwnDevice `json:"devices"`
	}
	// DeviceParams names one of the account's devices, with a name
	// (rename_device) or force (revoke_device).
	DeviceParams struct {
		Device string `json:"device"`
		Name   string `json:"name,omitempty"`
		Force  bool   `json:"force,omitempty"`
	}
	// AddOwnDevicesResult says where add_own_devices added devices and
	// where it failed.
	AddOwnDevicesResult struct {
		Conversations int                       `json:"conversations"`
		Failed        []protocol.ConversationID `json:"failed"`
	}
)

// deviceParam decodes DeviceParams with a valid device id.
func deviceParam(params json.RawMessage) (DeviceParams, error) {
	var p DeviceParams
	if err := decode(params, &p); err != nil {
		return p, err
	}
	if !protocol.ValidDeviceID(protocol.DeviceID(p.Device)) {
		return p, invalidParams("device: want a device id")
	}
	return p, nil
}

func devices(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	ds, err := s.c.Devices(ctx)
	if err != nil {
		return nil, err
	}
	return DevicesResult{Devices: ds}, nil
}

func renameDevice(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	p, err := deviceParam(params)
	if err != nil {
		return nil, err
	}
	if err := s.c.RenameDevice(ctx, protocol.DeviceID(p.Device), p.Name); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func revokeDevice(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	p, err := deviceParam(params)
	if err != nil {
		return nil, err
	}
	if err := s.c.RevokeOwnDevice(ctx, protocol.DeviceID(p.Device), p.Force); err != nil {
		return nil, err
	}
	return OK{true}, nil
}

func addOwnDevices(ctx context.Context, s *Server, c *conn, params json.RawMessage) (any, error) {
	if err := decode(params, &struct{}{}); err != nil {
		return nil, err
	}
	n, failed, err := s.c.AddOwnDevices(ctx)
	if err != nil {
		return nil, err
	}
	return AddOwnDevicesResult{Conversations: n, Failed: failed}, nil
}

// Devices lists the account's devices (Client.Devices).
func (c *Client) Devices(ctx context.Context) ([]client.OwnDevice, error) {
	var r DevicesResult
	if err := c.Call(ctx, "devices", nil, &r); err != nil {
		return nil, err
	}
	return r.Devices, nil
}

// RenameDevice names one of the account's devices in the profile.
func (c *Client) RenameDevice(ctx context.Context, device protocol.DeviceID, name string) error {
	return c.Call(ctx, "rename_device", DeviceParams{Device: string(device), Name: name}, nil)
}

// RevokeOwnDevice revokes one of the account's devices (the last active
// one only with force).
func (c *Client) RevokeOwnDevice(ctx context.Context, device protocol.DeviceID, force bool) error {
	return c.Call(ctx, "revoke_device", DeviceParams{Device: string(device), Force: force}, nil)
}

// AddOwnDevices adds the account's devices to the conversations that
// lack them.
func (c *Client) AddOwnDevices(ctx context.Context) (int, []protocol.ConversationID, error) {
	var r AddOwnDevicesResult
	if err := c.Call(ctx, "add_own_devices", nil, &r); err != nil {
		return 0, nil, err
	}
	return r.Conversations, r.Failed, nil
}
