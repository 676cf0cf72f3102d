-- Parley server schema, version 11 (PostgreSQL); mirrors SQLite's version 12.
-- Link mailboxes: the rendezvous through which a new device and an
-- existing device of an account set up their linking channel
-- (docs/protocol.md, "Linking a device"). A mailbox lives minutes
-- (expires, Unix microseconds); user_id is the account whose device
-- claimed it by writing first (0: unclaimed). Its messages are opaque,
-- encrypted by the devices; side 1 is the new device, 2 the existing.
-- devices.last_seen is when the device last signed in (created a session;
-- Unix microseconds, 0: never), shown to the devices of its own account.
ALTER TABLE devices ADD COLUMN last_seen BIGINT NOT NULL DEFAULT 0;
CREATE TABLE link_mailboxes (
	id         TEXT PRIMARY KEY,
	token_hash BYTEA NOT NULL,
	user_id    BIGINT NOT NULL DEFAULT 0,
	created    BIGINT NOT NULL,
	expires    BIGINT NOT NULL
);
CREATE INDEX link_mailboxes_expires ON link_mailboxes(expires);
CREATE TABLE link_messages (
	mailbox_id TEXT NOT NULL,
	seq        BIGINT NOT NULL,
	side       SMALLINT NOT NULL,
	data       BYTEA NOT NULL,
	created    BIGINT NOT NULL,
	PRIMARY KEY (mailbox_id, seq)
);
