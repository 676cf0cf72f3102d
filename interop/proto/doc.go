// Package proto is the Go code generated from mls_client.proto, the MLS
// working group's interop harness service (MLSClient). Regenerate it with
// `go generate` in the interop module's root; do not edit the .pb.go files.
package proto
