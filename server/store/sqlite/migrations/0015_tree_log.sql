-- Parley server schema, version 15.
-- A conversation's ratchet tree is stored as a log instead of versions
-- per node: tree_snapshots (with tree_snapshot_parts) holds whole trees,
-- tree_changes the nodes each epoch's commit changed (sqlstore/tree.go). Keeping versions per node
-- made each commit of a large conversation delete the versions it
-- superseded from pages written long before, rewriting them: 357 KiB
-- written per commit at 10,000 members. Rows are written once
-- and deleted whole.
--
-- The conversations stored before this version are moved into the log
-- by parleyd when it opens the store (tree_converted = 0 until then),
-- which then drops tree_nodes.
CREATE TABLE tree_snapshots (
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	epoch           INTEGER NOT NULL,
	parts           INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, epoch)
);
-- A snapshot's encoding in parts of about 1 MiB, each written in a
-- transaction of its own (a whole 26 MB tree at once held SQLite's one
-- writer for a second); the row of tree_snapshots, written last, makes
-- it readable.
CREATE TABLE tree_snapshot_parts (
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	epoch           INTEGER NOT NULL,
	part            INTEGER NOT NULL,
	data            BLOB    NOT NULL,
	PRIMARY KEY (conversation_id, epoch, part)
);
CREATE TABLE tree_changes (
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	epoch           INTEGER NOT NULL,
	data            BLOB    NOT NULL,
	PRIMARY KEY (conversation_id, epoch)
);
ALTER TABLE conversations ADD COLUMN tree_snapshot INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN tree_snapshot_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN tree_log_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN tree_converted INTEGER NOT NULL DEFAULT 1;
UPDATE conversations SET tree_converted = 0 WHERE legacy_tree = 0;
