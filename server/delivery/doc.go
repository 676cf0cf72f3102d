// Package delivery is the transport-agnostic core of parleyd: the MLS
// Delivery Service and Authentication Service of RFC 9750.
//
// A [Service] owns the accounts, devices, sessions, invites, the KeyPackage
// directory, the conversations (MLS groups followed through their public
// state) and the ordered per-conversation logs, on a [store.Store]. It never
// imports net/http or a concrete database: the httpapi package adapts it to
// HTTP and WebSocket, as tailscale's derphttp adapts derp.Server.
//
// Ordering and durability. The server accepts exactly one commit per epoch
// of a conversation: handshake messages are validated by a [Follower]
// against the stored public group state and accepted by the store's
// compare-and-set on (conversation, epoch). Application messages from all
// connections go through one group-commit writer ([Service.Run]) that
// appends up to Config.MaxBatch entries in one transaction; a submission is
// answered only after its transaction committed. Acknowledgements are
// group-committed too, by a second loop that coalesces them per cursor: an
// HTTP acknowledgement is answered once durable, a WebSocket one is not
// waited for and may be lost in a crash (the device then receives those
// entries again and drops them by seq).
//
// Fan-out. After entries are durable the service publishes a wake-up on a
// [Notifier] (in-process [Hub] by default; a NATS notifier can replace it
// for several nodes). A [Conn] — one per connected device — does not carry
// entries in the notification: it reads from its own cursors, so a lost or
// coalesced notification never loses an entry and nothing is duplicated.
// It reads the latest entries from a shared in-memory tail that the writer
// fills after each commit, with each entry's frame encoded once for all
// connections, and everything else from the store.
//
// Errors returned to clients are *protocol.Error values with a stable code;
// other errors are internal faults. Messages never contain message content,
// tokens, keys or invite codes.
package delivery
