package daemonapi

import (
	"fmt"
	"strings"

	"github.com/parley-chat/parley/client"
)

// SystemText says what a system line records, in words; self ("" for
// none) is called "you".
func SystemText(m *client.Message, self string) string {
	sys := m.System
	who := func(user string) string {
		switch {
		case user == "":
			return "someone"
		case user == self:
			return "you"
		}
		return user
	}
	var users []string
	for _, u := range sys.Users {
		users = append(users, who(u))
	}
	actor := who(m.Sender)
	switch sys.Kind {
	case client.SystemJoined:
		return actor + " joined"
	case client.SystemAdded:
		return actor + " added " + strings.Join(users, ", ")
	case client.SystemLeft:
		return actor + " left"
	case client.SystemRemoved:
		return actor + " removed " + strings.Join(users, ", ")
	case client.SystemDeviceAdded:
		return actor + " added " + devicesOf(m, self)
	case client.SystemDeviceRemoved:
		return actor + " removed " + devicesOf(m, self)
	case client.SystemRenamed:
		switch {
		case sys.Value == "":
			return actor + " removed the conversation's name"
		case sys.Previous == "":
			return actor + ` named the conversation "` + sys.Value + `"`
		}
		return actor + ` renamed the conversation to "` + sys.Value + `"`
	case client.SystemTopicChanged:
		switch {
		case sys.Value == "":
			return actor + " cleared the topic"
		case sys.Previous == "":
			return actor + ` set the topic to "` + sys.Value + `"`
		}
		return actor + ` changed the topic to "` + sys.Value + `"`
	case client.SystemRoleChanged:
		if sys.Value == "admin" {
			return actor + " made " + strings.Join(users, ", ") + " an admin"
		}
		return actor + " made " + strings.Join(users, ", ") + " a member (no longer admin)"
	case client.SystemPolicyChanged:
		return actor + " set the policy: " + sys.Value
	case client.SystemTimerChanged:
		if sys.Value == "off" {
			return actor + " turned disappearing messages off"
		}
		return actor + " set disappearing messages to " + sys.Value
	case client.SystemChangeIgnored:
		return actor + "'s " + sys.Value + " was ignored: the conversation's policy does not allow it"
	case client.SystemNoRoles:
		return NoRolesText(sys.Users, self)
	}
	return actor + " changed the conversation (" + string(sys.Kind) + ")"
}

// NoRolesText says that a group was created without roles because the
// clients of users do not support them yet ("bob's client does not
// support roles yet: this group has no admins"); self is called "you".
func NoRolesText(users []string, self string) string {
	const tail = " yet: this group has no admins"
	if len(users) == 1 && users[0] == self {
		return "your other device does not support roles" + tail
	}
	if len(users) == 1 {
		return users[0] + "'s client does not support roles" + tail
	}
	var names []string
	for _, u := range users {
		if u == self {
			u = "your other device"
		}
		names = append(names, u)
	}
	return "the clients of " + strings.Join(names, ", ") + " do not support roles" + tail
}

// devicesOf names the devices of a device_added or device_removed line:
// "a device (ID)" when the actor's own, else "a device of bob (ID)",
// and "2 devices" for more.
func devicesOf(m *client.Message, self string) string {
	sys := m.System
	what := "a device"
	if len(sys.Devices) != 1 {
		what = fmt.Sprintf("%d devices", len(sys.Devices))
	}
	if len(sys.Users) > 0 && sys.Users[0] != m.Sender {
		owner := sys.Users[0]
		if owner == self {
			owner = "yours"
		}
		what += " of " + owner
	}
	var ids []string
	for _, d := range sys.Devices {
		ids = append(ids, string(d))
	}
	if len(ids) == 0 {
		return what
	}
	return what + " (" + strings.Join(ids, ", ") + ")"
}
