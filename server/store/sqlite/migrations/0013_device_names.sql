-- Parley server schema, version 13.
-- devices.sealed_name is the device's name as the account's devices
-- share it: sealed under a key that only they hold (docs/protocol.md,
-- "Device names"), opaque to the server; empty when none was set.
ALTER TABLE devices ADD COLUMN sealed_name BLOB NOT NULL DEFAULT x'';
