-- Parley server schema, version 7 (PostgreSQL); mirrors SQLite's version 8.
-- devices.revocation is the signed statement (protocol.DeviceRevocation)
-- by which a user revoked the device; empty when there is none (not
-- revoked, or revoked before this version). devices_inactive indexes the
-- revoked and disabled devices, from which InactiveMembers starts: they are
-- few, while a member's conversations may have many members.
ALTER TABLE devices ADD COLUMN revocation BYTEA NOT NULL DEFAULT ''::bytea;
CREATE INDEX devices_inactive ON devices(id) WHERE revoked <> 0 OR disabled;
