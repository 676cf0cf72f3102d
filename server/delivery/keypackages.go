package delivery

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// UploadKeyPackages validates and stores a batch of the caller device's
// KeyPackages, all or none. Each must be valid now, of an accepted cipher
// suite, carry the device's registered signature key, and a credential
// checkCredential accepts. With req.Replace the batch replaces the
// device's one-time packages of its suites (store.ReplaceKeyPackages) in
// the same transaction; a refused batch deletes nothing.
func (s *Service) UploadKeyPackages(ctx context.Context, sess *Session, req protocol.UploadKeyPackagesRequest) (protocol.UploadKeyPackagesResponse, error) {
	n := len(req.KeyPackages)
	if n == 0 {
		return protocol.UploadKeyPackagesResponse{}, perr(protocol.CodeBadRequest, "no KeyPackages in the upload")
	}
	if n > s.cfg.MaxKeyPackagesPerUpload {
		return protocol.UploadKeyPackagesResponse{}, perr(protocol.CodeTooLarge, "%d KeyPackages in one upload, at most %d", n, s.cfg.MaxKeyPackagesPerUpload)
	}
	d, err := s.st.Device(ctx, sess.Device)
	if err != nil {
		return protocol.UploadKeyPackagesResponse{}, internal("upload KeyPackages: device", err)
	}
	u, err := s.st.User(ctx, sess.User)
	if err != nil {
		return protocol.UploadKeyPackagesResponse{}, internal("upload KeyPackages: user", err)
	}
	now := s.now()
	kps := make([]store.KeyPackage, 0, n)
	var suite uint16
	for i, up := range req.KeyPackages {
		bad := func(format string, args ...any) error {
			e := protocol.NewError(protocol.CodeBadKeyPackage, "KeyPackage %d: "+format, append([]any{i}, args...)...)
			e.Index = &i
			return e
		}
		if int64(len(up.Data)) > s.cfg.MaxMessageBytes {
			return protocol.UploadKeyPackagesResponse{}, bad("%d bytes, at most %d", len(up.Data), s.cfg.MaxMessageBytes)
		}
		info, err := s.fol.ValidateKeyPackage(up.Data, now)
		if err != nil {
			return protocol.UploadKeyPackagesResponse{}, bad("%v", err)
		}
		if !slices.Contains(s.cfg.CipherSuites, info.Suite) {
			return protocol.UploadKeyPackagesResponse{}, bad("cipher suite %#04x is not accepted here", info.Suite)
		}
		if !bytes.Equal(info.SignatureKey, d.SignatureKey) {
			return protocol.UploadKeyPackagesResponse{}, bad("leaf signature key is not the uploading device's registered key")
		}
		if err := s.checkCredential(info.Identity, u, d, true); err != nil {
			return protocol.UploadKeyPackagesResponse{}, bad("%v", err)
		}
		if suite == 0 {
			suite = info.Suite
		}
		for _, k := range kps {
			if bytes.Equal(k.Ref, info.Ref) {
				return protocol.UploadKeyPackagesResponse{}, bad("duplicate of an earlier KeyPackage in the upload")
			}
		}
		kps = append(kps, store.KeyPackage{Ref: info.Ref, Device: d.ID, Suite: info.Suite, Data: up.Data,
			LastResort: up.LastResort || info.LastResort, Expires: info.NotAfter, Created: now})
	}
	add := s.st.AddKeyPackages
	if req.Replace {
		add = s.st.ReplaceKeyPackages
	}
	if err := add(ctx, kps); err != nil {
		switch {
		case errors.Is(err, store.ErrConflict):
			return protocol.UploadKeyPackagesResponse{}, perr(protocol.CodeConflict, "a KeyPackage of the upload was uploaded before")
		case errors.Is(err, store.ErrNotFound):
			return protocol.UploadKeyPackagesResponse{}, perr(protocol.CodeUnauthorized, "device %q is not active", d.ID)
		}
		return protocol.UploadKeyPackagesResponse{}, internal(fmt.Sprintf("store %d KeyPackages of device %q", n, d.ID), err)
	}
	c, err := s.st.CountKeyPackages(ctx, d.ID, suite, now)
	if err != nil {
		return protocol.UploadKeyPackagesResponse{}, internal("count KeyPackages", err)
	}
	s.log.Debug("KeyPackages uploaded", "device", d.ID, "count", n, "replace", req.Replace)
	return protocol.UploadKeyPackagesResponse{Count: poolCount(c)}, nil
}

// checkCredential checks the basic-credential identity of a KeyPackage
// uploaded by device d of user u (nil: not a basic credential). A Parley
// credential (protocol.DecodeCredential) must name this server, the user
// and the device, certify the device's registered scheme and key, and
// verify under the user's identity key; when entering is set (the leaf
// brings the device into use: a KeyPackage, a creation, an add or a
// join), its certificate must also be valid now (CheckTime). A
// certificate of the outdated version 1 is refused. Anything else is
// refused unless AllowForeignCredentials is set.
func (s *Service) checkCredential(identity []byte, u store.User, d store.Device, entering bool) error {
	if identity == nil {
		if s.cfg.AllowForeignCredentials {
			return nil
		}
		return errors.New("credential is not a basic credential; this server accepts only Parley credentials")
	}
	cred, err := protocol.DecodeCredential(identity)
	if errors.Is(err, protocol.ErrCertificateOutdated) {
		return fmt.Errorf("credential: %v", err)
	}
	if err != nil {
		if s.cfg.AllowForeignCredentials {
			return nil
		}
		return fmt.Errorf("credential is not a Parley credential: %v", err)
	}
	if cred.Certificate.Scheme != protocol.SignatureScheme(d.Scheme) {
		return fmt.Errorf("credential certifies signature scheme %#04x, device %q registered %#04x", uint16(cred.Certificate.Scheme), d.ID, d.Scheme)
	}
	if err := cred.Verify(s.cfg.ServerName, u.IdentityKey, u.Name, protocol.DeviceID(d.ID), d.SignatureKey); err != nil {
		return fmt.Errorf("credential: %v", err)
	}
	if entering {
		if err := cred.Certificate.CheckTime(s.now()); err != nil {
			return fmt.Errorf("credential: %v", err)
		}
	}
	return nil
}

// checkLeafCredential checks the credential of a group leaf whose
// signature key is device d's, as checkCredential does for KeyPackages:
// every leaf that enters a group or replaces its leaf node (creation, Add,
// Update, a committer's path, an external join) carries a credential this
// server would accept in a KeyPackage of that device; the certificate of
// a leaf that enters (creation, Add, external join) must be valid now. A
// refusal is a bad_message error prefixed by what (such as "handshake:
// added leaf 3").
func (s *Service) checkLeafCredential(ctx context.Context, what string, l Leaf, d store.Device, entering bool) error {
	u, err := s.st.User(ctx, d.User)
	if err != nil {
		return internal(what+": user of device "+string(d.ID), err)
	}
	if err := s.checkCredential(l.Identity, u, d, entering); err != nil {
		return perr(protocol.CodeBadMessage, "%s: %v", what, err)
	}
	return nil
}

// CountKeyPackages returns the caller device's pool of the suite (the
// first accepted suite when suite is zero).
func (s *Service) CountKeyPackages(ctx context.Context, sess *Session, suite uint16) (protocol.KeyPackageCount, error) {
	if suite == 0 {
		suite = s.cfg.CipherSuites[0]
	}
	c, err := s.st.CountKeyPackages(ctx, sess.Device, suite, s.now())
	if err != nil {
		return protocol.KeyPackageCount{}, internal("count KeyPackages", err)
	}
	return poolCount(c), nil
}

// poolCount is the protocol's view of a device's pool: a last-resort
// package that a claim has returned counts as missing, so that the client
// replaces it (RFC 9420 §16.8: a last-resort package is used as little as
// possible), as it uploads one when there is none.
func poolCount(c store.KeyPackageCount) protocol.KeyPackageCount {
	return protocol.KeyPackageCount{Available: c.Available, LastResort: c.LastResort && !c.LastResortClaimed}
}

// claimBudget is the per-device budget of one-time KeyPackage claims.
func (s *Service) claimBudget() store.ClaimBudget {
	return store.ClaimBudget{Burst: s.cfg.DeviceClaimBurst, Interval: time.Duration(float64(time.Second) / s.cfg.DeviceClaimRate)}
}

// ClaimKeyPackages claims one KeyPackage per active device of a user, or
// of each user of a batch (req.Users, see claimBatch), rate-limited per
// (claiming user, target user) (the HTTP adapter also limits each
// claiming user, per claimed user). Each target device's one-time packages are
// handed out within its claim budget (DeviceClaimRate, DeviceClaimBurst),
// shared by every claimer and node; past it, and when its pool is empty,
// the claim gets the device's last-resort package.
func (s *Service) ClaimKeyPackages(ctx context.Context, sess *Session, req protocol.ClaimKeyPackagesRequest) (protocol.ClaimKeyPackagesResponse, error) {
	if err := req.Validate(); err != nil {
		return protocol.ClaimKeyPackagesResponse{}, err
	}
	if len(req.Users) > 0 {
		return s.claimBatch(ctx, sess, req)
	}
	if !protocol.ValidUserName(req.User) {
		return protocol.ClaimKeyPackagesResponse{}, perr(protocol.CodeBadRequest, "invalid user name %.70q", req.User)
	}
	if !slices.Contains(s.cfg.CipherSuites, req.CipherSuite) {
		return protocol.ClaimKeyPackagesResponse{}, perr(protocol.CodeUnsupported, "cipher suite %#04x is not accepted here", req.CipherSuite)
	}
	u, err := s.st.UserByName(ctx, req.User)
	if errors.Is(err, store.ErrNotFound) {
		return protocol.ClaimKeyPackagesResponse{}, perr(protocol.CodeUnknownUser, "no user %q", req.User)
	} else if err != nil {
		return protocol.ClaimKeyPackagesResponse{}, internal("claim: user", err)
	}
	if ok, wait := s.claims.Allow(fmt.Sprintf("%d>%d", sess.User, u.ID)); !ok {
		return protocol.ClaimKeyPackagesResponse{}, &RateLimitError{Wait: wait, Err: protocol.NewError(protocol.CodeRateLimited, "too many KeyPackage claims for %q; retry later", req.User)}
	}
	kps, err := s.st.ClaimKeyPackagesBudgeted(ctx, u.ID, req.CipherSuite, s.now(), s.claimBudget())
	if errors.Is(err, store.ErrNoKeyPackage) {
		return protocol.ClaimKeyPackagesResponse{}, perr(protocol.CodeNoKeyPackage, "no device of %q has a KeyPackage of suite %#04x", req.User, req.CipherSuite)
	} else if err != nil {
		return protocol.ClaimKeyPackagesResponse{}, internal("claim KeyPackages of "+req.User, err)
	}
	s.metrics.claims.Inc()
	out := protocol.ClaimKeyPackagesResponse{KeyPackages: []protocol.ClaimedKeyPackage{}}
	got := map[store.DeviceID]bool{}
	for _, kp := range kps {
		got[kp.Device] = true
		out.KeyPackages = append(out.KeyPackages, protocol.ClaimedKeyPackage{Device: protocol.DeviceID(kp.Device), Data: kp.Data, LastResort: kp.LastResort})
	}
	ds, err := s.st.Devices(ctx, u.ID)
	if err == nil {
		for _, d := range ds {
			if d.Active() && !got[d.ID] {
				out.Missing = append(out.Missing, protocol.DeviceID(d.ID))
			}
		}
	}
	return out, nil
}

// claimBatch claims one KeyPackage per active device of each user of
// req.Users in one store transaction, answering per user: a name that is
// invalid, of no user, rate-limited for this claimer (each user costs one
// claim of its (claimer, target) pair) or without any package gets an
// error of its own; the others their packages and their devices that had
// none.
func (s *Service) claimBatch(ctx context.Context, sess *Session, req protocol.ClaimKeyPackagesRequest) (protocol.ClaimKeyPackagesResponse, error) {
	if !slices.Contains(s.cfg.CipherSuites, req.CipherSuite) {
		return protocol.ClaimKeyPackagesResponse{}, perr(protocol.CodeUnsupported, "cipher suite %#04x is not accepted here", req.CipherSuite)
	}
	out := protocol.ClaimKeyPackagesResponse{KeyPackages: []protocol.ClaimedKeyPackage{}, Users: make([]protocol.ClaimedUser, len(req.Users))}
	var ids []store.UserID
	var at []int // at[i] is the index in req.Users of ids[i]
	for i, name := range req.Users {
		cu := &out.Users[i]
		cu.User, cu.KeyPackages = name, []protocol.ClaimedKeyPackage{}
		if !protocol.ValidUserName(name) {
			cu.Error = protocol.NewError(protocol.CodeBadRequest, "invalid user name %.70q", name)
			continue
		}
		u, err := s.st.UserByName(ctx, name)
		if errors.Is(err, store.ErrNotFound) {
			cu.Error = protocol.NewError(protocol.CodeUnknownUser, "no user %q", name)
			continue
		} else if err != nil {
			return protocol.ClaimKeyPackagesResponse{}, internal("claim: user "+name, err)
		}
		if ok, _ := s.claims.Allow(fmt.Sprintf("%d>%d", sess.User, u.ID)); !ok {
			cu.Error = protocol.NewError(protocol.CodeRateLimited, "too many KeyPackage claims for %q; retry later", name)
			continue
		}
		ids, at = append(ids, u.ID), append(at, i)
	}
	if len(ids) == 0 {
		return out, nil
	}
	claims, err := s.st.ClaimKeyPackagesBatch(ctx, ids, req.CipherSuite, s.now(), s.claimBudget())
	if err != nil {
		return protocol.ClaimKeyPackagesResponse{}, internal(fmt.Sprintf("claim KeyPackages of %d users", len(ids)), err)
	}
	for j, uc := range claims {
		cu := &out.Users[at[j]]
		for _, kp := range uc.KeyPackages {
			cu.KeyPackages = append(cu.KeyPackages, protocol.ClaimedKeyPackage{Device: protocol.DeviceID(kp.Device), Data: kp.Data, LastResort: kp.LastResort})
		}
		for _, d := range uc.Missing {
			cu.Missing = append(cu.Missing, protocol.DeviceID(d))
		}
		if len(uc.KeyPackages) == 0 {
			cu.Error = protocol.NewError(protocol.CodeNoKeyPackage, "no device of %q has a KeyPackage of suite %#04x", cu.User, req.CipherSuite)
			continue
		}
		s.metrics.claims.Inc()
	}
	return out, nil
}

// RateLimitError is a rate_limited error with the time to wait.
type RateLimitError struct {
	Wait time.Duration
	Err  *protocol.Error
}

// Error returns the protocol error's text.
func (e *RateLimitError) Error() string { return e.Err.Error() }

// Unwrap returns the protocol error.
func (e *RateLimitError) Unwrap() error { return e.Err }
