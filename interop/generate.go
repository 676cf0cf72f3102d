// Package interop holds Parley's client for the MLS working group's interop
// test harness (github.com/mlswg/mls-implementations, interop/): a gRPC
// server of the MLSClient service (proto/mls_client.proto) on top of the
// public mls package, so that the official test-runner can drive Parley's
// MLS library against other implementations.
//
// It is a module of its own so that gRPC stays out of the dependencies of
// the library and the server. The layout:
//
//   - proto: the service definition and the Go code generated from it
//     (committed; building needs no protoc).
//   - client: the MLSClient implementation (state and transaction ids,
//     one mls.Group per state).
//   - cmd/mls-client: the binary, serving the client on -port.
//
// The test in this directory builds the binary, starts two instances and
// drives them through the harness's scenarios.
package interop

// Regenerate the gRPC code after changing proto/mls_client.proto (needs
// protoc, protoc-gen-go v1.36.12 and protoc-gen-go-grpc v1.6.2 on PATH; see
// README.md).
//go:generate protoc --go_out=. --go_opt=paths=source_relative --go-grpc_out=. --go-grpc_opt=paths=source_relative proto/mls_client.proto
