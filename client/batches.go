package client

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/parley-chat/parley/protocol"
)

// Adding many users. A conversation or channel of thousands of members
// is made by the same steps as a small one, in batches the server's
// default limits accept: the users are looked up (POST /v1/users/lookup)
// and their KeyPackages claimed (POST /v1/keypackages/claim with users)
// protocol.MaxBatchUsers at a time, and the devices are added by commits
// of at most maxCommitAdds devices each. A server that refuses a batch for
// its rate limit names the wait (Retry-After): the client waits up to
// maxRateWait and tries again. A server that predates the batched forms
// is asked user by user, as before.

// maxCommitAdds bounds the devices one commit adds. On the X-Wing suite
// (the default) a KeyPackage is about 2.9 KB and the commit carries each
// one whole: a commit adding 500 devices is 1.45 MB, past the server's
// default limits.max_message_bytes of 1 MiB, and its Welcome 1.4 MB
// beside the ratchet tree (about 1.2 KB of group secrets per added
// device). 150 devices make a commit of about 440 KB and 180 KB of
// Welcome secrets: well within the limits, while adding 10,000 devices
// takes 67 commits.
const maxCommitAdds = 150

// maxRateWait is the longest wait for a server's rate limit that a batch
// makes by itself; a longer one fails the operation with the server's
// rate_limited error.
const maxRateWait = 30 * time.Second

// Progress reports how far an operation on many users has come, to the
// function given with WithProgress.
type Progress struct {
	// Conversation is the conversation changed (zero while a new one
	// is not created yet).
	Conversation protocol.ConversationID `json:"conversation,omitempty"`
	// Stage is what is being done: "lookup" (users looked up), "claim"
	// (users whose KeyPackages were claimed), "commit" (devices added),
	// or "wait" (for the server's rate limit, Wait long).
	Stage string `json:"stage"`
	// Done of Total users or devices are through the stage.
	Done  int `json:"done"`
	Total int `json:"total"`
	// Wait is the wait of the "wait" stage.
	Wait time.Duration `json:"wait,omitempty"`
}

type progressKey struct{}

// WithProgress returns a context under which operations that add users
// (NewGroup, NewChannel, Add, AddUsers) report their progress to f: in
// process from the goroutine that called them, through a daemon
// (daemonapi) from its connection's reader. f must be quick and must not
// call the client.
func WithProgress(ctx context.Context, f func(Progress)) context.Context {
	return context.WithValue(ctx, progressKey{}, f)
}

// ProgressFrom returns the function WithProgress set on ctx, or nil.
func ProgressFrom(ctx context.Context) func(Progress) {
	f, _ := ctx.Value(progressKey{}).(func(Progress))
	return f
}

// report passes p to the context's progress function, if any.
func report(ctx context.Context, p Progress) {
	if f := ProgressFrom(ctx); f != nil {
		f(p)
	}
}

// callWaiting is call (POST, authenticated) that, refused with
// rate_limited and a Retry-After of at most maxRateWait, waits that long
// and tries again.
func (c *Client) callWaiting(ctx context.Context, path string, body, out any) error {
	for {
		err := c.call(ctx, "POST", path, true, body, out)
		se, limited := isCode(err, protocol.CodeRateLimited)
		if !limited || se.RetryAfter <= 0 || se.RetryAfter > maxRateWait {
			return err
		}
		report(ctx, Progress{Stage: "wait", Wait: se.RetryAfter})
		c.log.Debug("rate limited; waiting", "path", path, "wait", se.RetryAfter)
		t := time.NewTimer(se.RetryAfter)
		select {
		case <-t.C:
		case <-ctx.Done():
			t.Stop()
			return err
		}
	}
}

// endpointMissing reports whether err is a server's refusal of a route it
// does not have (a server that predates it).
func endpointMissing(err error) bool {
	var se *ServerError
	return errors.As(err, &se) && se.Err.Code == protocol.CodeNotFound && (se.Status == 404 || se.Status == 405)
}

// lookupUsers is lookupUser for many users, in batches of
// protocol.MaxBatchUsers (fewer when the server allows fewer at once;
// user by user from a server without batched lookups): it returns each user's devices that verify, and fails on the
// first user that is unknown or whose identity key changed, as
// lookupUser does.
func (c *Client) lookupUsers(ctx context.Context, names []string) (map[string][]protocol.DeviceInfo, error) {
	names = uniqueNames(names)
	out := make(map[string][]protocol.DeviceInfo, len(names))
	size := protocol.MaxBatchUsers
	for start := 0; start < len(names); {
		chunk := names[start:min(start+size, len(names))]
		var res protocol.LookupUsersResponse
		err := c.callWaiting(ctx, "/v1/users/lookup", protocol.LookupUsersRequest{Users: chunk}, &res)
		if _, tooLarge := isCode(err, protocol.CodeTooLarge); tooLarge && size > 1 {
			size /= 2 // the server's lookups_per_user bucket holds fewer
			continue
		}
		if endpointMissing(err) {
			for _, name := range names[start:] {
				_, devs, err := c.lookupUser(ctx, name)
				if err != nil {
					return nil, err
				}
				out[name] = devs
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("client: look up %d users from %s: %w", len(chunk), chunk[0], err)
		}
		if len(res.Unknown) > 0 {
			u := res.Unknown[0]
			return nil, fmt.Errorf("client: look up %s: %w", u, &ServerError{Status: 404, Err: *protocol.NewError(protocol.CodeUnknownUser, "no user %q", u)})
		}
		byName := make(map[string]*protocol.UserInfo, len(res.Users))
		var others []*protocol.UserInfo
		for i := range res.Users {
			u := &res.Users[i]
			byName[u.Name] = u
			if u.Name != c.id.User {
				others = append(others, u)
			}
		}
		for _, name := range chunk {
			if byName[name] == nil {
				return nil, fmt.Errorf("client: look up %s: the server's answer leaves it out", name)
			}
		}
		keys, err := c.pinAll(ctx, others)
		if err != nil {
			return nil, err
		}
		for _, name := range chunk {
			devs, err := c.checkUser(name, byName[name], keys[name])
			if err != nil {
				return nil, err
			}
			out[name] = devs
		}
		start += len(chunk)
		report(ctx, Progress{Stage: "lookup", Done: start, Total: len(names)})
	}
	return out, nil
}

// uniqueNames returns names without repeats, in their order.
func uniqueNames(names []string) []string {
	seen := make(map[string]bool, len(names))
	out := make([]string, 0, len(names))
	for _, n := range names {
		if !seen[n] {
			seen[n] = true
			out = append(out, n)
		}
	}
	return out
}

// claimed is what a claim handed out for one user: its packages, or why
// there are none (a *ServerError).
type claimed struct {
	kps []protocol.ClaimedKeyPackage
	err error
}

// claimKeyPackages claims a KeyPackage of the suite for every device of
// each user, in batches of protocol.MaxBatchUsers (fewer when the server
// allows fewer at once; user by user from a server without batched
// claims). A user the server refused (unknown, no package, limited) gets
// its error; an error of a whole request is returned.
func (c *Client) claimKeyPackages(ctx context.Context, suite uint16, users []string) (map[string]claimed, error) {
	out := make(map[string]claimed, len(users))
	size := protocol.MaxBatchUsers
	for start := 0; start < len(users); {
		chunk := users[start:min(start+size, len(users))]
		var res protocol.ClaimKeyPackagesResponse
		err := c.callWaiting(ctx, "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{Users: chunk, CipherSuite: suite}, &res)
		if _, tooLarge := isCode(err, protocol.CodeTooLarge); tooLarge && size > 1 {
			size /= 2 // the server's claims_per_user bucket holds fewer
			continue
		}
		if _, old := isCode(err, protocol.CodeBadRequest); old || (err == nil && len(res.Users) != len(chunk)) {
			// A server without batched claims refuses the users field.
			for _, user := range users[start:] {
				var one protocol.ClaimKeyPackagesResponse
				err := c.callWaiting(ctx, "/v1/keypackages/claim", protocol.ClaimKeyPackagesRequest{User: user, CipherSuite: suite}, &one)
				out[user] = claimed{kps: one.KeyPackages, err: err}
			}
			return out, nil
		}
		if err != nil {
			return nil, fmt.Errorf("claim KeyPackages of %d users from %s: %w", len(chunk), chunk[0], err)
		}
		for i, cu := range res.Users {
			if cu.User != chunk[i] {
				return nil, fmt.Errorf("claim KeyPackages of %s: the server answered for %q", chunk[i], cu.User)
			}
			r := claimed{kps: cu.KeyPackages}
			if cu.Error != nil {
				r = claimed{err: &ServerError{Status: cu.Error.Code.HTTPStatus(), Err: *cu.Error}}
			}
			out[cu.User] = r
		}
		start += len(chunk)
		report(ctx, Progress{Stage: "claim", Done: start, Total: len(users)})
	}
	return out, nil
}
