-- Parley server schema, version 4 (PostgreSQL); mirrors SQLite's version 5.
-- members.gap_from and members.gap_to are 0, or the seqs of the commit that
-- removed a device and of the commit that added it again before it had
-- acknowledged its removal: the device may not read the entries after
-- gap_from up to and including gap_to (the time it was out).
ALTER TABLE members ADD COLUMN gap_from BIGINT NOT NULL DEFAULT 0 CHECK (gap_from >= 0);
ALTER TABLE members ADD COLUMN gap_to BIGINT NOT NULL DEFAULT 0 CHECK (gap_to >= 0);
