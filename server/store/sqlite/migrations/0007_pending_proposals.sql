-- Parley server schema, version 7.
-- A proposal no longer rewrites the follower state: conversations.follower_state
-- is the state as of the start of the epoch (written by the commit), and
-- each accepted proposal of the epoch is a row of pending_proposals, dropped
-- by the next commit. The proposal counter moves to the narrow
-- conversation_heads row with the pending proposals' total size and digest,
-- so that accepting a proposal does not rewrite the conversations row (its
-- GroupInfo, ratchet tree and follower state).
--
-- A follower state written before this version already includes the
-- proposals of its epoch: their count restarts at 0 here, and the proposals
-- accepted from now on are counted after them.
ALTER TABLE conversation_heads ADD COLUMN proposals INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversation_heads ADD COLUMN proposal_bytes INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversation_heads ADD COLUMN proposals_digest BLOB NOT NULL DEFAULT x'';
ALTER TABLE conversations DROP COLUMN proposals;
CREATE TABLE pending_proposals (
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	idx             INTEGER NOT NULL,
	epoch           INTEGER NOT NULL,
	data            BLOB    NOT NULL,
	created         INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, idx)
);
