-- Parley server schema, version 6 (PostgreSQL); mirrors SQLite's version 7.
-- A proposal no longer rewrites the follower state: conversations.follower_state
-- is the state as of the start of the epoch (written by the commit), and
-- each accepted proposal of the epoch is a row of pending_proposals, dropped
-- by the next commit; conversations.proposal_bytes and proposals_digest
-- describe them. (An UPDATE of the conversations row keeps its large,
-- TOASTed columns where they are.)
--
-- A follower state written before this version already includes the
-- proposals of its epoch: their count restarts at 0 here, and the proposals
-- accepted from now on are counted after them.
UPDATE conversations SET proposals = 0;
ALTER TABLE conversations ADD COLUMN proposal_bytes BIGINT NOT NULL DEFAULT 0 CHECK (proposal_bytes >= 0);
ALTER TABLE conversations ADD COLUMN proposals_digest BYTEA NOT NULL DEFAULT ''::bytea;
CREATE TABLE pending_proposals (
	conversation_id BIGINT NOT NULL REFERENCES conversations(id),
	idx             BIGINT NOT NULL CHECK (idx >= 0),
	epoch           BIGINT NOT NULL,
	data            BYTEA  NOT NULL,
	created         BIGINT NOT NULL,
	PRIMARY KEY (conversation_id, idx)
);
