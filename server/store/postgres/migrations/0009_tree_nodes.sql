-- Parley server schema, version 9 (PostgreSQL); mirrors SQLite's version 10.
-- A conversation's ratchet tree is stored node by node, so that a commit
-- writes the nodes it changed instead of the whole tree: tree_nodes holds,
-- per node, a version for each epoch that changed it (data NULL: blank from
-- that epoch on). The tree of epoch E is, for each node, its latest version
-- at or before E. Commits delete the versions that only epochs before
-- tree_floor need; the trees of tree_floor up to the current epoch can be
-- rebuilt.
--
-- The tree column goes (it repeated the tree the follower state holds).
-- Conversations stored before this version keep their whole tree in
-- follower_state (legacy_tree = 1) until parleyd moves it into tree_nodes
-- when it starts.
CREATE TABLE tree_nodes (
	conversation_id BIGINT  NOT NULL REFERENCES conversations(id),
	node            INTEGER NOT NULL,
	epoch           BIGINT  NOT NULL,
	data            BYTEA,
	PRIMARY KEY (conversation_id, node, epoch)
);
ALTER TABLE conversations ADD COLUMN tree_floor BIGINT NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN legacy_tree INTEGER NOT NULL DEFAULT 0;
UPDATE conversations SET legacy_tree = 1;
ALTER TABLE conversations DROP COLUMN tree;
