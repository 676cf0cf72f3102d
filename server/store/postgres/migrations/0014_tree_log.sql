-- Parley server schema, version 14 (PostgreSQL); mirrors SQLite's version 15.
-- A conversation's ratchet tree is stored as a log instead of versions
-- per node: tree_snapshots holds whole trees, tree_changes the nodes each
-- epoch's commit changed (sqlstore/tree.go). A row of either table is
-- written once and deleted whole.
--
-- The conversations stored before this version are moved into the log
-- by parleyd when it opens the store (tree_converted = 0 until then),
-- which then drops tree_nodes.
CREATE TABLE tree_snapshots (
	conversation_id BIGINT NOT NULL REFERENCES conversations(id),
	epoch           BIGINT NOT NULL,
	data            BYTEA  NOT NULL,
	PRIMARY KEY (conversation_id, epoch)
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
ALTER TABLE tree_snapshots ALTER COLUMN data SET STORAGE EXTERNAL;
ALTER TABLE tree_changes ALTER COLUMN data SET STORAGE EXTERNAL;
