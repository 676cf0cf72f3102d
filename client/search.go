package client

import (
	"cmp"
	"context"
	"fmt"
	"hash/maphash"
	"maps"
	"math"
	"math/bits"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/parley-chat/parley/client/content"
	"github.com/parley-chat/parley/client/store"
	"github.com/parley-chat/parley/protocol"
)

// Local search
//
// The store seals every value, so an index written to disk would have to
// be sealed too and would add, for each word, rows whose number and size
// tell an attacker with the file how often words occur. The index is
// therefore kept in memory only: an inverted index from each word to
// the messages that hold it, built from the store at the first search (or
// by PrepareSearch, which the daemon calls in the background when it
// opens the profile) and then kept up to date from the events the
// client reports (new, edited, deleted and sent messages). Opening a
// profile costs nothing more; the first search pays for reading and
// decrypting every message once (docs/performance.md, "Local search"),
// and the disk holds nothing it did not hold before.
//
// Words are runs of Unicode letters and digits, compared in lower case.
// A query matches the messages that hold every word of it, the last one
// as a prefix (so that "meet" finds "meeting" while it is typed).

// SearchQuery says what Search looks for. Every field that is set
// narrows the result.
type SearchQuery struct {
	// Text holds the words to find (all of them; the last as a prefix).
	// Empty, every message matches the other criteria.
	Text string `json:"text,omitempty"`
	// From keeps the messages of this user.
	From string `json:"from,omitempty"`
	// In keeps the messages of this conversation.
	In protocol.ConversationID `json:"in,omitempty"`
	// After and Before keep the messages sent (the sender's clock,
	// Message.Sent) at or after After and before Before.
	After  time.Time `json:"after,omitzero"`
	Before time.Time `json:"before,omitzero"`
	// MentionsMe keeps the messages that mention this user.
	MentionsMe bool `json:"mentions_me,omitempty"`
	// Limit bounds the result (DefaultSearchLimit when 0).
	Limit int `json:"limit,omitempty"`
}

// DefaultSearchLimit is the number of messages Search returns at most
// when SearchQuery.Limit is 0.
const DefaultSearchLimit = 100

// MaxSearchLimit bounds SearchQuery.Limit.
const MaxSearchLimit = 10_000

// Search returns the messages of every conversation of the profile that
// match q, newest first (by Message.Sent), at most q.Limit. Deleted
// messages and system lines never match. The first search of a Client
// builds the index (see PrepareSearch) and waits for it, unless ctx ends
// first.
func (c *Client) Search(ctx context.Context, q SearchQuery) ([]*Message, error) {
	op := fmt.Sprintf("client: search %q", q.Text)
	if q.Limit < 0 || q.Limit > MaxSearchLimit {
		return nil, fmt.Errorf("%s: limit %d out of range 0 to %d", op, q.Limit, MaxSearchLimit)
	}
	if q.Limit == 0 {
		q.Limit = DefaultSearchLimit
	}
	if err := c.idx.wait(ctx, c); err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	cands := c.idx.query(q)
	out, err := c.loadHits(ctx, q, cands)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", op, err)
	}
	return out, nil
}

// PrepareSearch builds the search index in the background, if it is not
// built yet, so that the first Search answers at once. It returns at
// once; Close stops the build.
func (c *Client) PrepareSearch() {
	c.idx.start(c)
}

// loadHits reads the candidate messages from the store, newest first,
// and keeps those that still match q (the index may lag behind a
// transaction that was rolled back), until q.Limit are found.
func (c *Client) loadHits(ctx context.Context, q SearchQuery, cands []docInfo) ([]*Message, error) {
	terms, prefix := queryTerms(q.Text)
	self := c.selfUser()
	var out []*Message
	err := c.st.View(ctx, func(tx store.Tx) error {
		for _, d := range cands {
			if len(out) == q.Limit {
				return nil
			}
			ms, err := tx.Messages(d.conv, d.seq-1, 1)
			if err != nil {
				return err
			}
			if len(ms) == 0 || ms[0].Seq != d.seq {
				continue
			}
			m := viewMessage(&ms[0])
			setMentionsMe(m, self)
			if matches(m, q, terms, prefix) {
				out = append(out, m)
			}
		}
		return nil
	})
	return out, err
}

// matches checks a message read from the store against q.
func matches(m *Message, q SearchQuery, terms []string, prefix string) bool {
	switch {
	case m.Deleted || m.System != nil || m.Text == "" && len(terms)+len(prefix) > 0:
		return false
	case q.From != "" && m.Sender != q.From, q.In != 0 && m.Conversation != q.In:
		return false
	case !q.After.IsZero() && m.Sent.Before(q.After), !q.Before.IsZero() && !m.Sent.Before(q.Before):
		return false
	case q.MentionsMe && !m.MentionsMe:
		return false
	}
	words := tokens(m.Text)
	for _, t := range terms {
		if !slices.Contains(words, t) {
			return false
		}
	}
	return prefix == "" || slices.ContainsFunc(words, func(w string) bool { return strings.HasPrefix(w, prefix) })
}

// tokens splits text into its words: runs of letters and digits, in
// lower case.
func tokens(text string) []string {
	var out []string
	start := -1
	flush := func(end int) {
		if start >= 0 {
			out = append(out, strings.ToLower(text[start:end]))
			start = -1
		}
	}
	for i, r := range text {
		if unicode.IsLetter(r) || unicode.IsDigit(r) {
			if start < 0 {
				start = i
			}
			continue
		}
		flush(i)
	}
	flush(len(text))
	return out
}

// queryTerms splits a query into the words to match whole and the last
// word, matched as a prefix.
func queryTerms(text string) (terms []string, prefix string) {
	ws := tokens(text)
	if len(ws) == 0 {
		return nil, ""
	}
	return ws[:len(ws)-1], ws[len(ws)-1]
}

// docKey names a message of the history.
type docKey struct {
	conv protocol.ConversationID
	seq  int64
}

// docInfo is what the index keeps of a message besides its words.
type docInfo struct {
	conv       protocol.ConversationID
	seq        int64
	sent       int64  // Unix milliseconds
	sender     uint32 // index into searchIndex.senders
	text       uint64 // hash of the text, to skip re-indexing unchanged text
	dead       bool   // replaced by an edit, or deleted
	mentionsMe bool
}

// The states of the index.
const (
	indexNone = iota
	indexBuilding
	indexReady
)

// searchIndex is the in-memory inverted index of the profile's messages
// (see "Local search" above). Documents are numbered in the order they
// are added; a message that changes gets a new number and its old one is
// marked dead, so that posting lists stay sorted and only grow. Dead
// documents stay until the Client is closed: each edit costs one more
// document (about 40 bytes and its words' postings).
type searchIndex struct {
	mu    sync.Mutex
	state int
	done  chan struct{} // closed when the build ends
	err   error         // of the build

	seed    maphash.Seed
	docs    []docInfo
	byKey   map[docKey]int32
	post    map[string][]int32
	terms   []string // the keys of post, sorted once sorted is set
	sorted  bool
	senders []string
	sender  map[string]uint32
}

// start begins building the index in the background unless it is built
// or being built.
func (x *searchIndex) start(c *Client) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.state != indexNone {
		return
	}
	x.state, x.done = indexBuilding, make(chan struct{})
	x.seed = maphash.MakeSeed()
	x.byKey, x.post, x.sender = map[docKey]int32{}, map[string][]int32{}, map[string]uint32{}
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		err := x.build(c.life, c)
		x.mu.Lock()
		defer x.mu.Unlock()
		if err != nil {
			// Start again at the next search.
			x.state, x.err = indexNone, err
			x.docs, x.byKey, x.post, x.terms, x.senders, x.sender = nil, nil, nil, nil, nil, nil
		} else {
			x.state = indexReady
			x.sortTerms()
		}
		close(x.done)
	}()
}

// active reports whether the index is built or being built, so that
// changes must reach it.
func (x *searchIndex) active() bool {
	x.mu.Lock()
	defer x.mu.Unlock()
	return x.state != indexNone
}

// wait starts the build if needed and waits for it.
func (x *searchIndex) wait(ctx context.Context, c *Client) error {
	x.start(c)
	x.mu.Lock()
	done := x.done
	x.mu.Unlock()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.state != indexReady {
		return fmt.Errorf("build the index: %w", x.err)
	}
	return nil
}

// build reads every message of the store into the index, one
// conversation per transaction so that it never holds the store for
// long. It holds the index's lock while reading a conversation, so that a
// change reported meanwhile is applied after the copy it read.
func (x *searchIndex) build(ctx context.Context, c *Client) error {
	var convs []store.Conversation
	if err := c.st.View(ctx, func(tx store.Tx) error {
		var err error
		convs, err = tx.Conversations()
		return err
	}); err != nil {
		return err
	}
	self := c.selfUser()
	for _, cv := range convs {
		if err := ctx.Err(); err != nil {
			return err
		}
		x.mu.Lock()
		err := c.st.View(ctx, func(tx store.Tx) error {
			return tx.MessageTexts(cv.ID, func(sm *store.MessageText) error {
				if sm.System || sm.Deleted || sm.Text == "" {
					return nil
				}
				me := false
				if self != "" {
					if cm, err := content.Decode(sm.Content); err == nil {
						_, me = slices.BinarySearch(cm.Mentions, self)
					}
				}
				x.putLocked(sm.Conversation, sm.Seq, sm.Sender, sm.Sent, sm.Text, me)
				return nil
			})
		})
		x.mu.Unlock()
		if err != nil {
			return err
		}
	}
	return nil
}

// update applies a message reported by an event, if the index is built
// or being built (a change before the build started is in the store the
// build reads).
func (x *searchIndex) update(m *Message) {
	if m == nil || m.System != nil {
		return
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	if x.state == indexNone {
		return
	}
	if m.Deleted || m.Text == "" {
		x.removeLocked(docKey{m.Conversation, m.Seq})
		return
	}
	x.putLocked(m.Conversation, m.Seq, m.Sender, m.Sent, m.Text, m.MentionsMe)
}

// removeLocked marks the message's document dead.
func (x *searchIndex) removeLocked(k docKey) {
	if d, ok := x.byKey[k]; ok {
		x.docs[d].dead = true
		delete(x.byKey, k)
	}
}

// putLocked indexes a message's text, replacing what the index held for
// its position unless the text is the same.
func (x *searchIndex) putLocked(conv protocol.ConversationID, seq int64, sender string, sent time.Time, text string, mentionsMe bool) {
	k := docKey{conv, seq}
	h := maphash.String(x.seed, text)
	if d, ok := x.byKey[k]; ok {
		if x.docs[d].text == h {
			x.docs[d].mentionsMe = x.docs[d].mentionsMe || mentionsMe
			return
		}
		x.docs[d].dead = true
	}
	s, ok := x.sender[sender]
	if !ok {
		s = uint32(len(x.senders))
		x.senders = append(x.senders, sender)
		x.sender[sender] = s
	}
	id := int32(len(x.docs))
	x.docs = append(x.docs, docInfo{conv: conv, seq: seq, sent: sent.UnixMilli(), sender: s, text: h, mentionsMe: mentionsMe})
	x.byKey[k] = id
	for _, w := range tokens(text) {
		p, seen := x.post[w]
		if len(p) > 0 && p[len(p)-1] == id {
			continue
		}
		if !seen && x.sorted {
			i, _ := slices.BinarySearch(x.terms, w)
			x.terms = slices.Insert(x.terms, i, w)
		}
		x.post[w] = append(p, id)
	}
}

// sortTerms sorts the words once the build has added them all.
func (x *searchIndex) sortTerms() {
	x.terms = slices.Sorted(maps.Keys(x.post))
	x.sorted = true
}

// query returns the live documents that match q, newest first.
func (x *searchIndex) query(q SearchQuery) []docInfo {
	terms, prefix := queryTerms(q.Text)
	x.mu.Lock()
	defer x.mu.Unlock()
	var cand []int32 // nil: every document
	all := true
	for _, t := range terms {
		p := x.post[t]
		if all {
			cand, all = slices.Clone(p), false
		} else {
			cand = intersect(cand, p)
		}
		if len(cand) == 0 {
			return nil
		}
	}
	if prefix != "" {
		set := make([]uint64, (len(x.docs)+63)/64)
		// set is a bit set over the documents that hold a word with
		// the prefix.
		i, _ := slices.BinarySearch(x.terms, prefix)
		for ; i < len(x.terms) && strings.HasPrefix(x.terms[i], prefix); i++ {
			for _, d := range x.post[x.terms[i]] {
				set[d/64] |= 1 << (d % 64)
			}
		}
		if all {
			for w, word := range set {
				for word != 0 {
					b := int32(w*64) + int32(bits.TrailingZeros64(word))
					cand = append(cand, b)
					word &= word - 1
				}
			}
			all = false
		} else {
			cand = slices.DeleteFunc(cand, func(d int32) bool { return set[d/64]&(1<<(d%64)) == 0 })
		}
	}
	from := uint32(0)
	if q.From != "" {
		s, ok := x.sender[q.From]
		if !ok {
			return nil
		}
		from = s
	}
	after, before := int64(math.MinInt64), int64(math.MaxInt64)
	if !q.After.IsZero() {
		after = q.After.UnixMilli()
	}
	if !q.Before.IsZero() {
		before = q.Before.UnixMilli()
	}
	keep := func(d *docInfo) bool {
		return !d.dead && (q.From == "" || d.sender == from) && (q.In == 0 || d.conv == q.In) &&
			d.sent >= after && d.sent < before && (!q.MentionsMe || d.mentionsMe)
	}
	var out []docInfo
	if all {
		for i := range x.docs {
			if keep(&x.docs[i]) {
				out = append(out, x.docs[i])
			}
		}
	} else {
		for _, d := range cand {
			if keep(&x.docs[d]) {
				out = append(out, x.docs[d])
			}
		}
	}
	slices.SortFunc(out, func(a, b docInfo) int {
		return cmp.Or(cmp.Compare(b.sent, a.sent), cmp.Compare(b.conv, a.conv), cmp.Compare(b.seq, a.seq))
	})
	return out
}

// intersect returns the elements of the sorted a that the sorted b holds,
// in a's storage.
func intersect(a, b []int32) []int32 {
	out := a[:0]
	j := 0
	for _, v := range a {
		for j < len(b) && b[j] < v {
			j++
		}
		if j == len(b) {
			break
		}
		if b[j] == v {
			out = append(out, v)
		}
	}
	return out
}
