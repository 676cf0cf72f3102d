package delivery

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/parley-chat/parley/protocol"
	"github.com/parley-chat/parley/server/store"
)

// A conversation's ratchet tree is stored apart from its follower state,
// by its nodes (store.TreeNode): a commit stores the nodes it changed
// (the store keeps them as a log with snapshots, see snapshots.go), so
// what it writes grows with log(members), not with the group. Joiners
// fetch the tree of the epoch they join (Tree) instead of finding it in
// their Welcome, and check it against the tree hash of the GroupInfo
// they decrypted.

// requireMemberUser returns not_member unless a device of the caller's
// user is a member of the conversation: who may read its public state.
func (s *Service) requireMemberUser(ctx context.Context, sess *Session, id store.ConversationID, op string) error {
	ok, err := s.userIsMember(ctx, id, sess.User)
	if err != nil {
		return internal(op+": members", err)
	}
	if !ok && !s.cfg.UnsafeSkipMembershipChecks {
		return perr(protocol.CodeNotMember, "no device of user %q is a member of conversation %d", sess.UserName, id)
	}
	return nil
}

// Tree returns the encoded ratchet tree (the ratchet_tree extension
// body) of a conversation's epoch, for a device joining by a Welcome of
// that epoch or by external commit, to the devices of member users. An
// epoch older than the server keeps (Config.TreeHistoryEpochs) is gone;
// one after the current epoch is a bad request.
func (s *Service) Tree(ctx context.Context, sess *Session, id protocol.ConversationID, epoch uint64) ([]byte, error) {
	cid := store.ConversationID(id)
	if _, err := s.conversation(ctx, cid); err != nil {
		return nil, err
	}
	if err := s.requireMemberUser(ctx, sess, cid, "tree"); err != nil {
		return nil, err
	}
	return s.encodedTree(ctx, cid, epoch)
}

// encodedTree reads and encodes the tree of a conversation's epoch, or
// finds it in the cache: the devices a commit adds all fetch the same
// tree.
func (s *Service) encodedTree(ctx context.Context, id store.ConversationID, epoch uint64) ([]byte, error) {
	if tree := s.trees.get(id, epoch); tree != nil {
		return tree, nil
	}
	nodes, err := s.st.Tree(ctx, id, epoch)
	switch {
	case errors.Is(err, store.ErrGone):
		return nil, perr(protocol.CodeGone, "the ratchet tree of conversation %d at epoch %d is no longer kept", id, epoch)
	case errors.Is(err, store.ErrInvalid):
		return nil, perr(protocol.CodeBadRequest, "conversation %d has no epoch %d yet", id, epoch)
	case errors.Is(err, store.ErrNotFound):
		return nil, perr(protocol.CodeNotFound, "no conversation %d", id)
	case err != nil:
		return nil, internal(fmt.Sprintf("tree of conversation %d at epoch %d", id, epoch), err)
	}
	tree, err := s.fol.EncodeTree(nodes)
	if err != nil {
		return nil, internal(fmt.Sprintf("encode the tree of conversation %d at epoch %d", id, epoch), err)
	}
	s.trees.put(id, epoch, tree)
	return tree, nil
}

// treeCacheBytes bounds the encoded trees kept in memory (about two
// trees of 10,000 members on X-Wing).
const treeCacheBytes = 64 << 20

// treeCache keeps recently served encoded trees, one epoch per
// conversation, least recently used first out. The tree of an epoch never
// changes, so an entry is never stale.
type treeCache struct {
	mu    sync.Mutex
	lru   list.List // of *cachedTree, most recent first
	index map[store.ConversationID]*list.Element
	bytes int
}

type cachedTree struct {
	conv  store.ConversationID
	epoch uint64
	tree  []byte
}

func (c *treeCache) get(id store.ConversationID, epoch uint64) []byte {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.index[id]
	if e == nil || e.Value.(*cachedTree).epoch != epoch {
		return nil
	}
	c.lru.MoveToFront(e)
	return e.Value.(*cachedTree).tree
}

func (c *treeCache) put(id store.ConversationID, epoch uint64, tree []byte) {
	if len(tree) > treeCacheBytes/2 {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.index == nil {
		c.index = map[store.ConversationID]*list.Element{}
	}
	if e := c.index[id]; e != nil {
		old := e.Value.(*cachedTree)
		if old.epoch > epoch {
			return // keep the newer epoch, which more joiners ask for
		}
		c.bytes -= len(old.tree)
		c.lru.Remove(e)
	}
	c.index[id] = c.lru.PushFront(&cachedTree{conv: id, epoch: epoch, tree: tree})
	c.bytes += len(tree)
	for c.bytes > treeCacheBytes {
		e := c.lru.Back()
		old := e.Value.(*cachedTree)
		c.lru.Remove(e)
		delete(c.index, old.conv)
		c.bytes -= len(old.tree)
	}
}

// moveLegacyTree stores the tree of a conversation kept the old way
// (whole, in its follower state) node by node, and returns the
// conversation as it is then. Any node may do it; the store lets one win.
func (s *Service) moveLegacyTree(ctx context.Context, c store.Conversation) (store.Conversation, error) {
	id, epoch := c.ID, c.Epoch
	state, nodes, err := s.fol.SplitLegacyState(c.FollowerState)
	if err != nil {
		return c, internal(fmt.Sprintf("conversation %d at epoch %d: split its stored state", id, epoch), err)
	}
	if err := s.st.MoveTree(ctx, id, epoch, state, nodes); err != nil && !errors.Is(err, store.ErrStaleState) {
		return c, internal(fmt.Sprintf("conversation %d at epoch %d: store its tree by nodes", id, epoch), err)
	}
	c, err = s.st.Conversation(ctx, id)
	if err != nil {
		return c, internal(fmt.Sprintf("conversation %d after moving its tree", id), err)
	}
	if c.LegacyTree {
		return c, internal(fmt.Sprintf("conversation %d at epoch %d", id, c.Epoch), errors.New("its tree is still stored whole"))
	}
	s.log.Info("conversation tree stored apart from its follower state", "conversation", id, "epoch", epoch, "nodes", len(nodes))
	return c, nil
}

// MoveLegacyTrees stores the trees of all conversations kept the old way
// node by node; parleyd runs it when it starts, after the store's
// migrations. A conversation it misses is moved when first used.
func (s *Service) MoveLegacyTrees(ctx context.Context) (int, error) {
	ids, err := s.st.LegacyTrees(ctx)
	if err != nil {
		return 0, fmt.Errorf("delivery: move legacy trees: %w", err)
	}
	for i, id := range ids {
		if _, err := s.conversation(ctx, id); err != nil {
			return i, fmt.Errorf("delivery: move legacy trees: %w", err)
		}
	}
	return len(ids), nil
}
