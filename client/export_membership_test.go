package client

import (
	"context"
	"crypto/ed25519"
	"fmt"

	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/mls"
	"github.com/parley-chat/parley/protocol"
)

// JoinExternalForTest makes c's device join conv by an external commit
// from the server's GroupInfo, without removing any leaf, as an account
// that a malicious server lets in would (the honest server refuses it:
// the device's user is not a member). On acceptance c follows the
// conversation like a member: its entries are applied by Run and Sync.
func JoinExternalForTest(ctx context.Context, c *Client, conv protocol.ConversationID, cs mls.CipherSuite) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var gi protocol.GroupInfoResponse
	if err := c.call(ctx, "GET", fmt.Sprintf("/v1/conversations/%d/groupinfo", conv), true, nil, &gi); err != nil {
		return err
	}
	signer, err := c.signer(cs)
	if err != nil {
		return err
	}
	cred, err := c.ownCredential()
	if err != nil {
		return err
	}
	g, pc, err := mls.JoinExternal(c.mlsCfg, gi.GroupInfo, signer, cred, mls.ExternalJoinOptions{RatchetTree: gi.RatchetTree, ExternalPub: true, Capabilities: leafCapabilities()})
	if err != nil {
		return err
	}
	var res protocol.HandshakeResponse
	err = c.call(ctx, "POST", fmt.Sprintf("/v1/conversations/%d/handshake", conv), true,
		protocol.HandshakeRequest{Epoch: gi.Epoch, Message: pc.Message, GroupInfo: pc.GroupInfo}, &res)
	if err != nil {
		return err
	}
	if err := g.MergePendingCommit(pc); err != nil {
		return err
	}
	state, err := g.MarshalBinary()
	if err != nil {
		return err
	}
	err = c.st.Update(ctx, func(tx store.Tx) error {
		if err := tx.PutGroupState(conv, state); err != nil {
			return err
		}
		if err := tx.PutConversation(&store.Conversation{ID: conv, GroupID: g.GroupID(), Members: memberUsers(g), Created: c.cfg.Now()}); err != nil {
			return err
		}
		return tx.SetCursor(conv, res.Seq)
	})
	if err != nil {
		return err
	}
	c.groups[conv] = g
	return nil
}

// GroupInfoForTest returns a GroupInfo with external_pub and the ratchet
// tree of c's group in conv, as the server would hand them to a joiner.
func GroupInfoForTest(c *Client, conv protocol.ConversationID) (groupInfo, tree []byte, err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	g := c.groups[conv]
	if g == nil {
		return nil, nil, ErrUnknownConversation
	}
	if groupInfo, err = g.GroupInfo(mls.GroupInfoOptions{ExternalPub: true}); err != nil {
		return nil, nil, err
	}
	tree, err = g.RatchetTree()
	return groupInfo, tree, err
}

// IdentityKeyForTest returns the identity private key of c's account, to
// certify a device of it (device linking, which the SDK cannot do yet).
func IdentityKeyForTest(c *Client) ed25519.PrivateKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return ed25519.PrivateKey(c.id.IdentityKey)
}
