-- Parley server schema, version 12.
-- Link mailboxes: the rendezvous through which a new device and an
-- existing device of an account set up their linking channel
-- (docs/protocol.md, "Linking a device"). A mailbox lives minutes
-- (expires, Unix microseconds); user_id is the account whose device
-- claimed it by writing first (0: unclaimed). Its messages are opaque,
-- encrypted by the devices; side 1 is the new device, 2 the existing.
-- devices.last_seen is when the device last signed in (created a session;
-- Unix microseconds, 0: never), shown to the devices of its own account.
ALTER TABLE devices ADD COLUMN last_seen INTEGER NOT NULL DEFAULT 0;
CREATE TABLE link_mailboxes (
	id         TEXT PRIMARY KEY,
	token_hash BLOB NOT NULL,
	user_id    INTEGER NOT NULL DEFAULT 0,
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL
);
CREATE INDEX link_mailboxes_expires ON link_mailboxes(expires);
CREATE TABLE link_messages (
	mailbox_id TEXT NOT NULL,
	seq        INTEGER NOT NULL,
	side       INTEGER NOT NULL,
	data       BLOB NOT NULL,
	created    INTEGER NOT NULL,
	PRIMARY KEY (mailbox_id, seq)
);
