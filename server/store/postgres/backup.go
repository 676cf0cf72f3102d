package postgres

import (
	"context"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
)

// backupTables are the tables a backup copies, in an order that satisfies
// their foreign keys on restore, with their columns.
var backupTables = []struct{ name, cols string }{
	{"users", "id, name, identity_key, admin, disabled, created"},
	{"devices", "id, user_id, scheme, signature_key, certificate, created, revoked, disabled, inbox_head, revocation, last_seen, sealed_name"},
	{"invites", "id, code_hash, uses_left, expires, created"},
	{"sessions", "token_hash, device_id, user_id, created, expires"},
	{"challenges", "nonce, device_id, expires"},
	{"key_packages", "id, ref, device_id, suite, data, last_resort, expires, created, claimed"},
	{"key_package_budgets", "device_id, tokens, updated"},
	{"conversations", "id, group_id, suite, epoch, group_info, follower_state, proposals, proposal_bytes, proposals_digest, head, created, timer, timer_since, tree_floor, legacy_tree, tree_snapshot, tree_snapshot_bytes, tree_log_bytes, tree_converted"},
	{"tree_snapshots", "conversation_id, epoch, parts"},
	{"tree_snapshot_parts", "conversation_id, epoch, part, data"},
	{"tree_changes", "conversation_id, epoch, data"},
	{"pending_proposals", "conversation_id, idx, epoch, data, created"},
	{"members", "conversation_id, device_id, cursor, left_seq, joined_seq, gap_from, gap_to"},
	{"entries", "conversation_id, seq, kind, sender, data, created, hash, epoch"},
	{"inbox", "device_id, seq, conversation_id, data, created"},
	{"blobs", "id, owner, size, sha256, created, expires"},
	{"blob_reservations", "id, owner, bytes, created, expires"},
	{"link_mailboxes", "id, token_hash, user_id, created, expires"},
	{"link_messages", "mailbox_id, seq, side, data, created"},
}

// identityTables are the tables whose id column is an identity.
var identityTables = []string{"users", "invites", "key_packages", "conversations", "blob_reservations"}

// Backup writes a consistent logical copy of the store's data to the file
// at path, which must not exist. It is meant for small deployments and
// tests; production PostgreSQL deployments should use pg_dump or
// continuous archiving instead.
//
// The copy is read in one REPEATABLE READ, READ ONLY transaction, so it is
// one snapshot while other nodes keep writing. The file is a psql script in
// pg_dump's plain data-only format (COPY … FROM stdin blocks) that checks
// the schema version, loads every table in one transaction and moves the
// identity sequences past the copied ids. Restore it into an empty schema
// that Open has migrated to the same version:
//
//	PGOPTIONS='-c search_path=parley' psql -v ON_ERROR_STOP=1 -d DB -f backup.sql
func (s *Store) Backup(ctx context.Context, path string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("postgres: backup to %s: %v", path, err)
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("postgres: backup to %s: %v", path, cerr)
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	err = pgx.BeginTxFunc(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		var version int
		if err := tx.QueryRow(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&version); err != nil {
			return err
		}
		if _, err := fmt.Fprintf(f, `-- Parley PostgreSQL logical backup (data only) of schema %s at version %d, taken %s.
-- Restore into an empty schema migrated to version %d:
--   PGOPTIONS='-c search_path=<schema>' psql -v ON_ERROR_STOP=1 -f <this file>
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
BEGIN;
DO $$ BEGIN
	IF (SELECT COALESCE(MAX(version), 0) FROM schema_migrations) <> %d THEN
		RAISE EXCEPTION 'parley backup: target schema is not at version %d';
	END IF;
END $$;
`, quoteComment(s.schema), version, time.Now().UTC().Format(time.RFC3339), version, version, version); err != nil {
			return err
		}
		pc := tx.Conn().PgConn()
		for _, t := range backupTables {
			if _, err := fmt.Fprintf(f, "\nCOPY %s (%s) FROM stdin;\n", t.name, t.cols); err != nil {
				return err
			}
			if _, err := pc.CopyTo(ctx, f, fmt.Sprintf("COPY %s (%s) TO STDOUT", t.name, t.cols)); err != nil {
				return fmt.Errorf("copy %s: %v", t.name, err)
			}
			if _, err := io.WriteString(f, "\\.\n"); err != nil {
				return err
			}
		}
		io.WriteString(f, "\n")
		for _, t := range identityTables {
			if _, err := fmt.Fprintf(f, "SELECT setval(pg_get_serial_sequence('%s', 'id'), COALESCE(MAX(id), 0) + 1, false) FROM %s;\n", t, t); err != nil {
				return err
			}
		}
		_, err := io.WriteString(f, "COMMIT;\n")
		return err
	})
	if err == nil {
		err = f.Sync()
	}
	if err != nil {
		return fmt.Errorf("postgres: backup to %s: %v", path, err)
	}
	return nil
}

// quoteComment makes s safe inside a one-line SQL comment.
func quoteComment(s string) string {
	return strings.NewReplacer("\n", " ", "\r", " ").Replace(s)
}
