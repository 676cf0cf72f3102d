package sqlstore

// Invariant is a check of a store's consistency: a query that returns
// no rows, and what a row it returns means.
type Invariant struct{ What, SQL string }

// Invariants are the checks whose SQL both backends share; each backend's
// CheckInvariants runs them with its own.
var Invariants = []Invariant{
	// The tree log (tree.go).
	{What: "tree without its latest snapshot, whole", SQL: `SELECT c.id FROM conversations c WHERE c.legacy_tree = 0 AND NOT EXISTS (SELECT 1 FROM tree_snapshots s
		WHERE s.conversation_id = c.id AND s.epoch = c.tree_snapshot AND s.parts = (SELECT count(*) FROM tree_snapshot_parts p WHERE p.conversation_id = c.id AND p.epoch = s.epoch))`},
	{What: "tree not readable from its floor: the oldest snapshot after it, or an epoch's changes missing since", SQL: `SELECT c.id FROM conversations c
		JOIN (SELECT conversation_id, min(epoch) AS oldest FROM tree_snapshots GROUP BY conversation_id) s ON s.conversation_id = c.id
		WHERE c.legacy_tree = 0 AND (s.oldest > c.tree_floor OR c.epoch - s.oldest <>
			(SELECT count(*) FROM tree_changes t WHERE t.conversation_id = c.id AND t.epoch > s.oldest AND t.epoch <= c.epoch))`},
	{What: "key package of a missing or inactive device", SQL: `SELECT k.id FROM key_packages k LEFT JOIN devices d ON d.id = k.device_id WHERE d.id IS NULL OR d.revoked <> 0`},
	{What: "device of a missing user", SQL: `SELECT d.id FROM devices d LEFT JOIN users u ON u.id = d.user_id WHERE u.id IS NULL`},
	{What: "inbox entry beyond the device's inbox head", SQL: `SELECT i.device_id FROM inbox i LEFT JOIN devices d ON d.id = i.device_id WHERE d.id IS NULL OR i.seq > d.inbox_head OR i.seq < 1`},
	{What: "inbox entry of a missing conversation", SQL: `SELECT i.device_id FROM inbox i LEFT JOIN conversations c ON c.id = i.conversation_id WHERE c.id IS NULL`},
	{What: "session of a missing device or another user's device", SQL: `SELECT s.device_id FROM sessions s LEFT JOIN devices d ON d.id = s.device_id WHERE d.id IS NULL OR d.user_id <> s.user_id`},
	{What: "negative invite uses", SQL: `SELECT id FROM invites WHERE uses_left < 0`},
	{What: "blob of a missing user", SQL: `SELECT b.id FROM blobs b LEFT JOIN users u ON u.id = b.owner WHERE u.id IS NULL`},
	{What: "blob whose lifetime ends before it was stored", SQL: `SELECT id FROM blobs WHERE expires <> 0 AND expires <= created`},
}
