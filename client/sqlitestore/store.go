// Package sqlitestore is the Parley client's local store: one SQLite file
// (through the pure-Go driver modernc.org/sqlite) holding the account's
// identity and device keys, devices, contacts with their pinned identity
// keys, conversations, the MLS group state of each conversation, message
// history, sync cursors, the queue of outgoing messages, the private keys
// of published KeyPackages, and settings.
//
// # Encryption at rest
//
// Every value is sealed with XChaCha20-Poly1305 under a key derived from a
// 32-byte store key. The store key comes either from a passphrase through
// Argon2id (the salt and parameters are kept in the file's header table,
// see [KDFParams]) or from a key file of 32 random bytes that must not be
// readable by group or others ([CreateKeyFile]). A sealed check value in
// the header tells a wrong passphrase or key file ([ErrWrongKey]) from a
// damaged file. Each sealed value is bound, as associated data, to its
// table and primary key, so a value moved to another row fails to open
// ([ErrCorrupt]). Names that would reveal who the user talks to (contact
// user names, message ids) are not stored in clear: their rows are found
// by a keyed hash (HMAC-SHA-256). What stays in clear is what the server
// knows anyway: conversation numbers, device ids, KeyPackage references,
// the number and order of messages and the size of values.
//
// Nonces are 24 random bytes drawn for every write; no counter is kept, so
// a crash or a restored file can never make a nonce repeat under the key.
//
// # Trust rows
//
// Sealing rows one by one does not stop an attacker with the file (but
// without the key) from deleting a contact's row or putting back an older
// copy of it, which would reset trust on first use for that user. A
// sealed trust root lists every contact row's digest with a version that
// the header keeps too; Open checks them and refuses, with
// [ErrTrustRollback], the contacts whose rows fail ([TrustAlarm]). A
// rollback of the whole file cannot be seen from inside it.
//
// # Old values on disk
//
// secure_delete makes SQLite overwrite deleted and overwritten content in
// the database file with zeros. The WAL, though, keeps old versions of
// pages until it is checkpointed and reset, so the store checkpoints it
// and truncates it to nothing after every transaction that overwrote or
// deleted something that must not outlive it (a contact, a group state
// left behind by a new epoch, a used KeyPackage, a deleted message or
// conversation), and on Close; journal_size_limit(0) truncates it too
// whenever SQLite's own checkpoints let it start over. Ratchet states
// overwritten by each message may stay in the WAL until the next of
// these. What the file system or the disk keep of freed blocks is beyond
// the store's reach.
//
// # Transactions and crashes
//
// The file is in WAL mode with synchronous=FULL. All
// reads and writes happen in a transaction: [Store.Update] commits every
// change made by its function at once, or none of them, also if the
// process dies at any point. The SDK must therefore write the new MLS
// group state (or ratchet state) together with the messages it decrypted
// and the advanced cursor in one Update, and write the encrypted outgoing message into the
// outbox in the same Update as the MLS state that encrypted it, so that a
// crash neither loses a message nor makes MLS reuse a key and nonce.
//
// MLS group state is kept in two parts, following the rule of the mls
// package: the full state ([Tx.PutGroupState]), written after every
// merge and proposal, and the ratchet state ([Tx.PutRatchetState]), small,
// written after every application message in the same Update as the
// message and the cursor. The current state is the full state with the
// ratchet state applied; writing a full state deletes the ratchet state.
//
// A Store is safe for concurrent use; transactions are serialized. The
// function given to Update or View must use only its [Tx], never the
// Store, and must not keep the Tx after returning.
package sqlitestore

import (
	"context"
	"crypto/hkdf"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"database/sql"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strconv"
	"sync/atomic"

	"golang.org/x/crypto/argon2"
	"golang.org/x/crypto/chacha20poly1305"
	_ "modernc.org/sqlite" // registers the "sqlite" driver

	"github.com/parley-chat/parley/client/store"
)

// formatVersion is the value of the header's "format" row. Version 2
// added the ratchets table; a version 1 store is upgraded when opened
// (the table is created empty), and binaries that know only version 1
// refuse a version 2 store, since they would ignore its ratchet states
// and reuse message keys. Version 3 added the trust root (trust.go); an
// older store is upgraded by writing a root for the contacts it holds,
// and binaries that know only version 2 refuse a version 3 store, since
// the contacts they write would fail the trust check.
const formatVersion = "3"

// upgradable says which older formats Open upgrades.
var upgradable = map[string]bool{"1": true, "2": true}

// KeySize is the size of the store key and of a key file.
const KeySize = 32

// sealVersion is the first byte of every sealed value.
const sealVersion = 1

// Options say how to open a store. Exactly one of Passphrase and KeyFile
// must be set.
type Options struct {
	// Passphrase derives the store key with Argon2id.
	Passphrase []byte
	// KeyFile is the path of a file holding the 32-byte store key. When
	// the store is created and the file does not exist, it is created
	// with mode 0600. A key file that group or others may read is refused.
	KeyFile string
	// KDF are the Argon2id parameters for a new store; zero means
	// [DefaultKDFParams]. An existing store uses the parameters in its
	// header.
	KDF store.KDFParams
}

// Store is an open local store. Close it when done.
type Store struct {
	db       *sql.DB
	path     string
	seal     [chacha20poly1305.KeySize]byte
	indexKey [32]byte
	// trustAlarm is what Open found wrong with the trust rows.
	trustAlarm *store.TrustAlarm
	// purgeOwed is set when a checkpoint after a transaction failed: the
	// next transaction that commits tries again.
	purgeOwed atomic.Bool
}

// CreateKeyFile writes a new random 32-byte store key to path with mode
// 0600. It fails if the file exists.
func CreateKeyFile(path string) error {
	if err := createKeyFile(path); err != nil {
		return fmt.Errorf("sqlitestore: %w", err)
	}
	return nil
}

// createKeyFile is CreateKeyFile with errors not prefixed by the package.
func createKeyFile(path string) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("create key file: %w", err)
	}
	var k [KeySize]byte
	rand.Read(k[:]) // never fails since Go 1.24
	if _, err := f.Write(k[:]); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		os.Remove(path)
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("create key file %s: %w", path, err)
	}
	return nil
}

// readKeyFile reads a key file, refusing one that group or others may
// access or that is not exactly KeySize bytes.
func readKeyFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("read key file: %w", err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("read key file %s: not a regular file", path)
	}
	if perm := fi.Mode().Perm(); perm&0o077 != 0 && runtime.GOOS != "windows" {
		return nil, fmt.Errorf("read key file %s: mode %04o lets group or others read it; run chmod 600", path, perm)
	}
	k, err := io.ReadAll(io.LimitReader(f, KeySize+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	if len(k) != KeySize {
		return nil, fmt.Errorf("read key file %s: want %d bytes, not %d", path, KeySize, len(k))
	}
	return k, nil
}

// schema creates the tables. Every v column holds a sealed value. The
// expiries table is the exception: it holds in the clear, for each
// message of a conversation with a disappearing-message timer that has
// not expired yet, when it expires (Unix seconds), so that expiring needs
// no scan of sealed rows; it reveals no more than when those messages
// were sent, and a row goes with its message's content.
const schema = `
CREATE TABLE IF NOT EXISTS header (name TEXT PRIMARY KEY, value BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS identity (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS devices (id TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS contacts (h BLOB PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS conversations (id INTEGER PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS groups (conv INTEGER PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS ratchets (conv INTEGER PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS messages (
	conv INTEGER NOT NULL, seq INTEGER NOT NULL, h BLOB NOT NULL, v BLOB NOT NULL,
	PRIMARY KEY (conv, seq), UNIQUE (conv, h));
CREATE TABLE IF NOT EXISTS cursors (conv INTEGER PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS outbox (id INTEGER PRIMARY KEY AUTOINCREMENT, conv INTEGER NOT NULL, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS keypackages (ref BLOB PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS settings (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS trust (k TEXT PRIMARY KEY, v BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS expiries (conv INTEGER NOT NULL, seq INTEGER NOT NULL, at INTEGER NOT NULL, PRIMARY KEY (conv, seq));
CREATE INDEX IF NOT EXISTS expiries_at ON expiries (at);
`

// checkPlaintext is sealed in the header to recognize the right key.
const checkPlaintext = "parley sqlitestore key check v1"

// Open opens the store at path, creating it if the file does not exist
// or is empty. It derives the store key from opts and checks it against
// the header, returning an error wrapping [ErrWrongKey] if it does not
// match. The context bounds opening only.
func Open(ctx context.Context, path string, opts Options) (*Store, error) {
	if (len(opts.Passphrase) == 0) == (opts.KeyFile == "") {
		return nil, fmt.Errorf("sqlitestore: open %s: set exactly one of passphrase and key file", path)
	}
	dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=synchronous(FULL)&_pragma=secure_delete(1)" +
		"&_pragma=journal_size_limit(0)&_pragma=busy_timeout(10000)&_txlock=immediate"
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: open %s: %v", path, err)
	}
	db.SetMaxOpenConns(1)
	s := &Store{db: db, path: path}
	if err := s.init(ctx, opts); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlitestore: open %s: %w", path, err)
	}
	if s.purgeOwed.Load() {
		s.purge(ctx)
	}
	return s, nil
}

// init creates the schema and header of a new store, or reads the header
// of an existing one, and sets the keys.
func (s *Store) init(ctx context.Context, opts Options) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if err := checkSecureDelete(ctx, tx); err != nil {
		return err
	}
	if _, err := tx.ExecContext(ctx, schema); err != nil {
		return fmt.Errorf("create schema: %v", err)
	}
	header := map[string][]byte{}
	rows, err := tx.QueryContext(ctx, `SELECT name, value FROM header`)
	if err != nil {
		return fmt.Errorf("read header: %v", err)
	}
	for rows.Next() {
		var name string
		var value []byte
		if err := rows.Scan(&name, &value); err != nil {
			rows.Close()
			return fmt.Errorf("read header: %v", err)
		}
		header[name] = value
	}
	if err := rows.Close(); err != nil {
		return fmt.Errorf("read header: %v", err)
	}
	if len(header) == 0 {
		if err := s.create(ctx, tx, opts); err != nil {
			return err
		}
		return tx.Commit()
	}
	v := string(header["format"])
	if v != formatVersion && !upgradable[v] {
		return fmt.Errorf("unknown store format %q", v)
	}
	var master []byte
	switch kdf := string(header["kdf"]); kdf {
	case "argon2id":
		if len(opts.Passphrase) == 0 {
			return errors.New("store is protected by a passphrase, not a key file")
		}
		p, err := parseKDF(header)
		if err != nil {
			return err
		}
		master = argon2.IDKey(opts.Passphrase, header["argon2id.salt"], p.Time, p.MemoryKiB, p.Threads, KeySize)
	case "keyfile":
		if opts.KeyFile == "" {
			return errors.New("store is protected by a key file, not a passphrase")
		}
		if master, err = readKeyFile(opts.KeyFile); err != nil {
			return err
		}
	default:
		return fmt.Errorf("unknown key derivation %q", kdf)
	}
	s.setKeys(master)
	if got, err := s.open("header", "check", header["check"]); err != nil || string(got) != checkPlaintext {
		return store.ErrWrongKey
	}
	t := &Tx{s: s, tx: tx, ctx: ctx}
	if v != formatVersion {
		if _, err := tx.ExecContext(ctx, `UPDATE header SET value = ? WHERE name = 'format'`, []byte(formatVersion)); err != nil {
			return fmt.Errorf("upgrade store format %s to %s: %v", v, formatVersion, err)
		}
		if err := t.initTrustRoot(); err != nil {
			return fmt.Errorf("upgrade store format %s to %s: %w", v, formatVersion, err)
		}
	} else if s.trustAlarm, err = t.checkTrust(); err != nil {
		return err
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("commit: %v", err)
	}
	s.purgeOwed.Store(t.purge)
	return nil
}

// checkSecureDelete makes sure the connection overwrites deleted content
// (the pragma of the DSN took effect).
func checkSecureDelete(ctx context.Context, tx *sql.Tx) error {
	var on int
	if err := tx.QueryRowContext(ctx, `PRAGMA secure_delete`).Scan(&on); err != nil {
		return fmt.Errorf("read secure_delete: %v", err)
	}
	if on != 1 {
		return fmt.Errorf("secure_delete is %d, not 1: deleted values would stay in the file", on)
	}
	return nil
}

// parseKDF reads the Argon2id parameters of the header.
func parseKDF(h map[string][]byte) (store.KDFParams, error) {
	num := func(name string, bits int) (uint64, error) {
		v, err := strconv.ParseUint(string(h[name]), 10, bits)
		if err != nil {
			return 0, fmt.Errorf("header %s %q: %v", name, h[name], err)
		}
		return v, nil
	}
	t, err1 := num("argon2id.time", 32)
	m, err2 := num("argon2id.memory_kib", 32)
	th, err3 := num("argon2id.threads", 8)
	if err := errors.Join(err1, err2, err3); err != nil {
		return store.KDFParams{}, err
	}
	if len(h["argon2id.salt"]) < 16 {
		return store.KDFParams{}, errors.New("header argon2id.salt shorter than 16 bytes")
	}
	p := store.KDFParams{Time: uint32(t), MemoryKiB: uint32(m), Threads: uint8(th)}
	return p, p.Validate()
}

// create writes the header of a new store.
func (s *Store) create(ctx context.Context, tx *sql.Tx, opts Options) error {
	header := map[string][]byte{"format": []byte(formatVersion)}
	var master []byte
	if len(opts.Passphrase) > 0 {
		p := opts.KDF
		if p == (store.KDFParams{}) {
			p = store.DefaultKDFParams()
		}
		if err := p.Validate(); err != nil {
			return err
		}
		salt := make([]byte, 16)
		rand.Read(salt)
		header["kdf"] = []byte("argon2id")
		header["argon2id.salt"] = salt
		header["argon2id.time"] = []byte(strconv.FormatUint(uint64(p.Time), 10))
		header["argon2id.memory_kib"] = []byte(strconv.FormatUint(uint64(p.MemoryKiB), 10))
		header["argon2id.threads"] = []byte(strconv.FormatUint(uint64(p.Threads), 10))
		master = argon2.IDKey(opts.Passphrase, salt, p.Time, p.MemoryKiB, p.Threads, KeySize)
	} else {
		if _, err := os.Stat(opts.KeyFile); errors.Is(err, os.ErrNotExist) {
			if err := createKeyFile(opts.KeyFile); err != nil {
				return err
			}
		}
		k, err := readKeyFile(opts.KeyFile)
		if err != nil {
			return err
		}
		header["kdf"] = []byte("keyfile")
		master = k
	}
	s.setKeys(master)
	header["check"] = s.sealValue("header", "check", []byte(checkPlaintext))
	for name, value := range header {
		if _, err := tx.ExecContext(ctx, `INSERT INTO header (name, value) VALUES (?, ?)`, name, value); err != nil {
			return fmt.Errorf("write header: %v", err)
		}
	}
	return (&Tx{s: s, tx: tx, ctx: ctx}).initTrustRoot()
}

// setKeys derives the sealing and index keys from the store key and
// clears the store key.
func (s *Store) setKeys(master []byte) {
	seal, err1 := hkdf.Key(sha256.New, master, nil, "parley sqlitestore v1 seal", len(s.seal))
	index, err2 := hkdf.Key(sha256.New, master, nil, "parley sqlitestore v1 index", len(s.indexKey))
	if err1 != nil || err2 != nil {
		panic("sqlitestore: hkdf: " + errors.Join(err1, err2).Error()) // cannot happen for these lengths
	}
	copy(s.seal[:], seal)
	copy(s.indexKey[:], index)
	clear(master)
	clear(seal)
	clear(index)
}

// Close checkpoints and truncates the WAL, closes the database and
// forgets the keys.
func (s *Store) Close() error {
	clear(s.seal[:])
	clear(s.indexKey[:])
	err := s.checkpoint(context.Background())
	if cerr := s.db.Close(); cerr != nil {
		err = errors.Join(err, cerr)
	}
	if err != nil {
		return fmt.Errorf("sqlitestore: close %s: %v", s.path, err)
	}
	return nil
}

// checkpoint copies the WAL into the database file and truncates it to
// nothing, so that the old versions of pages it held are gone (in the
// database file, secure_delete zeroed them already).
func (s *Store) checkpoint(ctx context.Context) error {
	var busy, frames, copied int
	if err := s.db.QueryRowContext(ctx, `PRAGMA wal_checkpoint(TRUNCATE)`).Scan(&busy, &frames, &copied); err != nil {
		return fmt.Errorf("checkpoint: %v", err)
	}
	if busy != 0 {
		return errors.New("checkpoint: the WAL is in use")
	}
	return nil
}

// purge checkpoints the WAL after a transaction that overwrote or deleted
// values that must not stay on disk. The transaction is committed
// already, so a failure is not its failure: the next commit tries again.
func (s *Store) purge(ctx context.Context) {
	if err := s.checkpoint(ctx); err != nil {
		s.purgeOwed.Store(true)
		return
	}
	s.purgeOwed.Store(false)
}

// ad returns the associated data binding a value to its row.
func ad(table, key string) []byte {
	b := []byte("parley sqlitestore v1\x00")
	b = binary.BigEndian.AppendUint16(b, uint16(len(table)))
	b = append(b, table...)
	return append(b, key...)
}

// sealValue seals plaintext for the row (table, key).
func (s *Store) sealValue(table, key string, plaintext []byte) []byte {
	aead, err := chacha20poly1305.NewX(s.seal[:])
	if err != nil {
		panic("sqlitestore: " + err.Error()) // the key size is fixed
	}
	out := make([]byte, 1+chacha20poly1305.NonceSizeX, 1+chacha20poly1305.NonceSizeX+len(plaintext)+aead.Overhead())
	out[0] = sealVersion
	rand.Read(out[1:])
	return aead.Seal(out, out[1:], plaintext, ad(table, key))
}

// open opens a sealed value of the row (table, key).
func (s *Store) open(table, key string, sealed []byte) ([]byte, error) {
	aead, err := chacha20poly1305.NewX(s.seal[:])
	if err != nil {
		panic("sqlitestore: " + err.Error())
	}
	if len(sealed) < 1+chacha20poly1305.NonceSizeX+aead.Overhead() || sealed[0] != sealVersion {
		return nil, fmt.Errorf("%w: %s row %s: malformed", store.ErrCorrupt, table, key)
	}
	nonce := sealed[1 : 1+chacha20poly1305.NonceSizeX]
	p, err := aead.Open(nil, nonce, sealed[1+chacha20poly1305.NonceSizeX:], ad(table, key))
	if err != nil {
		return nil, fmt.Errorf("%w: %s row %s", store.ErrCorrupt, table, key)
	}
	return p, nil
}

// blind returns the keyed hash that stands for a name in a primary key.
func (s *Store) blind(kind string, name []byte) []byte {
	m := hmac.New(sha256.New, s.indexKey[:])
	m.Write([]byte(kind))
	m.Write([]byte{0})
	m.Write(name)
	return m.Sum(nil)[:16]
}

// Tx is a transaction on the store, valid only inside the function given
// to [Store.Update] or [Store.View].
type Tx struct {
	s        *Store
	tx       *sql.Tx
	ctx      context.Context
	readOnly bool
	// purge is set by writes that overwrite or delete values that must
	// not stay on disk: the WAL is checkpointed after the commit.
	purge bool
}

// Update runs fn in a write transaction and commits it if fn returns nil;
// otherwise (or if fn panics) it rolls back, leaving the store as it was.
// The commit is durable when Update returns nil.
func (s *Store) Update(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, false, fn)
}

// View runs fn in a transaction that may only read.
func (s *Store) View(ctx context.Context, fn func(store.Tx) error) error {
	return s.run(ctx, true, fn)
}

func (s *Store) run(ctx context.Context, readOnly bool, fn func(store.Tx) error) (err error) {
	sqlTx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlitestore: begin transaction: %v", err)
	}
	defer func() {
		if err != nil {
			sqlTx.Rollback()
		}
	}()
	defer func() {
		if p := recover(); p != nil {
			sqlTx.Rollback()
			panic(p)
		}
	}()
	t := &Tx{s: s, tx: sqlTx, ctx: ctx, readOnly: readOnly}
	if err := fn(t); err != nil {
		return err
	}
	if readOnly {
		return sqlTx.Rollback()
	}
	if err := sqlTx.Commit(); err != nil {
		return fmt.Errorf("sqlitestore: commit: %v", err)
	}
	if t.purge || s.purgeOwed.Load() {
		s.purge(ctx)
	}
	return nil
}

// exec runs a statement that writes.
func (t *Tx) exec(op, query string, args ...any) (sql.Result, error) {
	if t.readOnly {
		return nil, fmt.Errorf("sqlitestore: %s: read-only transaction", op)
	}
	r, err := t.tx.ExecContext(t.ctx, query, args...)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	return r, nil
}

// getSealed reads and opens one sealed value; ErrNotFound if no row.
func (t *Tx) getSealed(op, table, key, query string, args ...any) ([]byte, error) {
	var sealed []byte
	err := t.tx.QueryRowContext(t.ctx, query, args...).Scan(&sealed)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("sqlitestore: %s: %w", op, store.ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %s: %v", op, err)
	}
	p, err := t.s.open(table, key, sealed)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %s: %w", op, err)
	}
	return p, nil
}

// Store and Tx implement the store package's interfaces.
var (
	_ store.Store = (*Store)(nil)
	_ store.Tx    = (*Tx)(nil)
)
