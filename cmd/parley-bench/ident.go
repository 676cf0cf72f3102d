package main

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// suite is the MLS cipher suite of every bench conversation:
// MLS_128_DHKEMX25519_AES128GCM_SHA256_Ed25519, whose signature keys are
// plain Ed25519 keys, so the device key registered with the server is the
// MLS signature key.
const suite = mls.MLS128DHKEMX25519AES128GCMSHA256Ed25519

// ident is a simulated device: one user with one device. Every key is
// derived from the run id and the device index, so that the coordinator
// and the workers agree on them without exchanging secrets.
type ident struct {
	index  int
	user   string
	device protocol.DeviceID
	key    ed25519.PrivateKey // key is the device (and MLS) signature key.
	idKey  ed25519.PrivateKey // idKey is the user's identity key.
}

// derive returns 32 bytes of sha256(label, run, index).
func derive(label, run string, i int) []byte {
	h := sha256.New()
	h.Write([]byte("parley-bench v1\x00" + label + "\x00" + run + "\x00"))
	h.Write(binary.BigEndian.AppendUint64(nil, uint64(i)))
	return h.Sum(nil)
}

// newIdent returns device i of run.
func newIdent(run string, i int) *ident {
	return &ident{
		index:  i,
		user:   fmt.Sprintf("b%s-%d", run, i),
		device: protocol.DeviceID(hex.EncodeToString(derive("device", run, i)[:16])),
		key:    ed25519.NewKeyFromSeed(derive("signature", run, i)),
		idKey:  ed25519.NewKeyFromSeed(derive("identity", run, i)),
	}
}

// pub returns the device's signature public key.
func (d *ident) pub() []byte { return d.key.Public().(ed25519.PublicKey) }

// certificate returns the device certificate for the server named
// server, signed by the identity key. It is made when needed (the
// coordinator's credentials and a worker's registration need not carry
// the same bytes: each verifies), so that it never outlives
// protocol.MaxCertificateAge.
func (d *ident) certificate(server string) ([]byte, error) {
	return protocol.NewDeviceCertificate(d.idKey, server, d.user, d.device, protocol.SchemeEd25519, d.pub(), time.Now())
}

// newDevice returns the registration of the device on the server named
// server: its certificate and its proof of possession of the key.
func (d *ident) newDevice(server string) (protocol.NewDevice, error) {
	cert, err := d.certificate(server)
	if err != nil {
		return protocol.NewDevice{}, err
	}
	proof := ed25519.Sign(d.key, protocol.DeviceProofSignedData(server, d.user, d.device, cert))
	return protocol.NewDevice{ID: d.device, Scheme: protocol.SchemeEd25519, SignatureKey: d.pub(), Certificate: cert, Proof: proof}, nil
}

// credential returns the MLS basic credential of the device in Parley's
// format (the identity is version 1, the server name and the device
// certificate; see client.EncodeCredential).
func (d *ident) credential(server string) (mls.Credential, error) {
	cert, err := d.certificate(server)
	if err != nil {
		return mls.Credential{}, err
	}
	if len(server) > 0xffff {
		return mls.Credential{}, errors.New("server name too long")
	}
	b := []byte{1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(server)))
	b = append(b, server...)
	b = binary.BigEndian.AppendUint16(b, uint16(len(cert)))
	return mls.BasicCredential(append(b, cert...)), nil
}

// signer returns the device's MLS signer.
func (d *ident) signer() (*mls.Signer, error) {
	return mls.NewSigner(suite, d.key.Seed())
}

// stampLen is the size of the bench stamp at the end of every message.
const stampLen = 20

// stamp is what a receiver learns from a bench message: when it was meant
// to be sent (open loop) or was sent (closed loop), its id and its
// sender's device index.
type stamp struct {
	at     int64  // at is the intended send time, Unix nanoseconds.
	id     uint64 // id is unique per sender: sender index << 32 | sequence.
	sender uint32 // sender is the sending device's index.
}

// appMessage returns an MLS-shaped application message: an MLSMessage
// carrying a PrivateMessage (RFC 9420 §6.3.2) of the group and epoch with
// content type application, whose opaque ciphertext ends with the stamp.
// The server checks only this header; nobody decrypts the content, so it
// is not encrypted. size is the total length (at least the header plus a
// stamp).
func appMessage(groupID []byte, epoch uint64, size int, s stamp) []byte {
	b := make([]byte, 0, size+16)
	b = binary.BigEndian.AppendUint16(b, 1) // mls10
	b = binary.BigEndian.AppendUint16(b, 2) // mls_private_message
	b = appendOpaque(b, groupID)
	b = binary.BigEndian.AppendUint64(b, epoch)
	b = append(b, 1)                           // content type application
	b = appendOpaque(b, nil)                   // authenticated data
	b = appendOpaque(b, make([]byte, 16+4+16)) // encrypted sender data (AEAD of leaf and generation)
	ct := size - len(b) - 4
	if ct < stampLen {
		ct = stampLen
	}
	body := make([]byte, ct)
	tail := body[ct-stampLen:]
	binary.BigEndian.PutUint64(tail[0:], uint64(s.at))
	binary.BigEndian.PutUint64(tail[8:], s.id)
	binary.BigEndian.PutUint32(tail[16:], s.sender)
	return appendOpaque(b, body)
}

// readStamp returns the stamp at the end of a bench message.
func readStamp(msg []byte) (stamp, bool) {
	if len(msg) < stampLen+8 {
		return stamp{}, false
	}
	t := msg[len(msg)-stampLen:]
	return stamp{at: int64(binary.BigEndian.Uint64(t[0:])), id: binary.BigEndian.Uint64(t[8:]), sender: binary.BigEndian.Uint32(t[16:])}, true
}

// appendOpaque appends an MLS variable-length vector (RFC 9420 §2.1.2).
func appendOpaque(b, v []byte) []byte {
	n := len(v)
	switch {
	case n < 1<<6:
		b = append(b, byte(n))
	case n < 1<<14:
		b = binary.BigEndian.AppendUint16(b, uint16(n)|0x4000)
	default:
		b = binary.BigEndian.AppendUint32(b, uint32(n)|0x80000000)
	}
	return append(b, v...)
}
