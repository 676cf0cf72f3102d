package sqlstore

import (
	"context"
	"fmt"
	"strings"

	"github.com/parley-chat/parley/server/store"
)

// A conversation's ratchet tree is stored node by node in tree_nodes: a
// row per node and epoch that changed it, NULL data for a node that
// became blank. The tree of epoch E is, for each node, its row with the
// greatest epoch at or before E. conversations.tree_floor is the oldest
// epoch whose tree can still be read: a commit deletes the rows of the
// nodes it changes that only epochs before the floor need.

// treeRowsPerInsert bounds the rows of one INSERT (four parameters each).
const treeRowsPerInsert = 200

// insertTreeNodes stores nodes as versions of conversation id's nodes at
// epoch, in statements of at most treeRowsPerInsert rows.
func insertTreeNodes(ctx context.Context, tx Querier, id store.ConversationID, epoch uint64, nodes []store.TreeNode) error {
	for len(nodes) > 0 {
		n := min(len(nodes), treeRowsPerInsert)
		var b strings.Builder
		b.WriteString(`INSERT INTO tree_nodes (conversation_id, node, epoch, data) VALUES `)
		args := make([]any, 0, 4*n)
		for i, nd := range nodes[:n] {
			if i > 0 {
				b.WriteString(", ")
			}
			k := len(args)
			fmt.Fprintf(&b, "($%d, $%d, $%d, $%d)", k+1, k+2, k+3, k+4)
			args = append(args, id, int64(nd.Index), epoch, nodeData(nd.Data))
		}
		if _, err := tx.Exec(ctx, b.String(), args...); err != nil {
			return fmt.Errorf("store tree nodes of conversation %d at epoch %d: %w", id, epoch, err)
		}
		nodes = nodes[n:]
	}
	return nil
}

// nodeData is the data column of a node: NULL for a blank one.
func nodeData(b []byte) any {
	if len(b) == 0 {
		return nil
	}
	return b
}

// storeTreeChanges stores the tree nodes commit c changed as the new
// epoch's and deletes the rows of those nodes that only epochs before
// the tree floor (c.TreeFloor, which the backend's AdvanceEpoch stored)
// need. What it writes and deletes grows with the nodes the commit
// changed, not with the tree.
func (s *Store) storeTreeChanges(ctx context.Context, tx Querier, c store.Commit) error {
	if err := insertTreeNodes(ctx, tx, c.Conversation, c.Epoch+1, c.Tree); err != nil {
		return err
	}
	floor := c.TreeFloor()
	if len(c.Tree) == 0 {
		return nil
	}
	in, args := nodeList(c.Tree, 3)
	args = append([]any{c.Conversation, floor}, args...)
	// A version is needed by no epoch at or after the floor once a later
	// version of the node is at or before the floor.
	if _, err := tx.Exec(ctx, `DELETE FROM tree_nodes WHERE conversation_id = $1 AND node IN (`+in+`)
		AND epoch < (SELECT max(u.epoch) FROM tree_nodes u WHERE u.conversation_id = $1 AND u.node = tree_nodes.node AND u.epoch <= $2)`, args...); err != nil {
		return fmt.Errorf("prune tree nodes of conversation %d: %w", c.Conversation, err)
	}
	// A blank version left as the oldest says no more than no row.
	if _, err := tx.Exec(ctx, `DELETE FROM tree_nodes WHERE conversation_id = $1 AND node IN (`+in+`) AND data IS NULL AND epoch <= $2`, args...); err != nil {
		return fmt.Errorf("prune blank tree nodes of conversation %d: %w", c.Conversation, err)
	}
	return nil
}

// nodeList returns the placeholders, from $first on, and the arguments
// of the nodes' indices.
func nodeList(nodes []store.TreeNode, first int) (string, []any) {
	var b strings.Builder
	args := make([]any, len(nodes))
	for i, nd := range nodes {
		if i > 0 {
			b.WriteString(", ")
		}
		fmt.Fprintf(&b, "$%d", first+i)
		args[i] = int64(nd.Index)
	}
	return b.String(), args
}

// Tree implements store.Store.
func (s *Store) Tree(ctx context.Context, id store.ConversationID, epoch uint64) ([]store.TreeNode, error) {
	out, err := s.tree(ctx, id, epoch)
	if err != nil {
		return nil, s.errorf("tree of conversation %d at epoch %d: %w", id, epoch, err)
	}
	return out, nil
}

func (s *Store) tree(ctx context.Context, id store.ConversationID, epoch uint64) ([]store.TreeNode, error) {
	q := s.b.Read()
	out, err := collect(ctx, q, scanTreeNode, `SELECT t.node, t.data FROM tree_nodes t WHERE t.conversation_id = $1 AND t.data IS NOT NULL
		AND t.epoch = (SELECT max(u.epoch) FROM tree_nodes u WHERE u.conversation_id = $1 AND u.node = t.node AND u.epoch <= $2)
		ORDER BY t.node`, id, epoch)
	if err != nil {
		return nil, err
	}
	if err := treesKept(ctx, q, id, epoch, epoch); err != nil {
		return nil, err
	}
	return out, nil
}

// scanTreeNode reads a row of (node, data).
func scanTreeNode(r Row) (store.TreeNode, error) {
	var nd store.TreeNode
	var idx int64
	err := r.Scan(&idx, &nd.Data)
	nd.Index = uint32(idx)
	if len(nd.Data) == 0 {
		nd.Data = nil
	}
	return nd, err
}

// treesKept checks that the trees of the epochs from oldest to newest
// can be read: newest is not after the conversation's epoch (ErrInvalid)
// and oldest not before its tree floor (ErrGone). It is checked after
// the nodes were read, so that a commit whose pruning the read saw has
// moved the floor this reads.
func treesKept(ctx context.Context, q Querier, id store.ConversationID, oldest, newest uint64) error {
	var cur, floor uint64
	var legacy int64
	if err := q.QueryRow(ctx, `SELECT epoch, tree_floor, legacy_tree FROM conversations WHERE id = $1`, id).Scan(&cur, &floor, &legacy); err != nil {
		return notFound(err)
	}
	switch {
	case newest > cur:
		return fmt.Errorf("the conversation is at epoch %d: %w", cur, store.ErrInvalid)
	case legacy != 0 || oldest < floor:
		return fmt.Errorf("trees are kept from epoch %d: %w", floor, store.ErrGone)
	}
	return nil
}

// TreeChanges implements store.Store: the latest version at or before
// epoch of each node with a version after since. Pruning (see
// storeTreeChanges) deletes only versions at or before the tree floor,
// so none after since while the tree of since is kept.
func (s *Store) TreeChanges(ctx context.Context, id store.ConversationID, since, epoch uint64) ([]store.TreeNode, error) {
	out, err := s.treeChanges(ctx, id, since, epoch)
	if err != nil {
		return nil, s.errorf("tree changes of conversation %d from epoch %d to %d: %w", id, since, epoch, err)
	}
	return out, nil
}

func (s *Store) treeChanges(ctx context.Context, id store.ConversationID, since, epoch uint64) ([]store.TreeNode, error) {
	if since > epoch {
		return nil, fmt.Errorf("epoch %d is before %d: %w", epoch, since, store.ErrInvalid)
	}
	q := s.b.Read()
	out, err := collect(ctx, q, scanTreeNode, `SELECT t.node, t.data FROM tree_nodes t WHERE t.conversation_id = $1 AND t.epoch > $2 AND t.epoch <= $3
		AND t.epoch = (SELECT max(u.epoch) FROM tree_nodes u WHERE u.conversation_id = $1 AND u.node = t.node AND u.epoch <= $3)
		ORDER BY t.node`, id, since, epoch)
	if err != nil {
		return nil, err
	}
	if err := treesKept(ctx, q, id, since, epoch); err != nil {
		return nil, err
	}
	return out, nil
}

// MoveTree implements store.Store.
func (s *Store) MoveTree(ctx context.Context, id store.ConversationID, epoch uint64, state []byte, nodes []store.TreeNode) error {
	err := s.b.Write(ctx, func(tx Querier) error {
		n, err := tx.Exec(ctx, `UPDATE conversations SET follower_state = $1, legacy_tree = 0, tree_floor = $2 WHERE id = $3 AND epoch = $2 AND legacy_tree = 1`,
			NonNil(state), epoch, id)
		if err != nil {
			return err
		}
		if n == 0 {
			return store.ErrStaleState
		}
		return insertTreeNodes(ctx, tx, id, epoch, nodes)
	})
	if err != nil {
		return s.errorf("move the tree of conversation %d at epoch %d into nodes: %w", id, epoch, err)
	}
	return nil
}

// LegacyTrees implements store.Store.
func (s *Store) LegacyTrees(ctx context.Context) ([]store.ConversationID, error) {
	out, err := collect(ctx, s.b.Read(), func(r Row) (store.ConversationID, error) {
		var id store.ConversationID
		return id, r.Scan(&id)
	}, `SELECT id FROM conversations WHERE legacy_tree = 1 ORDER BY id`)
	if err != nil {
		return nil, s.errorf("conversations with a whole stored tree: %v", err)
	}
	return out, nil
}
