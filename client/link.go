package client

import (
	"bytes"
	"context"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/skip2/go-qrcode"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// Device linking (docs/protocol.md, "Linking a device"). A new profile
// becomes another device of an existing account with [Client.Link]: it
// creates a mailbox at the server and shows a link code (and a QR code);
// on a device of the account, [Client.LinkDevice] with that code opens
// the linking channel (linkchannel.go), both show the same confirmation,
// and once the user confirms on the existing device it sends the
// account's identity key, a certificate for the new device's signature
// key, its contacts with their verification states, and the settings
// worth carrying. The existing device registers the new device at the
// server (POST /v1/devices, with the new device's proof of possession)
// and, once the new device has uploaded its KeyPackages, adds it to
// every conversation of the account, one commit each. Every device of an
// account holds the identity key: any of them can link and revoke
// devices.
//
// The messages, in order (N: the new device, E: the existing device):
//
//	N1 its ephemeral public key            (creates the mailbox)
//	E1 its ephemeral public key, its MAC
//	N2 its MAC, sealed: its device id, key and name
//	E2 sealed: the account (after the user confirmed), or a refusal
//	N3 sealed: its proof of possession of its key over the certificate
//	E3 sealed: registered at the server, or why not
//	N4 sealed: authenticated, KeyPackages uploaded
//	E4 sealed: how many conversations it was added to, their names, and
//	   where the history sent to it is, if any

// linkEnvelope is one message of the mailbox.
type linkEnvelope struct {
	Key   []byte `json:"key,omitempty"`
	MAC   []byte `json:"mac,omitempty"`
	Box   []byte `json:"box,omitempty"`
	Abort string `json:"abort,omitempty"`
}

// linkAbortTampered is the reason of an abort for a failed check.
const linkAbortTampered = "key confirmation failed"

// linkHello is the new device's N2.
type linkHello struct {
	Device       protocol.DeviceID        `json:"device"`
	Scheme       protocol.SignatureScheme `json:"scheme"`
	SignatureKey []byte                   `json:"signature_key"`
	Name         string                   `json:"name,omitempty"`
}

// linkAccount is the existing device's E2: what the new device needs to
// be a device of the account.
type linkAccount struct {
	Refused     bool              `json:"refused,omitempty"`
	User        string            `json:"user,omitempty"`
	ServerName  string            `json:"server_name,omitempty"`
	IdentityKey []byte            `json:"identity_key,omitempty"`
	Certificate []byte            `json:"certificate,omitempty"`
	Contacts    []store.Contact   `json:"contacts,omitempty"`
	Settings    map[string][]byte `json:"settings,omitempty"`
}

// linkStep is N3, E3, N4 and E4.
type linkStep struct {
	Proof         []byte `json:"proof,omitempty"`
	Error         string `json:"error,omitempty"`
	Conversations int    `json:"conversations,omitempty"`
	// Metadata (E4) is what the existing device knows of the names,
	// topics and nature of the conversations (which travel inside MLS,
	// in messages sent before the new device joined).
	Metadata []linkConversation `json:"metadata,omitempty"`
	// History (E4) is the sealed manifest of the history the existing
	// device sent, if the user picked any (linkhistory.go).
	History *historyBlob `json:"history,omitempty"`
}

// linkConversation is the metadata of a conversation (E4).
type linkConversation struct {
	ID     protocol.ConversationID `json:"id"`
	Name   string                  `json:"name,omitempty"`
	Topic  string                  `json:"topic,omitempty"`
	Direct bool                    `json:"direct,omitempty"`
}

// maxLinkMetadata bounds the metadata of E4, within
// protocol.MaxLinkMessageBytes once sealed and encoded; beyond it the
// new device learns the rest from the messages sent after it joined.
const maxLinkMetadata = 40 << 10

// Settings carried to a linked device: per-conversation muting and the
// names of the account's devices.
var linkedSettings = []string{mutedPrefix, deviceNamePrefix}

// deviceNamePrefix starts the settings holding the names of the
// account's devices, by device id.
const deviceNamePrefix = "device_name/"

// LinkCode is what a device being linked shows.
type LinkCode struct {
	// Code is the code to type on the existing device: the mailbox id and
	// the secret, 24 characters in groups of four.
	Code string
	// QR is the QR code (text blocks for a terminal) of QRPayload, which
	// also carries the new device's public key.
	QR        string
	QRPayload string
	// Expires is when the code stops working.
	Expires time.Time
}

// LinkOptions configure Link.
type LinkOptions struct {
	// DeviceName names the new device in the account's device list.
	DeviceName string
	// Code is called with the code to show, once the mailbox exists.
	Code func(LinkCode)
	// Confirmation is called with the confirmation to show once the
	// channel is set up; the user compares it with the one the existing
	// device shows, and confirms there.
	Confirmation func(string)
}

// LinkRequest is what LinkDevice asks the user to confirm.
type LinkRequest struct {
	// Confirmation must equal what the new device shows.
	Confirmation string
	// Device and Name are the new device's id and name.
	Device protocol.DeviceID
	Name   string
}

// LinkedDevice reports a device that LinkDevice linked.
type LinkedDevice struct {
	Device protocol.DeviceID
	Name   string
	// Conversations is how many conversations it was added to; Failed
	// names those it could not be added to (any device of the account
	// adds it later with AddOwnDevices).
	Conversations int
	Failed        []protocol.ConversationID
	// History is what the history sent to it holds; HistoryError says
	// why none was sent when the user picked some.
	History      HistoryCount `json:",omitzero"`
	HistoryError string       `json:",omitempty"`
}

// ErrLinkRefused means the user declined the link on the existing device.
var ErrLinkRefused = errors.New("the link was declined on the existing device")

// linkPeer is one side of a linking channel in progress.
type linkPeer struct {
	c        *Client
	id       string
	token    string // the new device's mailbox token; "" on the existing side
	existing bool
	keys     *linkKeys
	after    uint64 // the last seq read
	sent     uint32
	recv     uint32
}

// linkRequest does a request to the mailbox: with the token on the new
// side, the session on the existing side.
func (p *linkPeer) request(ctx context.Context, method, path string, body, out any) error {
	if p.existing {
		return p.c.call(ctx, method, path, true, body, out)
	}
	var payload []byte
	if body != nil {
		payload, _ = json.Marshal(body)
	}
	header := map[string]string{"Content-Type": "application/json"}
	if p.token != "" {
		header[protocol.LinkTokenHeader] = p.token
	}
	resp, err := p.c.roundTrip(ctx, method, path, header, bytes.NewReader(payload))
	if err != nil {
		return err
	}
	if err := decodeResponse(resp, out); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	return nil
}

// post sends an envelope.
func (p *linkPeer) post(ctx context.Context, env linkEnvelope) error {
	b, _ := json.Marshal(env)
	return p.request(ctx, "POST", "/v1/link/"+p.id, protocol.PostLinkRequest{Message: b}, nil)
}

// next waits for the other side's next envelope. A message that is no
// envelope is the server's doing: the channel fails.
func (p *linkPeer) next(ctx context.Context) (linkEnvelope, error) {
	for {
		var res protocol.LinkMessages
		path := fmt.Sprintf("/v1/link/%s?after=%d&wait=%d", p.id, p.after, int(protocol.MaxLinkWait/time.Second)-5)
		if err := p.request(ctx, "GET", path, nil, &res); err != nil {
			if _, gone := isCode(err, protocol.CodeNotFound); gone {
				return linkEnvelope{}, fmt.Errorf("the link was cancelled on the other device, or expired: %w", err)
			}
			return linkEnvelope{}, err
		}
		if len(res.Messages) == 0 {
			if err := ctx.Err(); err != nil {
				return linkEnvelope{}, err
			}
			continue
		}
		m := res.Messages[0]
		if m.Seq <= p.after {
			return linkEnvelope{}, fmt.Errorf("%w: the mailbox repeated message %d", ErrLinkTampered, m.Seq)
		}
		p.after = m.Seq
		var env linkEnvelope
		if err := json.Unmarshal(m.Message, &env); err != nil {
			return linkEnvelope{}, fmt.Errorf("%w: malformed message", ErrLinkTampered)
		}
		if env.Abort != "" {
			p.abort("") // the other side is done: the mailbox serves no more
		}
		if env.Abort == linkAbortTampered {
			return linkEnvelope{}, fmt.Errorf("%w (seen by the other device)", ErrLinkTampered)
		}
		if env.Abort != "" {
			return linkEnvelope{}, fmt.Errorf("the other device ended the link: %.200s", env.Abort)
		}
		return env, nil
	}
}

// send seals v as this side's next message.
func (p *linkPeer) send(ctx context.Context, v any, extra linkEnvelope) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	extra.Box = p.keys.seal(p.existing, p.sent, b)
	p.sent++
	return p.post(ctx, extra)
}

// receive waits for the other side's next sealed message into v.
func (p *linkPeer) receive(ctx context.Context, v any) error {
	env, err := p.next(ctx)
	if err != nil {
		return err
	}
	return p.openBox(env, v)
}

func (p *linkPeer) openBox(env linkEnvelope, v any) error {
	pt, err := p.keys.open(!p.existing, p.recv, env.Box)
	if err != nil {
		return err
	}
	p.recv++
	if err := json.Unmarshal(pt, v); err != nil {
		return fmt.Errorf("link: decode message: %v", err)
	}
	return nil
}

// abort ends the link (best effort): with a reason it tells the other
// side, which deletes the mailbox once it read it; without one it
// deletes the mailbox.
func (p *linkPeer) abort(why string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if why != "" {
		p.post(ctx, linkEnvelope{Abort: why})
		return
	}
	p.request(ctx, "DELETE", "/v1/link/"+p.id, nil, nil)
}

// Link makes this new profile a device of an existing account on the
// server at serverURL: it shows a link code (opts.Code) for
// LinkDevice on a device of the account, sets up the linking channel,
// shows the confirmation (opts.Confirmation), receives the account, is
// registered by the existing device, authenticates, uploads its
// KeyPackages, waits until it was added to the account's conversations
// and syncs them. It fails with ErrLinkTampered when the channel's check
// fails (nothing is linked then) and ErrLinkRefused when the user
// declined on the existing device.
func (c *Client) Link(ctx context.Context, serverURL string, opts LinkOptions) (*Account, error) {
	op := fmt.Sprintf("client: link a device at %s", serverURL)
	serverName, suites, err := c.bindServer(ctx, serverURL)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	signer, err := mls.GenerateSigner(suites[0])
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	if len(signer.PrivateKey()) != ed25519.SeedSize {
		return nil, fmt.Errorf("%s: device key of cipher suite %v is not an Ed25519 key", op, signer.CipherSuite())
	}
	devRaw := make([]byte, 16)
	rand.Read(devRaw)
	dev := protocol.DeviceID(hex.EncodeToString(devRaw))

	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	pub := eph.PublicKey().Bytes()
	first, _ := json.Marshal(linkEnvelope{Key: pub})
	p := &linkPeer{c: c}
	var created protocol.CreateLinkResponse
	if err := p.request(ctx, "POST", "/v1/link", protocol.CreateLinkRequest{Message: first}, &created); err != nil {
		return nil, fmt.Errorf("%s: create the mailbox: %w", op, err)
	}
	if !protocol.ValidLinkID(created.ID) {
		return nil, fmt.Errorf("%s: the server answered a malformed mailbox id", op)
	}
	p.id, p.token, p.after = created.ID, created.Token, 1
	ok := false
	defer func() {
		if !ok {
			p.abort("")
		}
	}()
	lc := linkCode{id: created.ID, secret: newLinkSecret(), key: pub}
	code := LinkCode{Code: lc.String(), QRPayload: lc.qrPayload(), Expires: created.Expires}
	if q, err := qrcode.New(code.QRPayload, qrcode.Medium); err == nil {
		code.QR = q.ToSmallString(false)
	}
	if opts.Code != nil {
		opts.Code(code)
	}

	// E1: the existing device's key and proof.
	env, err := p.next(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if p.keys, err = deriveLinkKeys(eph, env.Key, lc.secret, lc.id, pub, env.Key); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", op, ErrLinkTampered, err)
	}
	if err := p.keys.checkMAC(true, env.MAC); err != nil {
		p.abort(linkAbortTampered)
		ok = true // the other side deletes the mailbox once it read why
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	hello := linkHello{Device: dev, Scheme: protocol.SchemeEd25519, SignatureKey: signer.PublicKey(), Name: opts.DeviceName}
	if err := p.send(ctx, hello, linkEnvelope{MAC: p.keys.mac(false)}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if opts.Confirmation != nil {
		opts.Confirmation(p.keys.confirmation)
	}

	// E2: the account.
	var acct linkAccount
	if err := p.receive(ctx, &acct); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if acct.Refused {
		return nil, fmt.Errorf("%s: %w", op, ErrLinkRefused)
	}
	proof, err := c.checkLinkedAccount(&acct, serverName, dev, signer)
	if err != nil {
		p.abort("the account does not verify")
		ok = true
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.send(ctx, linkStep{Proof: proof}, linkEnvelope{}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// E3: registered.
	var reg linkStep
	if err := p.receive(ctx, &reg); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if reg.Error != "" {
		return nil, fmt.Errorf("%s: the existing device could not register this one: %.300s", op, reg.Error)
	}
	id := &store.Identity{
		Server: c.serverURL, User: acct.User, Device: dev, IdentityKey: acct.IdentityKey,
		DeviceScheme: protocol.SchemeEd25519, DeviceKey: signer.PrivateKey(), Certificate: acct.Certificate, Created: c.cfg.Now(),
	}
	if err := c.bindLinked(ctx, id, serverName, suites, &acct); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if _, err := c.sessionToken(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := c.replenishKeyPackages(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.send(ctx, linkStep{}, linkEnvelope{}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// E4: added to the conversations.
	var done linkStep
	if err := p.receive(ctx, &done); err != nil {
		return nil, fmt.Errorf("%s: linked, but not told about the conversations (sync to join them): %w", op, err)
	}
	ok = true
	p.abort("")
	if done.History != nil {
		if err := c.startHistoryImport(ctx, *done.History); err != nil {
			return nil, fmt.Errorf("%s: linked, but the history sent was not recorded: %w", op, err)
		}
	}
	// Sync imports the history first.
	if err := c.Sync(ctx); err != nil {
		return nil, fmt.Errorf("%s: linked, but the first sync failed (sync again to go on): %w", op, err)
	}
	if err := c.applyLinkedMetadata(ctx, done.Metadata); err != nil {
		return nil, fmt.Errorf("%s: linked, but the conversations' names were not stored: %w", op, err)
	}
	c.log.Info("device linked", "user", acct.User, "device", dev, "conversations", done.Conversations)
	return c.Whoami()
}

// checkLinkedAccount checks the account a new device received: its
// certificate must be signed by the identity key it received, name this
// server, the user, this device and its key; and returns the proof of
// possession over it.
func (c *Client) checkLinkedAccount(acct *linkAccount, serverName string, dev protocol.DeviceID, signer *mls.Signer) ([]byte, error) {
	if !protocol.ValidUserName(acct.User) || len(acct.IdentityKey) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("the account received is malformed: user %.64q, identity key of %d bytes (want %d)", acct.User, len(acct.IdentityKey), ed25519.PrivateKeySize)
	}
	if acct.ServerName != serverName {
		return nil, fmt.Errorf("the account is on server %q, this server is %q", acct.ServerName, serverName)
	}
	idPub := ed25519.PrivateKey(acct.IdentityKey).Public().(ed25519.PublicKey)
	cert, err := protocol.VerifyDeviceCertificate(acct.Certificate, idPub, serverName, acct.User, dev, signer.PublicKey())
	if err != nil {
		return nil, fmt.Errorf("the certificate received: %v", err)
	}
	if err := cert.CheckTime(c.cfg.Now()); err != nil {
		return nil, fmt.Errorf("the certificate received: %v", err)
	}
	priv := ed25519.NewKeyFromSeed(signer.PrivateKey())
	return ed25519.Sign(priv, protocol.DeviceProofSignedData(serverName, acct.User, dev, acct.Certificate)), nil
}

// bindLinked stores the identity of a linked device with the contacts
// and settings it received.
func (c *Client) bindLinked(ctx context.Context, id *store.Identity, serverName string, suites []mls.CipherSuite, acct *linkAccount) error {
	err := c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutIdentity(id); err != nil {
			return err
		}
		for _, kv := range [][2]string{{settingServerName, serverName}, {settingSuites, string(encodeSuites(suites))}} {
			if err := tx.SetSetting(kv[0], []byte(kv[1])); err != nil {
				return err
			}
		}
		if fp := c.cfg.TLSFingerprint; fp != "" && c.cfg.ownTLS() {
			if err := tx.SetSetting(settingFingerprint, []byte(strings.ToLower(fp))); err != nil {
				return err
			}
		}
		for i := range acct.Contacts {
			ct := acct.Contacts[i]
			if ct.RolledBack || !protocol.ValidUserName(ct.User) || len(ct.IdentityKey) != ed25519.PublicKeySize {
				continue
			}
			if err := tx.PutContact(&ct); err != nil {
				return err
			}
		}
		for name, v := range acct.Settings {
			if carried(name) {
				if err := tx.SetSetting(name, v); err != nil {
					return err
				}
			}
		}
		return c.loadMuted(tx)
	})
	if err != nil {
		return fmt.Errorf("store identity: %w", err)
	}
	c.mu.Lock()
	c.id, c.serverName, c.suites = id, serverName, suites
	c.setSelf(id.User)
	c.mu.Unlock()
	return nil
}

// carried reports whether a setting travels to a linked device.
func carried(name string) bool {
	for _, p := range linkedSettings {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// LinkDevice links the device that shows code (from Link on the new
// device; the typed code or the QR payload) to this account: it sets up
// the linking channel, asks confirm (with the confirmation that the new
// device shows; nil declines), sends the account, registers the new
// device at the server and adds it to every conversation of this device.
// It fails with ErrLinkTampered when the channel's check fails: nothing
// is sent or certified then.
func (c *Client) LinkDevice(ctx context.Context, code string, confirm func(LinkRequest) bool) (*LinkedDevice, error) {
	return c.LinkDeviceWith(ctx, code, LinkDeviceOptions{Confirm: confirm})
}

// LinkDeviceOptions configure LinkDeviceWith.
type LinkDeviceOptions struct {
	// Confirm asks the user to confirm the link, with the confirmation
	// the new device shows; nil declines.
	Confirm func(LinkRequest) bool
	// History, called once the user confirmed, returns the conversations
	// whose history the new device receives (it may ask the user); nil
	// or none sends no history.
	History func() []protocol.ConversationID
}

// LinkDeviceWith is LinkDevice with options: it also sends the history
// of the conversations the user picks (opts.History) to the new device,
// once it was added to them.
func (c *Client) LinkDeviceWith(ctx context.Context, code string, opts LinkDeviceOptions) (*LinkedDevice, error) {
	op := "client: link a device"
	confirm := opts.Confirm
	if c.id == nil {
		return nil, fmt.Errorf("%s: %w", op, ErrNotRegistered)
	}
	lc, err := parseLinkCode(code)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	p := &linkPeer{c: c, id: lc.id, existing: true}
	ok := false
	defer func() {
		if !ok {
			p.abort("")
		}
	}()
	// N1: the new device's key, which the QR code may confirm.
	env, err := p.next(ctx)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if lc.key != nil && !bytes.Equal(lc.key, env.Key) {
		return nil, fmt.Errorf("%s: %w: the mailbox holds another key than the QR code", op, ErrLinkTampered)
	}
	eph, err := ecdh.X25519().GenerateKey(rand.Reader)
	if err != nil {
		return nil, fmt.Errorf("%s: %v", op, err)
	}
	pub := eph.PublicKey().Bytes()
	if p.keys, err = deriveLinkKeys(eph, env.Key, lc.secret, lc.id, env.Key, pub); err != nil {
		return nil, fmt.Errorf("%s: %w: %v", op, ErrLinkTampered, err)
	}
	if err := p.post(ctx, linkEnvelope{Key: pub, MAC: p.keys.mac(true)}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// N2: the new device's proof and hello.
	if env, err = p.next(ctx); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.keys.checkMAC(false, env.MAC); err != nil {
		p.abort(linkAbortTampered)
		ok = true // the other side deletes the mailbox once it read why
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	var hello linkHello
	if err := p.openBox(env, &hello); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if !protocol.ValidDeviceID(hello.Device) || hello.Scheme != protocol.SchemeEd25519 || len(hello.SignatureKey) != ed25519.PublicKeySize {
		p.abort("unsupported device")
		ok = true
		return nil, fmt.Errorf("%s: the new device sent a malformed id or key", op)
	}
	name := cleanDeviceName(hello.Name)
	if confirm == nil || !confirm(LinkRequest{Confirmation: p.keys.confirmation, Device: hello.Device, Name: name}) {
		if p.send(ctx, linkAccount{Refused: true}, linkEnvelope{}) == nil {
			ok = true // the new device deletes the mailbox once it read the refusal
		}
		return nil, fmt.Errorf("%s: %w", op, ErrLinkRefused)
	}
	var history []protocol.ConversationID
	if opts.History != nil {
		history = opts.History()
	}
	cert, err := protocol.NewDeviceCertificate(ed25519.PrivateKey(c.id.IdentityKey), c.serverName, c.id.User, hello.Device, hello.Scheme, hello.SignatureKey, c.cfg.Now())
	if err != nil {
		return nil, fmt.Errorf("%s: certify: %v", op, err)
	}
	acct, err := c.accountForLink(ctx, cert, hello.Device, name)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	if err := p.send(ctx, acct, linkEnvelope{}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// N3: the proof of possession; then the registration.
	var step linkStep
	if err := p.receive(ctx, &step); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	nd := protocol.NewDevice{ID: hello.Device, Scheme: hello.Scheme, SignatureKey: hello.SignatureKey, Certificate: cert, Proof: step.Proof}
	if err := c.call(ctx, "POST", "/v1/devices", true, protocol.AddDeviceRequest{Device: nd}, nil); err != nil {
		if p.send(ctx, linkStep{Error: err.Error()}, linkEnvelope{}) == nil {
			ok = true // the new device deletes the mailbox once it read why
		}
		return nil, fmt.Errorf("%s: register the new device: %w", op, err)
	}
	c.log.Info("device registered", "device", hello.Device)
	if err := p.send(ctx, linkStep{}, linkEnvelope{}); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	// N4: the new device has KeyPackages; add it everywhere.
	if err := p.receive(ctx, &step); err != nil {
		return nil, fmt.Errorf("%s: the device is registered, but did not get ready: %w", op, err)
	}
	ok = true
	// Conversations this device was added to meanwhile are joined first,
	// so that the new device is added to them too.
	if err := c.Sync(ctx); err != nil {
		c.log.Warn("sync before adding the linked device", "err", err)
	}
	res := &LinkedDevice{Device: hello.Device, Name: name}
	res.Conversations, res.Failed = c.addOwnDevices(ctx)
	last := linkStep{Conversations: res.Conversations, Metadata: c.linkMetadata(ctx)}
	if len(history) > 0 {
		// After the adds: what arrives meanwhile reaches the new device
		// both ways, and is stored once.
		start := time.Now()
		last.History, res.History, err = c.sendHistory(ctx, history)
		if err != nil {
			res.HistoryError = err.Error()
			c.log.Warn("history not sent to the linked device", "err", err)
		} else {
			c.log.Info("history sent to the linked device", "conversations", res.History.Conversations,
				"messages", res.History.Messages, "took", time.Since(start).Round(time.Millisecond))
		}
	}
	if err := p.send(ctx, last, linkEnvelope{}); err != nil {
		c.log.Warn("the linked device was not told it was added", "err", err)
	}
	return res, nil
}

// accountForLink is the account to send a device being linked.
func (c *Client) accountForLink(ctx context.Context, cert []byte, dev protocol.DeviceID, name string) (*linkAccount, error) {
	acct := &linkAccount{User: c.id.User, ServerName: c.serverName, IdentityKey: c.id.IdentityKey, Certificate: cert, Settings: map[string][]byte{}}
	err := c.st.Update(ctx, func(tx store.Tx) error {
		if name != "" {
			if err := tx.SetSetting(deviceNamePrefix+string(dev), []byte(name)); err != nil {
				return err
			}
		}
		cts, err := tx.Contacts()
		if err != nil {
			return err
		}
		for _, ct := range cts {
			if !ct.RolledBack {
				acct.Contacts = append(acct.Contacts, ct)
			}
		}
		for _, prefix := range linkedSettings {
			kv, err := tx.Settings(prefix)
			if err != nil {
				return err
			}
			for k, v := range kv {
				acct.Settings[k] = v
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("read the account to send: %w", err)
	}
	return acct, nil
}

// linkMetadata returns the names, topics and nature of this device's
// conversations that have any, up to maxLinkMetadata bytes.
func (c *Client) linkMetadata(ctx context.Context) []linkConversation {
	var out []linkConversation
	err := c.st.View(ctx, func(tx store.Tx) error {
		cvs, err := tx.Conversations()
		if err != nil {
			return err
		}
		size := 0
		for _, cv := range cvs {
			if cv.Left || (cv.Name == "" && cv.Topic == "" && !cv.Direct) {
				continue
			}
			if size += len(cv.Name) + len(cv.Topic) + 64; size > maxLinkMetadata {
				break
			}
			out = append(out, linkConversation{ID: cv.ID, Name: cv.Name, Topic: cv.Topic, Direct: cv.Direct})
		}
		return nil
	})
	if err != nil {
		c.log.Warn("conversation names not sent to the linked device", "err", err)
	}
	return out
}

// applyLinkedMetadata gives the conversations this new device joined
// the names, topics and nature the existing device sent, where it knows
// none yet.
func (c *Client) applyLinkedMetadata(ctx context.Context, md []linkConversation) error {
	return c.st.Update(ctx, func(tx store.Tx) error {
		for _, m := range md {
			cv, err := tx.Conversation(m.ID)
			if errors.Is(err, store.ErrNotFound) {
				continue
			}
			if err != nil {
				return err
			}
			if cv.Name != "" || cv.Topic != "" || cv.Direct {
				continue
			}
			cv.Name, cv.Topic, cv.Direct = m.Name, m.Topic, m.Direct
			if err := tx.PutConversation(cv); err != nil {
				return err
			}
		}
		return nil
	})
}

// cleanDeviceName bounds a device name to 64 printable characters.
func cleanDeviceName(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return -1
		}
		return r
	}, strings.TrimSpace(s))
	if r := []rune(s); len(r) > 64 {
		s = string(r[:64])
	}
	return s
}

// AddOwnDevices adds the account's devices that are missing from this
// device's conversations (a device just linked) to each of them, one
// commit per conversation (retried on a stale epoch), and returns how
// many it added them to and those where it failed.
func (c *Client) AddOwnDevices(ctx context.Context) (int, []protocol.ConversationID, error) {
	if c.id == nil {
		return 0, nil, ErrNotRegistered
	}
	n, failed := c.addOwnDevices(ctx)
	return n, failed, nil
}

func (c *Client) addOwnDevices(ctx context.Context) (int, []protocol.ConversationID) {
	c.mu.Lock()
	defer c.mu.Unlock()
	known, err := c.lookupUsers(ctx, []string{c.id.User})
	if err != nil {
		c.log.Warn("own devices not added", "err", err)
		return 0, c.activeConversations()
	}
	n := 0
	var failed []protocol.ConversationID
	for _, conv := range c.activeConversations() {
		if c.unsafeError(conv) != nil {
			continue
		}
		err := c.addOwnDevicesLocked(ctx, conv, known)
		switch {
		case err == nil:
			n++
		case errors.Is(err, errNothingToCommit):
		default:
			c.log.Warn("own device not added", "conversation", conv, "err", err)
			failed = append(failed, conv)
		}
	}
	return n, failed
}

// addOwnDevicesLocked adds this user's devices missing from conv.
func (c *Client) addOwnDevicesLocked(ctx context.Context, conv protocol.ConversationID, known map[string][]protocol.DeviceInfo) error {
	g := c.groups[conv]
	if g == nil {
		return c.missingGroup(conv)
	}
	cands, err := c.claimUsers(ctx, g, []string{c.id.User}, known)
	if err != nil {
		return err
	}
	if err := c.addCandidatesLocked(ctx, conv, cands); err != nil {
		return err
	}
	// The name, topic and nature travel inside MLS: the new device
	// learns them from a message sent after it joined, as added users do.
	var cv *store.Conversation
	c.st.View(ctx, func(tx store.Tx) error {
		cv, _ = tx.Conversation(conv)
		return nil
	})
	if cv != nil && (cv.Name != "" || cv.Topic != "" || cv.Direct) {
		m := content.New(content.KindGroupMetadata, c.cfg.Now())
		m.Name, m.Topic, m.Direct = &cv.Name, &cv.Topic, cv.Direct
		if c.postRefused(conv, m, c.id.User) {
			return nil // a channel's member posts nothing: the link carries the name
		}
		if _, err := c.sendLocked(ctx, conv, m); err != nil {
			return fmt.Errorf("share name: %w", err)
		}
	}
	return nil
}
