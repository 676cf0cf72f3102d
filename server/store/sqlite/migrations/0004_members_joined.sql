-- Parley server schema, version 4.
-- members.joined_seq is the seq of the commit that added the device (0 for
-- a conversation's creator, and for memberships older than this version,
-- whose adding commit was not recorded): the device may read only the
-- entries after it. A departed device added again keeps it, so that it can
-- read the rest of its old membership.
ALTER TABLE members ADD COLUMN joined_seq INTEGER NOT NULL DEFAULT 0;
