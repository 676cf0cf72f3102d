-- Parley server schema, version 14 (PostgreSQL); mirrors SQLite's version 15.
-- A conversation's ratchet tree is stored as a log instead of versions
-- per node: tree_snapshots (with tree_snapshot_parts) holds whole trees,
-- tree_changes the nodes each epoch's commit changed (sqlstore/tree.go).
-- Rows are written once and deleted whole.
--
-- The conversations stored before this version are moved into the log
-- by parleyd when it opens the store (tree_converted = 0 until then),
-- which then drops tree_nodes.
CREATE TABLE tree_snapshots (
	conversation_id BIGINT  NOT NULL REFERENCES conversations(id),
	epoch           BIGINT  NOT NULL,
	parts           INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, epoch)
);
-- A snapshot's encoding in parts of about 1 MiB, each written in a
-- transaction of its own (a whole 26 MB tree at once held SQLite's one
-- writer for a second); the row of tree_snapshots, written last, makes
-- it readable.
CREATE TABLE tree_snapshot_parts (
	conversation_id BIGINT  NOT NULL REFERENCES conversations(id),
	epoch           BIGINT  NOT NULL,
	part            INTEGER NOT NULL,
	data            BYTEA   NOT NULL,
	PRIMARY KEY (conversation_id, epoch, part)
);
CREATE TABLE tree_changes (
	conversation_id BIGINT NOT NULL REFERENCES conversations(id),
	epoch           BIGINT NOT NULL,
	data            BYTEA  NOT NULL,
	PRIMARY KEY (conversation_id, epoch)
);
ALTER TABLE conversations ADD COLUMN tree_snapshot BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN tree_snapshot_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN tree_log_bytes BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN tree_converted INTEGER NOT NULL DEFAULT 1;
UPDATE conversations SET tree_converted = 0 WHERE legacy_tree = 0;
-- Node data is random-looking key material: stored out of line without
-- trying to compress it.
ALTER TABLE tree_snapshot_parts ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE tree_changes ALTER COLUMN data SET STORAGE EXTERNAL;
