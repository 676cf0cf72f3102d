-- Parley server schema, version 11.
-- blobs.expires is when an attachment's lifetime ends (Unix microseconds;
-- 0: none, it goes with the retention): the uploader asked for it
-- (POST /v1/attachments?ttl_seconds=N, created + N). Prune deletes the
-- record, and the server the content, once it has passed; until then an
-- expired blob is neither served nor counted against its owner's quota.
ALTER TABLE blobs ADD COLUMN expires INTEGER NOT NULL DEFAULT 0;
CREATE INDEX blobs_expires ON blobs(expires) WHERE expires <> 0;
