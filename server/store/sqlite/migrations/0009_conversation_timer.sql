-- Parley server schema, version 9.
-- conversations.timer is the disappearing-message timer in seconds (0 =
-- off) of the conversation's current epoch, as its policy extension
-- (protocol.Policy.Timer) says, and timer_since when it was set (Unix
-- microseconds): Prune empties the ciphertext of the application entries
-- appended since then that are older than the timer.
ALTER TABLE conversations ADD COLUMN timer INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversations ADD COLUMN timer_since INTEGER NOT NULL DEFAULT 0;
