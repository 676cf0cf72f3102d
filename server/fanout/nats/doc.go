// Package nats is a [delivery.Notifier] that carries parleyd's wake-ups and
// typing signals between the nodes of a cluster over NATS core pub/sub.
//
// What NATS is used for. Every node keeps its own subscribers (connections)
// in memory, exactly like the in-process [delivery.Hub]. [Notifier.Publish]
// calls the local subscribers at once, in the publisher's goroutine, and
// queues the event for NATS; a background goroutine publishes it, so a slow
// or unreachable NATS never blocks the writer. Each node holds one wildcard
// subscription and dispatches the events of the other nodes to its local
// subscribers. Events carry no message content in the clear: a wake-up
// names a topic, a typing signal names the typing device, and an ephemeral
// message (an encrypted typing indicator, never stored) names the sending
// device and carries its MLS ciphertext (at most
// protocol.MaxEphemeralBytes).
//
// Subjects. With Config.Prefix p (one per deployment or organisation):
//
//	p.conv.<conversation id>   wake-up or typing signal for a conversation
//	p.device.<device id>       wake-up for a device (inbox, memberships)
//	p.resync                   "something may have been lost: wake everything"
//
// The payload is a small binary record (see codec.go) with the origin node
// and, for typing, the device and its state (for an ephemeral message, the
// device and the ciphertext). A node subscribes to p.> once:
// with 10,000 devices per node and members of a conversation spread over all
// nodes by the load balancer, nearly every conversation topic has a local
// subscriber on every node, so per-topic interest would save little traffic
// and cost a SUB/UNSUB per connection and conversation, a
// subscribe-versus-publish race on each first subscriber, and a resubscribe
// storm on every reconnect. The price is that every node receives every
// event of its prefix (NATS fans out in the server; a node drops events
// without local subscribers after one map lookup). Deployments with many
// nodes and disjoint populations should use one prefix per organisation.
// A node's own events come back neither through NATS (the connection uses
// NoEcho) nor twice (each record carries the origin NodeID plus a random
// instance suffix, and a node ignores its own).
//
// Why core NATS suffices. Connections never depend on a notification: they
// read the store from their cursors, and a notification only says "read
// now". Core NATS is at-most-once; JetStream would make the signal durable,
// but the durable copy already exists in the database. What matters is that
// a lost signal is noticed and turned into a wake-up, and the notifier does
// that for every way it knows a signal can be lost:
//
//   - The outbound queue is a set of topics (a burst on one conversation is
//     one NATS message); when it is full, or NATS is unreachable, the
//     wake-up is dropped, counted, and a p.resync is published as soon as
//     NATS is reachable again. Typing signals and ephemeral messages are
//     ephemeral: they share the typing queue and are dropped and counted
//     (DroppedTyping), never replaced.
//   - After a reconnect the node wakes every local subscriber for every
//     subscribed topic (it may have missed remote events while it was
//     away) and publishes p.resync (its own events of the moment before
//     the disconnect may have been lost in flight).
//   - When the NATS client drops remote events because this node fell
//     behind (slow consumer), the node wakes every local subscriber.
//
// A resync wakes subscribers at Config.ResyncRate notifications per second
// so that a NATS restart does not send every connection to the database at
// the same instant; repeated requests during a pass coalesce into one more
// pass. While NATS is down, local delivery continues; remote delivery
// resumes, with the resync, after the reconnect. nats.go reconnects forever
// with exponential backoff and jitter. [Notifier.Healthy] reports the
// connection state for readiness; [Notifier.Stats] and the Prometheus
// collectors report every drop.
package nats
