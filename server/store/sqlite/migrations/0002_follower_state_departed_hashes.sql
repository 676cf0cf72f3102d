-- Parley server schema, version 2.
-- conversations.proposals counts the proposals of the current epoch: with
-- the epoch, the version of follower_state (which now includes them).
ALTER TABLE conversations ADD COLUMN proposals INTEGER NOT NULL DEFAULT 0;
-- members.left_seq is 0 for a member; for a device removed by a commit, the
-- commit's seq: the device may read up to it and nothing after it.
ALTER TABLE members ADD COLUMN left_seq INTEGER NOT NULL DEFAULT 0;
-- entries.hash identifies an accepted handshake message for idempotent
-- retries; entries.epoch is the conversation's epoch after a handshake.
-- Both are unset for application entries.
ALTER TABLE entries ADD COLUMN hash BLOB;
ALTER TABLE entries ADD COLUMN epoch INTEGER NOT NULL DEFAULT 0;
CREATE UNIQUE INDEX entries_hash ON entries(conversation_id, hash) WHERE hash IS NOT NULL;
