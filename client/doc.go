// Package client is Parley's client SDK: the account and device keys, the
// encrypted local store, the sync loop with parleyd, conversations (MLS
// groups), message content and attachments. Every UI (the parley CLI, the
// TUI, the web client) is a thin layer on a [Client].
//
// # Lifecycle
//
// [Open] opens (or creates) the encrypted profile in Config.ProfileDir.
// A new profile is bound to an account with [Client.Register]; an existing
// one is ready at once. [Client.Run] keeps one WebSocket to the server open
// (reconnecting with exponential backoff and jitter) and processes
// everything the server pushes; [Client.Sync] does the same once over
// HTTP, for command-line tools that do not stay connected. What happens is
// reported on [Client.Events].
//
// # Trust
//
// Every MLS leaf carries a credential (see [EncodeCredential]) holding the
// device certificate by which the user's identity key certifies the
// device's signature key. A leaf is accepted only if that certificate
// verifies under the identity key this client pinned for the user: on
// first use it is fetched from the server (GET /v1/users/{name}) and
// pinned; a different key later raises an [EventIdentityChanged] event and
// blocks sending to conversations with that user until
// [Client.AcknowledgeIdentity]. Users compare [Client.SafetyNumber]s to
// detect a server that substituted a key on first use; until they do,
// Conversation.Unverified names the members trusted on first use only.
//
// The store records the pinned keys so that deleting a record, or putting
// back an older copy of it, shows when the profile opens
// (store.TrustAlarm). Such a user is not pinned again on first use:
// the client raises an [EventIdentityChanged] whose Err is a
// [*TrustRollbackError], and treats the user as after an identity change
// ([ErrTrustRollback]) until the key the server presents now is compared
// ([Client.SafetyNumberPending]) and accepted.
//
// # Membership
//
// Members, not the server, decide who joins. Before merging a commit the
// client checks every membership change against its own rules
// (docs/protocol.md, "Membership rules"): an external commit must
// resynchronize a member device or add a new device of a member user, a
// 1:1 conversation never has more than two users, and Add proposals come
// only from members. A change the server accepted but the rules forbid
// is rejected: the client stays in the old epoch, raises an
// [EventConversationUnsafe] alarm, keeps it in the store
// (Conversation.Unsafe) and sends nothing more in the conversation
// (ErrConversationUnsafe); [Client.Recreate] starts a new one with the
// same members.
//
// # Roles and policy
//
// A group carries its policy inside the MLS group state (a GroupContext
// extension, docs/protocol.md, "Roles and policy"): its admins, who start
// as the creator, and who may add, remove, rename, change the topic and
// change roles. [Client.Policy] reads it, [Client.SetRole] and
// [Client.SetPolicy] change it (admins only). Every member checks every
// proposal and commit against it, rejecting violations like forbidden
// membership changes (Alarm.Policy), and ignores renames and topic
// changes by members the policy does not allow; the server refuses the
// same with protocol.CodePolicyViolation. A 1:1 conversation has no
// policy.
//
// A channel ([Client.NewChannel], Conversation.Channel) is a group whose
// policy lets only admins post. Members read and react (their reactions
// are shown to every member); Send and the other posts by a member fail
// with a *protocol.PolicyError, and every member drops a post by a
// member that a modified client sent anyway, without showing it or
// counting it unread. Members send no read receipts or typing
// indicators there.
//
// # History
//
// [Client.Messages] returns a conversation's messages; [Client.History]
// returns them together with its system lines: the changes of
// membership, name and topic that this device applied (who added,
// removed or left, devices added or removed, renames), each at the
// position in the server's log of the entry that made it, so every
// member sees them in the same place among the messages. A device that
// was removed keeps the members at its removal, and who removed it
// (Conversation.RemovedBy). System lines are reported as [EventSystem].
//
// A commit the server accepted but this device cannot process (a member
// sent damaged path secrets, say) does not wedge the conversation: the
// client rejoins the current epoch by an external commit that replaces
// its own leaf and reports the sender in an [EventBadCommit]
// (docs/protocol.md, "Recovery from bad commits"). Rejoins are bounded
// per conversation (Config.ResyncLimit); beyond that the conversation
// gets an unrecoverable alarm and must be recreated.
//
// # Mentions, muting and search
//
// [Client.Send] turns "@name" words that name members into mentions
// carried in the encrypted content (Message.Mentions; Message.MentionsMe
// for this user); receivers never derive them from the text.
// [Client.SetMuted] mutes a conversation on this device: its events
// carry Event.Muted, and a notifier shows only its messages that mention
// the user. [Client.Search] finds messages of every conversation by
// words, sender, conversation and time, through an index kept in memory
// only (see search.go; [Client.PrepareSearch] builds it in the
// background).
//
// # Linked devices
//
// An account has any number of devices, all members of its
// conversations. [Client.Link] makes a fresh profile another device of
// an account: it shows a link code, and [Client.LinkDevice] on a device
// of the account, given the code, sets up an end-to-end encrypted
// channel through the server that the server cannot sit in the middle
// of (the code's secret never passes through it; a failed check is
// [ErrLinkTampered]), asks the user to compare a confirmation, sends the
// account (the identity key, which every device of the account holds, a
// certificate for the new device's key, the contacts and some
// settings), registers the new device and adds it to every conversation,
// one commit each (docs/protocol.md, "Linking a device").
// [Client.Devices] lists the account's devices, marking those the server
// lists but no device certified as forged; [Client.RevokeOwnDevice]
// refuses to revoke the last active one unless forced. A read receipt
// from another device of the account moves this device's read position
// (docs/content.md, "Read positions across devices").
//
// # Revoked devices
//
// [Client.RevokeDevice] revokes one of the account's devices with a
// statement signed by the identity key. Every member's client that learns
// of a revoked device — or of one the server's administrator disabled —
// commits the removal of its leaves from the conversations they share, so
// that it reads nothing sent afterwards; it learns from the server while
// connected, on Sync, and when it connects again (docs/protocol.md,
// "Revoked devices leave their conversations"). A revocation is believed
// only if it verifies under the user's pinned identity key, and is then
// kept: the device is never accepted back. The client that removed a
// device reports [EventDeviceRevoked].
//
// # Ordering and crash safety
//
// Entries of a conversation are applied in server sequence order. For
// every entry the new MLS group state, the decrypted message (or the
// effect of an edit, reaction, receipt…) and the advanced cursor are
// written in one store transaction before the entry is acknowledged to the
// server, so a crash at any point neither loses nor duplicates a message.
// An outgoing message is encrypted and written to the outbox together with
// the MLS state that encrypted it before the ciphertext leaves the device,
// so no key and nonce is ever used twice.
//
// A Client is safe for concurrent use. Operations on MLS state are
// serialized.
package client
