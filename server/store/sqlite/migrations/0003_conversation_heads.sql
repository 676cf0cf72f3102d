-- Parley server schema, version 3.
-- A conversation's head (its last seq) moves to a narrow table of its own:
-- every group commit updates the heads of the conversations it appends to,
-- and updating the column in conversations rewrote the whole row (with its
-- GroupInfo, ratchet tree and follower state), a page per conversation.
CREATE TABLE conversation_heads (
	conversation_id INTEGER PRIMARY KEY REFERENCES conversations(id),
	head            INTEGER NOT NULL
);
INSERT INTO conversation_heads (conversation_id, head) SELECT id, head FROM conversations;
ALTER TABLE conversations DROP COLUMN head;
