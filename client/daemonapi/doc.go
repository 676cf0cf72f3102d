// Package daemonapi is the local API of a parley daemon: one process
// (parley daemon) owns a profile, runs its client.Client, and serves
// JSON-RPC 2.0 on a Unix socket in the profile directory, one request
// or response per line; other programs (the parley CLI, bots in any
// language) use the profile through it while it runs.
//
// The package holds the JSON schema shared with the CLI's --json output
// (Account, Conversation, Message, Member, Event), the wire types, the
// Server that serves a client.Client on a listener, and a Client that
// dials the socket and offers the SDK's operations with the SDK's types
// and errors. docs/daemon.md describes the methods, events and error
// codes.
//
// The web client serves the same API inside the browser, over a
// PipeListener, to its page: without a profile directory, and so
// without the methods that read or write files.
//
// The socket (SocketFile) is created with mode 0600 in the profile
// directory, which the CLI creates with mode 0700; on Linux the server
// also refuses connections from processes of another user (SO_PEERCRED).
package daemonapi
