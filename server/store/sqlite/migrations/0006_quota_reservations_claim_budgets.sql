-- Parley server schema, version 6.
-- blob_reservations hold attachment quota for uploads in progress: a row
-- counts against its owner's quota until it is turned into a blob record,
-- deleted, or expires (so a crashed upload frees its reservation).
CREATE TABLE blob_reservations (
	id      INTEGER PRIMARY KEY,
	owner   INTEGER NOT NULL REFERENCES users(id),
	bytes   INTEGER NOT NULL,
	created INTEGER NOT NULL,
	expires INTEGER NOT NULL
);
CREATE INDEX blob_reservations_owner ON blob_reservations(owner, expires);
CREATE INDEX blob_reservations_expires ON blob_reservations(expires);
-- key_packages.claimed is 1 once a claim has returned the package (only a
-- last-resort package survives its claim): its owner should replace it.
ALTER TABLE key_packages ADD COLUMN claimed INTEGER NOT NULL DEFAULT 0;
-- key_package_budgets are the per-device token buckets of one-time
-- KeyPackage claims (store.ClaimBudget); a device without a row has a
-- full bucket.
CREATE TABLE key_package_budgets (
	device_id TEXT    PRIMARY KEY REFERENCES devices(id),
	tokens    REAL    NOT NULL,
	updated   INTEGER NOT NULL
);
