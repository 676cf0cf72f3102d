-- Parley server schema, version 1. Times are Unix microseconds (0 = none).
CREATE TABLE users (
	id           INTEGER PRIMARY KEY,
	name         TEXT    NOT NULL UNIQUE,
	identity_key BLOB    NOT NULL,
	admin        INTEGER NOT NULL DEFAULT 0,
	disabled     INTEGER NOT NULL DEFAULT 0,
	created      INTEGER NOT NULL
);

CREATE TABLE devices (
	id            TEXT    PRIMARY KEY,
	user_id       INTEGER NOT NULL REFERENCES users(id),
	scheme        INTEGER NOT NULL,
	signature_key BLOB    NOT NULL UNIQUE,
	certificate   BLOB    NOT NULL,
	created       INTEGER NOT NULL,
	revoked       INTEGER NOT NULL DEFAULT 0,
	disabled      INTEGER NOT NULL DEFAULT 0,
	inbox_head    INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX devices_user ON devices(user_id);

CREATE TABLE invites (
	id        INTEGER PRIMARY KEY,
	code_hash BLOB    NOT NULL UNIQUE,
	uses_left INTEGER NOT NULL,
	expires   INTEGER NOT NULL,
	created   INTEGER NOT NULL
);

CREATE TABLE sessions (
	token_hash BLOB    PRIMARY KEY,
	device_id  TEXT    NOT NULL REFERENCES devices(id),
	user_id    INTEGER NOT NULL REFERENCES users(id),
	created    INTEGER NOT NULL,
	expires    INTEGER NOT NULL
);
CREATE INDEX sessions_device ON sessions(device_id);

CREATE TABLE challenges (
	nonce     BLOB    PRIMARY KEY,
	device_id TEXT    NOT NULL,
	expires   INTEGER NOT NULL
);

CREATE TABLE key_packages (
	id          INTEGER PRIMARY KEY,
	ref         BLOB    NOT NULL UNIQUE,
	device_id   TEXT    NOT NULL REFERENCES devices(id),
	suite       INTEGER NOT NULL,
	data        BLOB    NOT NULL,
	last_resort INTEGER NOT NULL,
	expires     INTEGER NOT NULL,
	created     INTEGER NOT NULL
);
CREATE INDEX key_packages_device ON key_packages(device_id, suite, last_resort, id);

CREATE TABLE conversations (
	id             INTEGER PRIMARY KEY,
	group_id       BLOB    NOT NULL UNIQUE,
	suite          INTEGER NOT NULL,
	epoch          INTEGER NOT NULL,
	group_info     BLOB    NOT NULL,
	tree           BLOB    NOT NULL,
	follower_state BLOB    NOT NULL,
	head           INTEGER NOT NULL DEFAULT 0,
	created        INTEGER NOT NULL
);

-- members holds membership and each member device's cursor.
CREATE TABLE members (
	conversation_id INTEGER NOT NULL REFERENCES conversations(id),
	device_id       TEXT    NOT NULL REFERENCES devices(id),
	cursor          INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, device_id)
);
CREATE INDEX members_device ON members(device_id);

CREATE TABLE entries (
	conversation_id INTEGER NOT NULL,
	seq             INTEGER NOT NULL,
	kind            INTEGER NOT NULL,
	sender          TEXT    NOT NULL,
	data            BLOB    NOT NULL,
	created         INTEGER NOT NULL,
	PRIMARY KEY (conversation_id, seq)
);

CREATE TABLE inbox (
	device_id       TEXT    NOT NULL,
	seq             INTEGER NOT NULL,
	conversation_id INTEGER NOT NULL,
	data            BLOB    NOT NULL,
	created         INTEGER NOT NULL,
	PRIMARY KEY (device_id, seq)
);

CREATE TABLE blobs (
	id      TEXT    PRIMARY KEY,
	owner   INTEGER NOT NULL REFERENCES users(id),
	size    INTEGER NOT NULL,
	sha256  BLOB    NOT NULL,
	created INTEGER NOT NULL
);
CREATE INDEX blobs_owner ON blobs(owner);
