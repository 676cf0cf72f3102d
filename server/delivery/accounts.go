package delivery

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// Session is an authenticated device, the caller of most methods.
type Session struct {
	Device    store.DeviceID // Device is the authenticated device.
	User      store.UserID   // User owns Device.
	UserName  string         // UserName is the account name.
	Admin     bool           // Admin is true for administrators.
	Expires   time.Time      // Expires ends the session.
	tokenHash []byte
}

// Info returns the server's description, with the delivery limits filled
// in; the HTTP adapter adds its own limits.
func (s *Service) Info() protocol.ServerInfo {
	return protocol.ServerInfo{
		Name:             s.cfg.ServerName,
		Version:          s.cfg.Version,
		Protocols:        []int{protocol.Version},
		CipherSuites:     append([]uint16(nil), s.cfg.CipherSuites...),
		OpenRegistration: s.cfg.OpenRegistration,
		Limits: protocol.Limits{
			MaxMessageBytes:         s.cfg.MaxMessageBytes,
			MaxKeyPackagesPerUpload: s.cfg.MaxKeyPackagesPerUpload,
			MaxPageEntries:          s.cfg.MaxPageEntries,
			RetentionSeconds:        int64(s.cfg.Retention / time.Second),
		},
	}
}

// maxProofBytes bounds a proof of possession: the longest signature of a
// supported scheme (ECDSA P-521, ASN.1 DER) is 139 bytes.
const maxProofBytes = 256

// checkNewDevice validates a device being registered for user with the
// identity key: its id and key, a certificate for exactly this server,
// user, device and key that verifies under the identity key and is valid
// now (DeviceCertificate.CheckTime), and the device's proof that it holds
// its signature key (checkDeviceProof). It returns the certificate.
func (s *Service) checkNewDevice(d protocol.NewDevice, user string, identityKey []byte) (*protocol.DeviceCertificate, error) {
	if !protocol.ValidDeviceID(d.ID) {
		return nil, perr(protocol.CodeBadRequest, "device id %.70q is not 1 to 64 letters, digits, '_' or '-'", string(d.ID))
	}
	if err := checkKey(d.Scheme, d.SignatureKey); err != nil {
		code := protocol.CodeBadRequest
		if d.Scheme != protocol.SchemeEd25519 && d.Scheme != protocol.SchemeECDSAP256SHA256 && d.Scheme != protocol.SchemeECDSAP384SHA384 && d.Scheme != protocol.SchemeECDSAP521SHA512 {
			code = protocol.CodeUnsupported
		}
		return nil, perr(code, "device %q: %v", d.ID, err)
	}
	c, err := protocol.VerifyDeviceCertificate(d.Certificate, identityKey, s.cfg.ServerName, user, d.ID, d.SignatureKey)
	if err != nil {
		return nil, perr(protocol.CodeBadCertificate, "device %q: %v", d.ID, err)
	}
	if c.Scheme != d.Scheme {
		return nil, perr(protocol.CodeBadCertificate, "device %q: certificate names scheme %#04x, device %#04x", d.ID, uint16(c.Scheme), uint16(d.Scheme))
	}
	if err := c.CheckTime(s.now()); err != nil {
		return nil, perr(protocol.CodeBadCertificate, "device %q: %v", d.ID, err)
	}
	return c, s.checkDeviceProof(d, user)
}

// checkDeviceProof checks that the device proved it holds its signature
// key: NewDevice.Proof is its signature over protocol.DeviceProofSignedData
// for this server, the user, the device and its certificate.
func (s *Service) checkDeviceProof(d protocol.NewDevice, user string) error {
	switch {
	case len(d.Proof) == 0:
		return perr(protocol.CodeBadCertificate, "device %q: no proof of possession of the device key (proof: the device key's signature over the device proof data)", d.ID)
	case len(d.Proof) > maxProofBytes:
		return perr(protocol.CodeBadCertificate, "device %q: proof of possession is %d bytes, at most %d", d.ID, len(d.Proof), maxProofBytes)
	}
	msg := protocol.DeviceProofSignedData(s.cfg.ServerName, user, d.ID, d.Certificate)
	if !verifySignature(d.Scheme, d.SignatureKey, msg, d.Proof) {
		return perr(protocol.CodeBadCertificate, "device %q: proof of possession of the device key does not verify: it must be the device key's signature over the device proof data of server %q, user %q, the device id and the certificate", d.ID, s.cfg.ServerName, user)
	}
	return nil
}

// Register creates an account with its first device. Without open
// registration it needs a valid invite.
func (s *Service) Register(ctx context.Context, req protocol.RegisterRequest) (protocol.RegisterResponse, error) {
	if !protocol.ValidUserName(req.Name) {
		return protocol.RegisterResponse{}, perr(protocol.CodeBadRequest, "user name %.70q is not 1 to 64 lowercase letters, digits, '.', '_' or '-'", req.Name)
	}
	if len(req.IdentityKey) != 32 {
		return protocol.RegisterResponse{}, perr(protocol.CodeBadRequest, "identity key is %d bytes, want 32 (Ed25519)", len(req.IdentityKey))
	}
	if _, err := s.checkNewDevice(req.Device, req.Name, req.IdentityKey); err != nil {
		return protocol.RegisterResponse{}, err
	}
	nu := store.NewUser{
		Name: req.Name, IdentityKey: req.IdentityKey, Created: s.now().UTC(),
		Device: store.Device{ID: store.DeviceID(req.Device.ID), Scheme: uint16(req.Device.Scheme), SignatureKey: req.Device.SignatureKey,
			Certificate: req.Device.Certificate, Created: s.now().UTC()},
	}
	switch {
	case req.Invite != "":
		nu.InviteHash = hashSecret(req.Invite)
	case !s.cfg.OpenRegistration:
		return protocol.RegisterResponse{}, perr(protocol.CodeInviteInvalid, "registration needs an invite")
	}
	u, d, err := s.st.CreateUser(ctx, nu)
	switch {
	case errors.Is(err, store.ErrInviteInvalid):
		return protocol.RegisterResponse{}, perr(protocol.CodeInviteInvalid, "invite is unknown, used up or expired")
	case errors.Is(err, store.ErrConflict):
		return protocol.RegisterResponse{}, perr(protocol.CodeConflict, "user %q, device %q or its key already exists", req.Name, req.Device.ID)
	case err != nil:
		return protocol.RegisterResponse{}, internal("register "+req.Name, err)
	}
	s.log.Info("user registered", "user", u.Name, "device", d.ID, "invited", req.Invite != "")
	return protocol.RegisterResponse{User: userInfo(u, []store.Device{d}, false)}, nil
}

// userInfo converts a user and its devices.
func userInfo(u store.User, ds []store.Device, showAdmin bool) protocol.UserInfo {
	ui := protocol.UserInfo{Name: u.Name, IdentityKey: u.IdentityKey, Disabled: u.Disabled, Created: u.Created.UTC(), Devices: []protocol.DeviceInfo{}}
	if showAdmin {
		ui.Admin = u.Admin
	}
	for _, d := range ds {
		ui.Devices = append(ui.Devices, deviceInfo(d))
	}
	return ui
}

func deviceInfo(d store.Device) protocol.DeviceInfo {
	di := protocol.DeviceInfo{ID: protocol.DeviceID(d.ID), SignatureKey: d.SignatureKey, Certificate: d.Certificate, Created: d.Created.UTC(), Disabled: d.Disabled}
	if !d.Revoked.IsZero() {
		r := d.Revoked.UTC()
		di.Revoked = &r
	}
	return di
}

// Challenge returns a single-use challenge for the device. Unknown users
// and devices get a challenge too (never stored), so the answer does not
// reveal which exist.
func (s *Service) Challenge(ctx context.Context, req protocol.ChallengeRequest) (protocol.ChallengeResponse, error) {
	if !protocol.ValidUserName(req.User) || !protocol.ValidDeviceID(req.Device) {
		return protocol.ChallengeResponse{}, perr(protocol.CodeBadRequest, "invalid user name or device id")
	}
	nonce, err := s.randomBytes(32)
	if err != nil {
		return protocol.ChallengeResponse{}, err
	}
	exp := s.now().Add(s.cfg.ChallengeTTL).UTC()
	if _, d, ok := s.deviceOf(ctx, req.User, store.DeviceID(req.Device)); ok && d.Active() {
		if err := s.st.CreateChallenge(ctx, store.Challenge{Nonce: nonce, Device: d.ID, Expires: exp}); err != nil {
			return protocol.ChallengeResponse{}, internal("create challenge for device "+string(d.ID), err)
		}
	}
	return protocol.ChallengeResponse{Challenge: nonce, Expires: exp}, nil
}

// deviceOf returns the user and device when the device belongs to the user.
func (s *Service) deviceOf(ctx context.Context, user string, id store.DeviceID) (store.User, store.Device, bool) {
	u, err := s.st.UserByName(ctx, user)
	if err != nil {
		return store.User{}, store.Device{}, false
	}
	d, err := s.st.Device(ctx, id)
	if err != nil || d.User != u.ID {
		return store.User{}, store.Device{}, false
	}
	return u, d, true
}

// errAuth is the one answer to every failed authentication, so that it
// reveals nothing about which part failed.
func errAuth() error {
	return perr(protocol.CodeUnauthorized, "authentication failed: unknown, expired or used challenge, bad signature, or inactive device")
}

// CreateSession checks a signed challenge and returns a new session token.
func (s *Service) CreateSession(ctx context.Context, req protocol.SessionRequest) (protocol.SessionResponse, error) {
	if !protocol.ValidUserName(req.User) || !protocol.ValidDeviceID(req.Device) || len(req.Challenge) == 0 || len(req.Challenge) > 64 || len(req.Signature) > 256 {
		return protocol.SessionResponse{}, perr(protocol.CodeBadRequest, "invalid user name, device id, challenge or signature")
	}
	now := s.now()
	ch, err := s.st.ConsumeChallenge(ctx, req.Challenge, store.DeviceID(req.Device), now)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.SessionResponse{}, errAuth()
	} else if err != nil {
		return protocol.SessionResponse{}, internal("consume challenge", err)
	}
	u, d, ok := s.deviceOf(ctx, req.User, ch.Device)
	if !ok || !d.Active() || u.Disabled {
		return protocol.SessionResponse{}, errAuth()
	}
	msg := protocol.SessionSignedData(s.cfg.ServerName, u.Name, protocol.DeviceID(d.ID), req.Challenge)
	if !verifySignature(protocol.SignatureScheme(d.Scheme), d.SignatureKey, msg, req.Signature) {
		s.log.Info("authentication failed", "user", u.Name, "device", d.ID, "reason", "signature")
		return protocol.SessionResponse{}, errAuth()
	}
	token, err := s.newSecret()
	if err != nil {
		return protocol.SessionResponse{}, err
	}
	exp := now.Add(s.cfg.SessionTTL).UTC()
	if err := s.st.CreateSession(ctx, store.Session{TokenHash: hashSecret(token), Device: d.ID, User: u.ID, Created: now, Expires: exp}); err != nil {
		return protocol.SessionResponse{}, internal("create session for device "+string(d.ID), err)
	}
	s.log.Info("session created", "user", u.Name, "device", d.ID)
	return protocol.SessionResponse{Token: token, Expires: exp}, nil
}

// Authenticate returns the session of a bearer token.
func (s *Service) Authenticate(ctx context.Context, token string) (*Session, error) {
	if token == "" || len(token) > 256 {
		return nil, perr(protocol.CodeUnauthorized, "missing or invalid session token")
	}
	th := hashSecret(token)
	ss, err := s.st.Session(ctx, th, s.now())
	if errors.Is(err, store.ErrNotFound) {
		return nil, perr(protocol.CodeUnauthorized, "session token unknown or expired")
	} else if err != nil {
		return nil, internal("look up session", err)
	}
	u, err := s.st.User(ctx, ss.User)
	if err != nil {
		return nil, internal("look up session user", err)
	}
	if u.Disabled {
		return nil, perr(protocol.CodeUnauthorized, "account disabled")
	}
	return &Session{Device: ss.Device, User: ss.User, UserName: u.Name, Admin: u.Admin, Expires: ss.Expires, tokenHash: th}, nil
}

// Logout ends the session.
func (s *Service) Logout(ctx context.Context, sess *Session) error {
	if err := s.st.DeleteSession(ctx, sess.tokenHash); err != nil && !errors.Is(err, store.ErrNotFound) {
		return internal("delete session", err)
	}
	s.notify.Publish(Event{Topic: Topic{Device: sess.Device}}) // connections recheck their sessions
	return nil
}

// User returns a user's public record. Admin status is shown to admins.
func (s *Service) User(ctx context.Context, sess *Session, name string) (protocol.UserInfo, error) {
	if !protocol.ValidUserName(name) {
		return protocol.UserInfo{}, perr(protocol.CodeBadRequest, "invalid user name %.70q", name)
	}
	u, err := s.st.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.UserInfo{}, perr(protocol.CodeUnknownUser, "no user %q", name)
	} else if err != nil {
		return protocol.UserInfo{}, internal("user "+name, err)
	}
	ds, err := s.st.Devices(ctx, u.ID)
	if err != nil {
		return protocol.UserInfo{}, internal("devices of "+name, err)
	}
	ui := userInfo(u, ds, sess.Admin)
	if err := s.withRevocations(ctx, u, &ui); err != nil {
		return protocol.UserInfo{}, err
	}
	if u.ID == sess.User {
		// When a device last signed in, and its sealed name, are for
		// its own account's eyes.
		for i, d := range ds {
			if i >= len(ui.Devices) || ui.Devices[i].ID != protocol.DeviceID(d.ID) {
				continue
			}
			if !d.LastSeen.IsZero() {
				seen := d.LastSeen.UTC()
				ui.Devices[i].LastSeen = &seen
			}
			ui.Devices[i].SealedName = d.SealedName
		}
	}
	return ui, nil
}

// LookupUsers returns the public records of a batch of users, as User
// does for one, in the order asked; names of no user (or invalid ones)
// are listed apart. The HTTP adapter rate-limits it per looked-up user.
func (s *Service) LookupUsers(ctx context.Context, sess *Session, req protocol.LookupUsersRequest) (protocol.LookupUsersResponse, error) {
	if err := req.Validate(); err != nil {
		return protocol.LookupUsersResponse{}, err
	}
	out := protocol.LookupUsersResponse{Users: make([]protocol.UserInfo, 0, len(req.Users))}
	for _, name := range req.Users {
		ui, err := s.User(ctx, sess, name)
		if pe, ok := AsProtocolError(err); err != nil && ok && (pe.Code == protocol.CodeUnknownUser || pe.Code == protocol.CodeBadRequest) {
			out.Unknown = append(out.Unknown, name)
			continue
		}
		if err != nil {
			return protocol.LookupUsersResponse{}, err
		}
		out.Users = append(out.Users, ui)
	}
	return out, nil
}

// AddDevice registers another device of the caller's user; its
// certificate must be signed by the user's identity key and the device
// must prove that it holds its key (checkNewDevice).
func (s *Service) AddDevice(ctx context.Context, sess *Session, req protocol.AddDeviceRequest) (protocol.DeviceInfo, error) {
	u, err := s.st.User(ctx, sess.User)
	if err != nil {
		return protocol.DeviceInfo{}, internal("add device: user", err)
	}
	if _, err := s.checkNewDevice(req.Device, u.Name, u.IdentityKey); err != nil {
		return protocol.DeviceInfo{}, err
	}
	d, err := s.st.AddDevice(ctx, store.Device{ID: store.DeviceID(req.Device.ID), User: u.ID, Scheme: uint16(req.Device.Scheme),
		SignatureKey: req.Device.SignatureKey, Certificate: req.Device.Certificate, Created: s.now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		return protocol.DeviceInfo{}, perr(protocol.CodeConflict, "device %q or its key already exists", req.Device.ID)
	} else if err != nil {
		return protocol.DeviceInfo{}, internal("add device "+string(req.Device.ID), err)
	}
	s.log.Info("device added", "user", u.Name, "device", d.ID, "by", sess.Device)
	s.notify.Publish(Event{Topic: Topic{Device: d.ID}})
	return deviceInfo(d), nil
}

// decoyIdentityKey stands for the identity key of a user that does not
// exist when RecoverDevice checks a certificate, so that the answer is
// the same as for a user whose key did not sign it. Nobody knows its
// private key (it is a hash, not a chosen key).
var decoyIdentityKey = func() []byte {
	h := sha256.Sum256([]byte("parley recovery: no such user"))
	return h[:]
}()

// RecoverDevice registers a device of a user without a session: a device
// restored from a backup of the account, when no device of the account
// is at hand to add it (AddDevice). The certificate is the
// authorization — only holders of the user's identity private key can
// make one — so it must verify under the stored identity key
// (checkNewDevice, with the device's proof of possession) and be fresh:
// made at most protocol.MaxRecoveryCertificateAge ago. An unknown user
// gets the answer of a certificate that does not verify, so the endpoint
// does not tell which users exist. A replayed request registers nothing
// (device ids and keys are registered once, ever: conflict). The HTTP
// adapter limits it per address, as registration.
func (s *Service) RecoverDevice(ctx context.Context, req protocol.RecoverDeviceRequest) (protocol.DeviceInfo, error) {
	if !protocol.ValidUserName(req.User) {
		return protocol.DeviceInfo{}, perr(protocol.CodeBadRequest, "user name %.70q is not 1 to 64 lowercase letters, digits, '.', '_' or '-'", req.User)
	}
	u, err := s.st.UserByName(ctx, req.User)
	known := err == nil
	switch {
	case errors.Is(err, store.ErrNotFound):
		u = store.User{Name: req.User, IdentityKey: decoyIdentityKey}
	case err != nil:
		return protocol.DeviceInfo{}, internal("recover device: user", err)
	}
	cert, err := s.checkNewDevice(req.Device, u.Name, u.IdentityKey)
	if err != nil {
		return protocol.DeviceInfo{}, err
	}
	if !known {
		// Unreachable unless the decoy's private key is found.
		return protocol.DeviceInfo{}, perr(protocol.CodeBadCertificate, "device %q: the certificate does not verify", req.Device.ID)
	}
	if age := s.now().Sub(cert.Created); age > protocol.MaxRecoveryCertificateAge {
		return protocol.DeviceInfo{}, perr(protocol.CodeBadCertificate, "device %q: a recovery needs a certificate made at most %v before it; this one was made %s, %v ago (check the device's clock)",
			req.Device.ID, protocol.MaxRecoveryCertificateAge, cert.Created.UTC().Format(time.RFC3339), age.Truncate(time.Second))
	}
	if u.Disabled {
		return protocol.DeviceInfo{}, perr(protocol.CodeForbidden, "account %q is disabled", u.Name)
	}
	d, err := s.st.AddDevice(ctx, store.Device{ID: store.DeviceID(req.Device.ID), User: u.ID, Scheme: uint16(req.Device.Scheme),
		SignatureKey: req.Device.SignatureKey, Certificate: req.Device.Certificate, Created: s.now().UTC()})
	if errors.Is(err, store.ErrConflict) {
		return protocol.DeviceInfo{}, perr(protocol.CodeConflict, "device %q or its key already exists", req.Device.ID)
	} else if err != nil {
		return protocol.DeviceInfo{}, internal("recover device "+string(req.Device.ID), err)
	}
	s.log.Info("device recovered", "user", u.Name, "device", d.ID)
	s.notify.Publish(Event{Topic: Topic{Device: d.ID}})
	return deviceInfo(d), nil
}

// RevokeDevice revokes one of the caller user's devices (the caller's own
// device included, which ends the caller's sessions). The request carries
// the user's revocation statement, which must verify under the user's
// identity key; the server keeps it and serves it with the device. The
// connected members of the device's conversations are told, so that they
// remove it.
func (s *Service) RevokeDevice(ctx context.Context, sess *Session, id protocol.DeviceID, req protocol.RevokeDeviceRequest) error {
	d, err := s.st.Device(ctx, store.DeviceID(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.User != sess.User) {
		return perr(protocol.CodeUnknownDevice, "the caller's user has no device %.70q", string(id))
	} else if err != nil {
		return internal("revoke device", err)
	}
	if err := s.checkRevocation(ctx, sess, d.ID, req.Revocation); err != nil {
		return err
	}
	if err := s.st.RevokeDevice(ctx, d.ID, s.now().UTC(), req.Revocation); err != nil {
		return internal("revoke device "+string(d.ID), err)
	}
	s.log.Info("device revoked", "user", sess.UserName, "device", d.ID, "by", sess.Device)
	s.notify.Publish(Event{Topic: Topic{Device: d.ID}})
	s.notifyMembersOf(ctx, d.ID)
	return nil
}

// SetDeviceName stores the sealed name of one of the caller user's
// devices, which the account's devices read in its device list. The
// server cannot read it; it only bounds its size.
func (s *Service) SetDeviceName(ctx context.Context, sess *Session, id protocol.DeviceID, req protocol.SetDeviceNameRequest) error {
	if len(req.SealedName) > protocol.MaxSealedDeviceNameBytes {
		return perr(protocol.CodeBadRequest, "sealed device name of %d bytes, more than %d", len(req.SealedName), protocol.MaxSealedDeviceNameBytes)
	}
	d, err := s.st.Device(ctx, store.DeviceID(id))
	if errors.Is(err, store.ErrNotFound) || (err == nil && d.User != sess.User) {
		return perr(protocol.CodeUnknownDevice, "the caller's user has no device %.70q", string(id))
	} else if err != nil {
		return internal("set device name", err)
	}
	if err := s.st.SetDeviceName(ctx, d.ID, req.SealedName); err != nil {
		return internal("set the name of device "+string(d.ID), err)
	}
	return nil
}

// CreateInvite creates an invite allowing uses registrations for ttl and
// returns it with its code, which is shown only here. It does no
// authorization: the HTTP adapter checks for an admin, the parleyd admin
// command runs locally.
func (s *Service) CreateInvite(ctx context.Context, uses int, ttl time.Duration) (protocol.InviteInfo, error) {
	if uses < 1 || uses > 1_000_000 {
		return protocol.InviteInfo{}, perr(protocol.CodeBadRequest, "invite uses %d must be 1 to 1000000", uses)
	}
	if ttl <= 0 || ttl > 10*365*24*time.Hour {
		return protocol.InviteInfo{}, perr(protocol.CodeBadRequest, "invite lifetime %v must be positive and at most 10 years", ttl)
	}
	code, err := s.newSecret()
	if err != nil {
		return protocol.InviteInfo{}, err
	}
	now := s.now().UTC()
	inv, err := s.st.CreateInvite(ctx, store.Invite{CodeHash: hashSecret(code), UsesLeft: uses, Expires: now.Add(ttl), Created: now})
	if err != nil {
		return protocol.InviteInfo{}, internal("create invite", err)
	}
	s.log.Info("invite created", "invite", inv.ID, "uses", uses, "expires", inv.Expires)
	ii := inviteInfo(inv)
	ii.Code = code
	return ii, nil
}

func inviteInfo(inv store.Invite) protocol.InviteInfo {
	return protocol.InviteInfo{ID: inv.ID, UsesLeft: inv.UsesLeft, Expires: inv.Expires.UTC(), Created: inv.Created.UTC()}
}

// Invites lists the invites (without codes).
func (s *Service) Invites(ctx context.Context) (protocol.InviteList, error) {
	invs, err := s.st.Invites(ctx)
	if err != nil {
		return protocol.InviteList{}, internal("list invites", err)
	}
	out := protocol.InviteList{Invites: []protocol.InviteInfo{}}
	for _, inv := range invs {
		out.Invites = append(out.Invites, inviteInfo(inv))
	}
	return out, nil
}

// DeleteInvite deletes an invite.
func (s *Service) DeleteInvite(ctx context.Context, id int64) error {
	err := s.st.DeleteInvite(ctx, id)
	if errors.Is(err, store.ErrNotFound) {
		return perr(protocol.CodeNotFound, "no invite %d", id)
	} else if err != nil {
		return internal(fmt.Sprintf("delete invite %d", id), err)
	}
	s.log.Info("invite deleted", "invite", id)
	return nil
}

// Users lists every user with devices and admin flags.
func (s *Service) Users(ctx context.Context) (protocol.UserList, error) {
	us, err := s.st.Users(ctx)
	if err != nil {
		return protocol.UserList{}, internal("list users", err)
	}
	out := protocol.UserList{Users: []protocol.UserInfo{}}
	for _, u := range us {
		ds, err := s.st.Devices(ctx, u.ID)
		if err != nil {
			return protocol.UserList{}, internal("list devices of "+u.Name, err)
		}
		out.Users = append(out.Users, userInfo(u, ds, true))
	}
	return out, nil
}

// UpdateUser disables or enables a user and grants or removes
// administration (nil fields unchanged). No authorization: see
// CreateInvite.
func (s *Service) UpdateUser(ctx context.Context, name string, upd protocol.AdminUserUpdate) (protocol.UserInfo, error) {
	u, err := s.st.UserByName(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.UserInfo{}, perr(protocol.CodeUnknownUser, "no user %.70q", name)
	} else if err != nil {
		return protocol.UserInfo{}, internal("update user", err)
	}
	if upd.Disabled != nil {
		if err := s.st.SetUserDisabled(ctx, u.ID, *upd.Disabled); err != nil {
			return protocol.UserInfo{}, internal("disable user "+name, err)
		}
		s.log.Info("user updated", "user", name, "disabled", *upd.Disabled)
		if ds, err := s.st.Devices(ctx, u.ID); err == nil {
			for _, d := range ds {
				s.notify.Publish(Event{Topic: Topic{Device: d.ID}})
			}
		}
	}
	if upd.Admin != nil {
		if err := s.st.SetUserAdmin(ctx, u.ID, *upd.Admin); err != nil {
			return protocol.UserInfo{}, internal("set admin "+name, err)
		}
		s.log.Info("user updated", "user", name, "admin", *upd.Admin)
	}
	u, err = s.st.User(ctx, u.ID)
	if err != nil {
		return protocol.UserInfo{}, internal("update user", err)
	}
	ds, err := s.st.Devices(ctx, u.ID)
	if err != nil {
		return protocol.UserInfo{}, internal("update user", err)
	}
	return userInfo(u, ds, true), nil
}

// UpdateDevice disables or enables a device. No authorization: see
// CreateInvite. The connected members of a disabled device's
// conversations are told, so that they remove it.
func (s *Service) UpdateDevice(ctx context.Context, id protocol.DeviceID, upd protocol.AdminDeviceUpdate) (protocol.DeviceInfo, error) {
	d, err := s.st.Device(ctx, store.DeviceID(id))
	if errors.Is(err, store.ErrNotFound) {
		return protocol.DeviceInfo{}, perr(protocol.CodeUnknownDevice, "no device %.70q", string(id))
	} else if err != nil {
		return protocol.DeviceInfo{}, internal("update device", err)
	}
	if upd.Disabled != nil {
		if err := s.st.SetDeviceDisabled(ctx, d.ID, *upd.Disabled); err != nil {
			return protocol.DeviceInfo{}, internal("disable device "+string(d.ID), err)
		}
		s.log.Info("device updated", "device", d.ID, "disabled", *upd.Disabled)
		s.notify.Publish(Event{Topic: Topic{Device: d.ID}})
		if *upd.Disabled {
			s.notifyMembersOf(ctx, d.ID)
		}
		d.Disabled = *upd.Disabled
	}
	return deviceInfo(d), nil
}

// Stats returns server-wide counts.
func (s *Service) Stats(ctx context.Context) (protocol.Stats, error) {
	st, err := s.st.Stats(ctx)
	if err != nil {
		return protocol.Stats{}, internal("stats", err)
	}
	return protocol.Stats{Users: st.Users, Devices: st.Devices, Conversations: st.Conversations, Entries: st.Entries,
		InboxEntries: st.InboxEntries, KeyPackages: st.KeyPackages, Attachments: st.Blobs, AttachmentBytes: st.BlobBytes,
		Connections: s.conns.Load()}, nil
}
