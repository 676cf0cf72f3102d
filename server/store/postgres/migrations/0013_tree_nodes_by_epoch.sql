-- Parley server schema, version 13 (PostgreSQL).
-- tree_nodes_by_epoch finds the nodes a range of epochs changed
-- (store.Store.TreeChanges): a node that holds a conversation's group in
-- memory at an earlier epoch, because another node accepted the commits
-- since, catches up by reading those nodes instead of the whole tree.
-- SQLite runs as one node, whose follower never falls behind its own
-- commits, and goes without the index and its write per commit.
CREATE INDEX tree_nodes_by_epoch ON tree_nodes (conversation_id, epoch);
