package treekem

import (
	"errors"
	"fmt"

	"github.com/parley-chat/parley/mls/internal/codec"
	"github.com/parley-chat/parley/mls/internal/wire"
)

// ContextFunc returns the serialized provisional GroupContext of the new
// epoch (RFC 9420 §12.4.2) whose tree_hash is treeHash, the tree hash of
// the tree after the UpdatePath has been merged. Its result is the context
// of EncryptWithLabel/DecryptWithLabel("UpdatePathNode", ...) (§7.6).
// treeHash must not be modified or retained; the returned bytes are owned
// by the caller of the function (this package only reads them).
type ContextFunc func(treeHash []byte) ([]byte, error)

// GroupContext returns a ContextFunc that serializes a copy of gc with
// TreeHash replaced by the tree hash it is given. gc is copied; later
// changes to it do not affect the function. The caller sets gc's epoch
// to the new epoch and its extensions to the new extensions, and keeps
// the old confirmed transcript hash (§12.4.2).
func GroupContext(gc *wire.GroupContext) ContextFunc {
	if gc == nil {
		return func([]byte) ([]byte, error) {
			return nil, errors.New("treekem: group context: nil GroupContext")
		}
	}
	c := *gc
	return func(treeHash []byte) ([]byte, error) {
		g := c
		g.TreeHash = treeHash
		b, err := codec.Marshal(&g)
		if err != nil {
			return nil, fmt.Errorf("treekem: group context: %w", err)
		}
		return b, nil
	}
}
