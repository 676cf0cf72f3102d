package client

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// checkServerURL accepts an https URL of a host, and a plain http URL
// only of a loopback host (localhost, 127.0.0.0/8, ::1): over plain http
// anyone on the path reads the bearer tokens and can play the server.
func checkServerURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || u.User != nil {
		return fmt.Errorf("invalid server URL %q: want https://HOST[:PORT]", raw)
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); h == "localhost" || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("server URL %q: plain http is refused except on loopback (localhost, 127.0.0.1, ::1): use https", raw)
	}
	return fmt.Errorf("invalid server URL %q: want https://HOST[:PORT]", raw)
}

// Register creates the account name on the server at serverURL (with an
// invite code unless registration is open) and binds the profile to it:
// it creates the Ed25519 identity key, this device's signature key and
// the device certificate for the server's name (from GET /v1/info),
// registers with the device's proof of possession of its key,
// authenticates and uploads a batch of KeyPackages plus a last-resort one
// for every supported suite.
func (c *Client) Register(ctx context.Context, serverURL, invite, name string) (*Account, error) {
	op := fmt.Sprintf("client: register %s at %s", name, serverURL)
	if !protocol.ValidUserName(name) {
		return nil, fmt.Errorf("%s: invalid user name", op)
	}
	serverName, suites, err := c.bindServer(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	_, idKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	signer, err := mls.GenerateSigner(suites[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	devRaw := make([]byte, 16)
	rand.Read(devRaw)
	dev := protocol.DeviceID(hex.EncodeToString(devRaw))
	now := c.cfg.Now()
	nd, err := newDevice(idKey, signer, serverName, name, dev, now)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	cert := nd.Certificate
	req := protocol.RegisterRequest{Name: name, Invite: invite, IdentityKey: idKey.Public().(ed25519.PublicKey), Device: nd}
	if err := c.call(ctx, "POST", "/v1/register", false, req, nil); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	id := &store.Identity{
		Server: c.serverURL, User: name, Device: dev, IdentityKey: idKey,
		DeviceScheme: protocol.SchemeEd25519, DeviceKey: signer.PrivateKey(), Certificate: cert, Created: now,
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutIdentity(id); err != nil {
			return err
		}
		if err := tx.SetSetting(settingServerName, []byte(serverName)); err != nil {
			return err
		}
		if fp := c.cfg.TLSFingerprint; fp != "" && c.cfg.ownTLS() {
			if err := tx.SetSetting(settingFingerprint, []byte(strings.ToLower(fp))); err != nil {
				return err
			}
		}
		return tx.SetSetting(settingSuites, encodeSuites(suites))
	})
	if err != nil {
		return nil, fmt.Errorf("%s: store identity: %w", op, err)
	}
	c.mu.Lock()
	c.id, c.serverName, c.suites = id, serverName, suites
	c.setSelf(id.User)
	c.mu.Unlock()
	if _, err := c.sessionToken(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.replenishKeyPackages(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return c.Whoami()
}

// newDevice returns the registration of a device of user on the server
// named server: its device certificate, signed by the identity key, and
// its proof that it holds its signature key (an Ed25519 key: every suite
// this client uses signs with Ed25519).
func newDevice(identity ed25519.PrivateKey, signer *mls.Signer, server, user string, dev protocol.DeviceID, now time.Time) (protocol.NewDevice, error) {
	seed := signer.PrivateKey()
	if len(seed) != ed25519.SeedSize {
		return protocol.NewDevice{}, fmt.Errorf("device key of cipher suite %v is not an Ed25519 key", signer.CipherSuite())
	}
	cert, err := protocol.NewDeviceCertificate(identity, server, user, dev, protocol.SchemeEd25519, signer.PublicKey(), now)
	if err != nil {
		return protocol.NewDevice{}, err
	}
	priv := ed25519.NewKeyFromSeed(seed)
	proof := ed25519.Sign(priv, protocol.DeviceProofSignedData(server, user, dev, cert))
	return protocol.NewDevice{ID: dev, Scheme: protocol.SchemeEd25519, SignatureKey: signer.PublicKey(), Certificate: cert, Proof: proof}, nil
}

// acceptedSuites returns our suites that the server accepts, in our order.
func (c *Client) acceptedSuites(server []uint16) []mls.CipherSuite {
	var out []mls.CipherSuite
	for _, cs := range c.cfg.CipherSuites {
		if slices.Contains(server, uint16(cs)) {
			out = append(out, cs)
		}
	}
	return out
}

// keyPackageSecret is what the store keeps under a KeyPackage's ref.
type keyPackageSecret struct {
	KeyPackage []byte `json:"kp"`
	Init       []byte `json:"init"`
	Enc        []byte `json:"enc"`
	LastResort bool   `json:"last_resort,omitempty"`
}

// keyPackageCaps is the generation of the capabilities of this
// device's KeyPackages (leafCapabilities): 2 added the policy extension
// (protocol.PolicyExtensionType). A device whose uploaded pool is of an
// older generation replaces it (replenishKeyPackages), so that it can be
// added to groups that require the new capabilities.
const keyPackageCaps = 2

// replenishKeyPackages tops up this device's KeyPackage pool of every
// suite when it is below the low-water mark, and uploads a last-resort
// package when none exists or the one it has was used: the server counts
// one that a claim returned as missing, and a Welcome that used it marks
// it (markLastResortUsed). RFC 9420 §16.8 allows a last-resort package to
// be used for several groups only until it can be replaced. When the pool
// on the server is of an older capability generation than keyPackageCaps
// (the setting settingKeyPackageCaps), a full batch with a last-resort
// package replaces it (an upload with replace), and the generation is
// recorded once every suite's pool is replaced. The private keys of the
// replaced packages are kept: a Welcome sent to one of them before the
// replacement can still be joined.
func (c *Client) replenishKeyPackages(ctx context.Context) error {
	if len(c.suites) == 0 {
		return nil // not registered
	}
	c.kpMu.Lock()
	defer c.kpMu.Unlock()
	refresh, err := c.keyPackagesOutdated(ctx)
	if err != nil {
		return err
	}
	for _, cs := range c.suites {
		if refresh {
			used := c.takeLastResortUsed(cs)
			err := c.uploadKeyPackages(ctx, cs, c.cfg.KeyPackageBatch, true, true)
			if err == nil {
				continue
			}
			if used {
				c.markLastResortUsed(cs)
			}
			if _, old := isCode(err, protocol.CodeBadRequest); !old {
				return err
			}
			// A server older than replace refuses the field: top the
			// pool up as before, and try again after a restart.
			c.log.Warn("the server cannot replace the KeyPackage pool; topping it up instead", "err", err)
			c.replaceUnsupported.Store(true)
			refresh = false
		}
		var count protocol.KeyPackageCount
		if err := c.call(ctx, "GET", fmt.Sprintf("/v1/keypackages/count?cipher_suite=%d", cs), true, nil, &count); err != nil {
			return fmt.Errorf("count KeyPackages: %w", err)
		}
		n := 0
		if count.Available < c.cfg.KeyPackageLowWater {
			n = c.cfg.KeyPackageBatch - count.Available
		}
		used := c.takeLastResortUsed(cs)
		lastResort := !count.LastResort || used
		if n <= 0 && !lastResort {
			continue
		}
		if err := c.uploadKeyPackages(ctx, cs, n, lastResort, false); err != nil {
			if used {
				c.markLastResortUsed(cs)
			}
			return err
		}
	}
	if !refresh {
		return nil
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		return tx.SetSetting(settingKeyPackageCaps, []byte(strconv.Itoa(keyPackageCaps)))
	})
	if err != nil {
		return fmt.Errorf("record KeyPackage capabilities: %w", err)
	}
	c.log.Debug("replaced the KeyPackage pool for new capabilities", "generation", keyPackageCaps)
	return nil
}

// keyPackagesOutdated reports whether the pool this device uploaded is of
// an older capability generation than keyPackageCaps.
func (c *Client) keyPackagesOutdated(ctx context.Context) (bool, error) {
	if c.legacyKeyPackages.Load() || c.replaceUnsupported.Load() {
		return false, nil
	}
	var v []byte
	err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		v, err = tx.Setting(settingKeyPackageCaps)
		if errors.Is(err, store.ErrNotFound) {
			v, err = nil, nil
		}
		return err
	})
	if err != nil {
		return false, fmt.Errorf("read KeyPackage capabilities: %w", err)
	}
	gen := 1
	if v != nil {
		if gen, err = strconv.Atoi(string(v)); err != nil {
			gen = 1 // unreadable: replace the pool, then record it again
		}
	}
	return gen < keyPackageCaps, nil
}

// markLastResortUsed notes that a Welcome used the last-resort KeyPackage
// of the suite, so that the next replenishment replaces it.
func (c *Client) markLastResortUsed(cs mls.CipherSuite) {
	c.lrMu.Lock()
	defer c.lrMu.Unlock()
	if c.lastResortUsed == nil {
		c.lastResortUsed = map[mls.CipherSuite]bool{}
	}
	c.lastResortUsed[cs] = true
}

// takeLastResortUsed reports and clears the mark of markLastResortUsed.
func (c *Client) takeLastResortUsed(cs mls.CipherSuite) bool {
	c.lrMu.Lock()
	defer c.lrMu.Unlock()
	used := c.lastResortUsed[cs]
	delete(c.lastResortUsed, cs)
	return used
}

// uploadKeyPackages creates n one-time KeyPackages (and a last-resort one)
// of suite cs, stores their private keys, then uploads them; with replace
// they replace the device's pool of the suite on the server.
func (c *Client) uploadKeyPackages(ctx context.Context, cs mls.CipherSuite, n int, lastResort, replace bool) error {
	signer, err := c.signer(cs)
	if err != nil {
		return err
	}
	cred, err := c.ownCredential()
	if err != nil {
		return err
	}
	req := protocol.UploadKeyPackagesRequest{Replace: replace}
	caps := leafCapabilities()
	if c.legacyKeyPackages.Load() {
		caps = nil // the defaults, without the policy extension
	}
	secrets := map[string][]byte{}
	for i := 0; i < n+1; i++ {
		last := i == n
		if last && !lastResort {
			break
		}
		b, err := mls.NewKeyPackage(c.mlsCfg, cs, signer, cred, mls.KeyPackageOptions{LastResort: last, Capabilities: caps})
		if err != nil {
			return fmt.Errorf("create KeyPackage: %v", err)
		}
		sec, _ := json.Marshal(keyPackageSecret{KeyPackage: b.KeyPackage, Init: b.InitPrivateKey, Enc: b.EncryptionPrivateKey, LastResort: last})
		secrets[string(b.Ref)] = sec
		req.KeyPackages = append(req.KeyPackages, protocol.KeyPackageUpload{Data: b.KeyPackage, LastResort: last})
	}
	if len(req.KeyPackages) == 0 {
		return nil
	}
	// Private keys first: a package the server hands out must be usable.
	err = c.st.Update(ctx, func(tx store.Tx) error {
		for ref, sec := range secrets {
			if err := tx.PutKeyPackage([]byte(ref), sec); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("store KeyPackages: %w", err)
	}
	if err := c.call(ctx, "POST", "/v1/keypackages", true, req, nil); err != nil {
		var se *ServerError
		if errors.As(err, &se) && se.Status < 500 {
			// Refused as a whole: the private keys serve nothing.
			derr := c.st.Update(ctx, func(tx store.Tx) error {
				for ref := range secrets {
					if err := tx.DeleteKeyPackage([]byte(ref)); err != nil {
						return err
					}
				}
				return nil
			})
			if derr != nil {
				c.log.Warn("delete the keys of refused KeyPackages", "err", derr)
			}
		}
		return fmt.Errorf("upload %d KeyPackages: %w", len(req.KeyPackages), err)
	}
	c.log.Debug("uploaded KeyPackages", "suite", cs, "count", len(req.KeyPackages), "replace", replace)
	return nil
}

// welcomeRefs returns the KeyPackageRefs a Welcome (an MLSMessage) is
// encrypted to (RFC 9420 §12.4.3.1), without decrypting anything.
func welcomeRefs(msg []byte) ([][]byte, mls.CipherSuite, error) {
	r := msg
	u16 := func() (uint16, bool) {
		if len(r) < 2 {
			return 0, false
		}
		v := binary.BigEndian.Uint16(r)
		r = r[2:]
		return v, true
	}
	// varint-prefixed opaque (RFC 9420 §2.1.2).
	opaque := func() ([]byte, bool) {
		if len(r) < 1 {
			return nil, false
		}
		var n, l int
		switch r[0] >> 6 {
		case 0:
			n, l = int(r[0]&0x3f), 1
		case 1:
			if len(r) < 2 {
				return nil, false
			}
			n, l = int(binary.BigEndian.Uint16(r)&0x3fff), 2
		case 2:
			if len(r) < 4 {
				return nil, false
			}
			n, l = int(binary.BigEndian.Uint32(r)&0x3fffffff), 4
		default:
			return nil, false
		}
		if len(r) < l+n {
			return nil, false
		}
		v := r[l : l+n]
		r = r[l+n:]
		return v, true
	}
	bad := errors.New("client: decode Welcome: malformed")
	if v, ok := u16(); !ok || v != 1 {
		return nil, 0, bad
	}
	if wf, ok := u16(); !ok || wf != 3 {
		return nil, 0, bad
	}
	cs, ok := u16()
	if !ok {
		return nil, 0, bad
	}
	secrets, ok := opaque()
	if !ok {
		return nil, 0, bad
	}
	var refs [][]byte
	r = secrets
	for len(r) > 0 {
		ref, ok := opaque()
		if !ok {
			return nil, 0, bad
		}
		if _, ok := opaque(); !ok { // kem_output
			return nil, 0, bad
		}
		if _, ok := opaque(); !ok { // ciphertext
			return nil, 0, bad
		}
		refs = append(refs, ref)
	}
	return refs, mls.CipherSuite(cs), nil
}

// bindServer binds a new profile to the server at serverURL: it checks
// the URL, refuses a profile bound to an account already, and returns
// the server's name and the cipher suites that both the server and this
// client accept, best first.
func (c *Client) bindServer(ctx context.Context, serverURL string) (string, []mls.CipherSuite, error) {
	if err := checkServerURL(serverURL); err != nil {
		return "", nil, err
	}
	c.mu.Lock()
	if c.id != nil {
		c.mu.Unlock()
		return "", nil, fmt.Errorf("%w (as %s)", ErrAlreadyRegistered, c.id.User)
	}
	c.serverURL = strings.TrimRight(serverURL, "/")
	c.mu.Unlock()
	var info protocol.ServerInfo
	if err := c.call(ctx, "GET", "/v1/info", false, nil, &info); err != nil {
		return "", nil, err
	}
	suites := c.acceptedSuites(info.CipherSuites)
	if len(suites) == 0 {
		return "", nil, fmt.Errorf("the server accepts none of this client's cipher suites (it offers %v)", info.CipherSuites)
	}
	return info.Name, suites, nil
}
