// Package sqlstore holds the SQL that the server store's backends share:
// every store.Store method whose statements are the same on SQLite and on
// PostgreSQL is written here once, over a small query interface
// ([Querier]) that each backend implements on its own driver. A backend
// embeds a [Store] and adds the methods in which the databases really
// differ (group-committed appends, pruning, backup), and it implements
// [Backend], the few statements inside shared methods that it writes its
// own way: the compare-and-set of commits and proposals, the membership
// changes of a commit, KeyPackage claims and last-resort replacement.
//
// The statements use numbered placeholders ($1, $2, …), which both
// databases accept, and SQL that both understand: booleans as true, false
// and NOT x (SQLite stores them as 1 and 0), COUNT(*) FILTER (WHERE …),
// CAST(… AS BIGINT), RETURNING and ON CONFLICT. Where the schemas or the
// locking differ, [Dialect] names the difference.
//
// Times are stored as Unix microseconds, 0 meaning none ([Micros],
// [FromMicros]); byte columns are NOT NULL ([NonNil]).
package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/server/store"
)

// Row is one result row: the result of QueryRow, or a row that Query
// hands to its callback.
type Row interface {
	Scan(dest ...any) error
}

// Querier runs statements, in a transaction of the backend or outside one.
type Querier interface {
	// Exec runs a statement and returns the number of rows it changed.
	Exec(ctx context.Context, sql string, args ...any) (int64, error)
	// QueryRow runs a query for at most one row. Scanning the result
	// returns an error matching sql.ErrNoRows when there is none.
	QueryRow(ctx context.Context, sql string, args ...any) Row
	// Query runs a query and calls each for every row, in order; an
	// error from each stops the query and is returned.
	Query(ctx context.Context, sql string, args []any, each func(Row) error) error
}

// Backend is a database under a Store: its reads, its write transactions
// and the statements it writes its own way because its database differs
// there. The methods that take a tx run in the caller's write transaction;
// on an error the caller rolls it back.
type Backend interface {
	// Read returns the Querier for reads outside a transaction; each read
	// sees committed data.
	Read() Querier
	// Write runs fn in a write transaction and commits it when fn returns
	// nil; otherwise (or on a panic) nothing of it stays. fn may run more
	// than once (PostgreSQL's aborted transactions are retried), so it
	// must not keep results of an earlier attempt.
	Write(ctx context.Context, fn func(tx Querier) error) error

	// ReplaceLastResort stores kp, a last-resort KeyPackage of an active
	// device, in place of that device's previous last-resort package of
	// the suite. ErrConflict for a taken ref.
	ReplaceLastResort(ctx context.Context, tx Querier, kp store.KeyPackage) error
	// ClaimDevice claims device d's KeyPackage of the suite at now under
	// the budget b: the oldest unexpired one-time package when b leaves
	// a token (which it spends), deleted; else the newest unexpired
	// last-resort package, kept and marked claimed. ok is false when the
	// device has neither.
	ClaimDevice(ctx context.Context, tx Querier, d store.DeviceID, suite uint16, now time.Time, b store.ClaimBudget) (kp store.KeyPackage, ok bool, err error)
	// AdvanceEpoch is the compare-and-set of Commit: when conversation
	// c.Conversation is at epoch c.Epoch with c.Proposals proposals, it
	// moves it to the next epoch without proposals (proposal bytes 0,
	// empty digest), stores c's GroupInfo and follower state, raises the
	// tree floor to c.TreeFloor(), advances the head by one and returns
	// the new head. ok is false, and nothing changed, when the
	// conversation is elsewhere or missing.
	AdvanceEpoch(ctx context.Context, tx Querier, c store.Commit) (seq uint64, ok bool, err error)
	// AddProposal is the compare-and-set of Propose: when conversation
	// p.Conversation is at epoch p.Epoch with p.Proposals proposals, it
	// counts one more proposal of len(p.Data) bytes, sets the digest to
	// p.Digest, advances the head by one and returns the new head. ok is
	// false, and nothing changed, when the conversation is elsewhere or
	// missing.
	AddProposal(ctx context.Context, tx Querier, p store.Proposal) (seq uint64, ok bool, err error)
	// Depart marks the member devices of conversation id departed at seq
	// (Membership.Left); devices that are not members are ignored.
	Depart(ctx context.Context, tx Querier, id store.ConversationID, seq uint64, devices []store.DeviceID) error
	// Join adds the devices to conversation id by the commit at seq, as
	// store.Store's Commit describes: a new member's cursor and joined
	// seq start at seq; a departed device restarts at seq with the time
	// it was out as its gap; a member stays as it is. A device that does
	// not exist fails with an error wrapping ErrNotFound that names it.
	Join(ctx context.Context, tx Querier, id store.ConversationID, seq uint64, devices []store.DeviceID) error
}

// Dialect is what the shared statements need to know of a backend's
// database and schema.
type Dialect struct {
	// Name is the backend's name, the prefix of its errors ("sqlite").
	Name string
	// IsUnique reports whether err is a UNIQUE or PRIMARY KEY violation,
	// IsForeignKey whether it is a FOREIGN KEY violation.
	IsUnique, IsForeignKey func(err error) bool
	// Heads is the table of each conversation's log head and
	// pending-proposal counters (head, proposals, proposal_bytes,
	// proposals_digest): "conversations" when they are columns of the
	// conversation row, else a table of their own with a row per
	// conversation keyed by conversation_id (SQLite keeps them apart, so
	// that an append does not rewrite the wide conversation row).
	Heads string
	// ForShare and ForNoKeyUpdate end a SELECT in a write transaction
	// that locks the rows it reads until the transaction ends:
	// PostgreSQL's " FOR SHARE" and " FOR NO KEY UPDATE". They are empty
	// where write transactions run one at a time (SQLite).
	ForShare, ForNoKeyUpdate string
}

// conversationsTable is the Heads of a schema that keeps the heads in the
// conversation row.
const conversationsTable = "conversations"

// Store implements the methods of store.Store whose statements are the
// same on every backend, on a Backend. It is safe for concurrent use.
type Store struct {
	b Backend
	d Dialect
	q queries
}

// New returns the shared methods on b, whose database d describes.
func New(b Backend, d Dialect) *Store {
	return &Store{b: b, d: d, q: newQueries(d)}
}

// queries are the statements that depend on the Dialect, built once.
type queries struct {
	// conversation selects convCols by c.id; conversationByGroupID by
	// c.group_id.
	conversation, conversationByGroupID string
	// membership selects a device's membership of a conversation;
	// memberships all of a device's.
	membership, memberships string
	// epochAndProposals selects a conversation's epoch and proposal count.
	epochAndProposals string
	// newHeads inserts the heads row of a new conversation; empty when
	// the heads are columns of the conversation row.
	newHeads string
	// ackForward moves a member's cursor forward within the head;
	// ackState reads a membership's cursor, left seq and the head.
	ackForward, ackState string
	// activeDevice locks an active device for a KeyPackage upload.
	activeDevice string
	// lockUser locks a user row for a quota reservation.
	lockUser string
}

// newQueries builds the statements for d's schema.
func newQueries(d Dialect) queries {
	// In a query of conversation c, h is the alias of the heads' columns
	// and headsJoin the join that brings them (none when they are c's
	// own); a query of the heads alone reads heads by its column key.
	h, headsJoin := "c", ""
	heads, key := d.Heads, "id"
	if d.Heads != conversationsTable {
		h, headsJoin, key = "h", " JOIN "+d.Heads+" h ON h.conversation_id = c.id", "conversation_id"
	}
	conv := `SELECT c.id, c.group_id, c.suite, c.epoch, c.group_info, c.follower_state, ` +
		h + `.proposals, ` + h + `.proposal_bytes, ` + h + `.proposals_digest, ` + h + `.head, c.created, c.timer, c.legacy_tree FROM conversations c` + headsJoin
	memberFrom := `FROM members m JOIN conversations c ON c.id = m.conversation_id` + headsJoin
	q := queries{
		conversation:          conv + ` WHERE c.id = $1`,
		conversationByGroupID: conv + ` WHERE c.group_id = $1`,
		membership: `SELECT m.cursor, ` + h + `.head, c.epoch, m.left_seq, m.joined_seq, m.gap_from, m.gap_to ` + memberFrom +
			` WHERE m.conversation_id = $1 AND m.device_id = $2`,
		memberships: `SELECT m.conversation_id, m.cursor, ` + h + `.head, c.epoch, m.left_seq, m.joined_seq, m.gap_from, m.gap_to ` + memberFrom +
			` WHERE m.device_id = $1 ORDER BY m.conversation_id`,
		epochAndProposals: `SELECT c.epoch, ` + h + `.proposals FROM conversations c` + headsJoin + ` WHERE c.id = $1`,
		ackForward: `UPDATE members SET cursor = $1 WHERE conversation_id = $2 AND device_id = $3 AND cursor < $1 AND left_seq = 0
			AND $1 <= (SELECT head FROM ` + heads + ` WHERE ` + key + ` = $2)`,
		ackState: `SELECT m.cursor, h.head, m.left_seq FROM members m JOIN ` + heads + ` h ON h.` + key + ` = m.conversation_id
			WHERE m.conversation_id = $1 AND m.device_id = $2`,
		activeDevice: `SELECT 1 FROM devices WHERE id = $1 AND revoked = 0 AND NOT disabled` + d.ForShare,
		lockUser:     `SELECT 1 FROM users WHERE id = $1` + d.ForNoKeyUpdate,
	}
	if d.Heads != conversationsTable {
		q.newHeads = `INSERT INTO ` + d.Heads + ` (conversation_id, head) VALUES ($1, 0)`
	}
	return q
}

// SchemaVersion returns the newest applied migration (0 for none).
func (s *Store) SchemaVersion(ctx context.Context) (int, error) {
	var v int
	if err := s.b.Read().QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&v); err != nil {
		return 0, fmt.Errorf("%s: schema version: %v", s.d.Name, err)
	}
	return v, nil
}

// errorf formats an error of the backend: its name, then format, whose
// %w verbs wrap as in fmt.Errorf.
func (s *Store) errorf(format string, args ...any) error {
	return fmt.Errorf("%s: %w", s.d.Name, fmt.Errorf(format, args...))
}

// constraint maps unique violations to store.ErrConflict and foreign key
// violations to store.ErrNotFound.
func (s *Store) constraint(err error) error {
	switch {
	case err == nil:
		return nil
	case s.d.IsUnique(err):
		return store.ErrConflict
	case s.d.IsForeignKey(err):
		return store.ErrNotFound
	}
	return err
}

// collect runs a query on q and returns scan's value of every row.
func collect[T any](ctx context.Context, q Querier, scan func(Row) (T, error), sql string, args ...any) ([]T, error) {
	var out []T
	err := q.Query(ctx, sql, args, func(r Row) error {
		v, err := scan(r)
		if err == nil {
			out = append(out, v)
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	return out, nil
}

// scanDeviceID scans a row of one device id.
func scanDeviceID(r Row) (store.DeviceID, error) {
	var d store.DeviceID
	err := r.Scan(&d)
	return d, err
}

// notFound maps sql.ErrNoRows to store.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	return err
}

// isNoRows reports whether err says a query found no row.
func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// mustAffect returns store.ErrNotFound unless a statement changed a row.
func mustAffect(n int64, err error) error {
	if err == nil && n == 0 {
		return store.ErrNotFound
	}
	return err
}

// Micros converts a time to stored Unix microseconds; zero stays 0.
func Micros(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMicro()
}

// FromMicros converts stored Unix microseconds to a UTC time; 0 is zero.
func FromMicros(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMicro(v).UTC()
}

// NonNil returns b, or an empty slice for nil (byte columns are NOT NULL).
func NonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}

// nullBytes returns b, or NULL for an empty b.
func nullBytes(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}
