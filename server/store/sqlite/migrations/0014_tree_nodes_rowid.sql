-- Parley server schema, version 14.
-- tree_nodes becomes a rowid table with an index on (conversation_id,
-- node, epoch). As a WITHOUT ROWID table its rows lived in the key's
-- b-tree, whose pages keep at most about 1,000 bytes of a row: a node of
-- the post-quantum suites (~1.3 KB) spilled the rest to an overflow page
-- of its own, and the ~14 nodes a path commit changes landed in 14
-- different leaf pages, besides. Now a commit's new versions are
-- appended side by side (three to a page) and only the small index
-- entries scatter: an update commit in a 10,000-member conversation
-- writes 121 KiB (WAL and checkpoint) instead of 276 KiB.
CREATE TABLE tree_nodes_v14 (
	id              INTEGER PRIMARY KEY,
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	node            INTEGER NOT NULL,
	epoch           INTEGER NOT NULL,
	data            BLOB
);
INSERT INTO tree_nodes_v14 (conversation_id, node, epoch, data)
	SELECT conversation_id, node, epoch, data FROM tree_nodes ORDER BY conversation_id, epoch, node;
DROP TABLE tree_nodes;
ALTER TABLE tree_nodes_v14 RENAME TO tree_nodes;
CREATE UNIQUE INDEX tree_nodes_by_node ON tree_nodes (conversation_id, node, epoch);
