package nats

import (
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	natsgo "github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Defaults used by [NewConfig] and for zero fields of a [Config].
const (
	DefaultMaxPending       = 1 << 16
	DefaultTypingQueue      = 1 << 10
	DefaultReceiveQueue     = 1 << 16
	DefaultResyncRate       = 20000
	DefaultReconnectWait    = 100 * time.Millisecond
	DefaultMaxReconnectWait = 5 * time.Second
	DefaultPingInterval     = 5 * time.Second
)

// Config configures a [Notifier]. Zero numeric fields take the defaults.
type Config struct {
	// URL is the NATS server URL, or several separated by commas. It may
	// carry credentials; they are never logged.
	URL string
	// Prefix is the subject prefix of the deployment or organisation, one
	// or more dot-separated tokens of letters, digits, '_' and '-' (for
	// example "parley.acme"). Nodes share events only with nodes of the
	// same prefix.
	Prefix string
	// NodeID names this node in logs and in the events it publishes (1 to
	// 64 printable ASCII bytes).
	NodeID string
	// Logger receives connection state changes and drops; nil discards.
	Logger *slog.Logger

	// MaxPending bounds the distinct topics waiting to be published; a
	// wake-up beyond it is dropped and replaced by a resync request.
	MaxPending int
	// TypingQueue bounds the typing signals waiting to be published; a
	// signal beyond it is dropped.
	TypingQueue int
	// ReceiveQueue bounds the remote events the NATS client buffers for
	// this node; beyond it the client drops them and the node resyncs.
	ReceiveQueue int
	// ResyncRate bounds the subscriber notifications per second of a
	// resync; negative means as fast as possible.
	ResyncRate int
	// ReconnectWait is the first delay between reconnect attempts; it
	// doubles up to MaxReconnectWait, plus up to 50% jitter.
	ReconnectWait    time.Duration
	MaxReconnectWait time.Duration
	// PingInterval is how often the client checks the connection; a dead
	// connection is noticed after two unanswered pings.
	PingInterval time.Duration

	// Registerer, when set, receives the notifier's Prometheus collectors.
	Registerer prometheus.Registerer
	// Options are appended to the notifier's NATS options (TLS,
	// credentials). Options that install handlers or change reconnect,
	// echo or buffering behaviour break the notifier's guarantees.
	Options []natsgo.Option
}

// NewConfig returns a Config with the defaults set.
func NewConfig() Config {
	return Config{
		MaxPending:       DefaultMaxPending,
		TypingQueue:      DefaultTypingQueue,
		ReceiveQueue:     DefaultReceiveQueue,
		ResyncRate:       DefaultResyncRate,
		ReconnectWait:    DefaultReconnectWait,
		MaxReconnectWait: DefaultMaxReconnectWait,
		PingInterval:     DefaultPingInterval,
	}
}

// withDefaults returns c with its zero fields set to the defaults.
func (c Config) withDefaults() Config {
	d := NewConfig()
	if c.MaxPending == 0 {
		c.MaxPending = d.MaxPending
	}
	if c.TypingQueue == 0 {
		c.TypingQueue = d.TypingQueue
	}
	if c.ReceiveQueue == 0 {
		c.ReceiveQueue = d.ReceiveQueue
	}
	if c.ResyncRate == 0 {
		c.ResyncRate = d.ResyncRate
	}
	if c.ReconnectWait == 0 {
		c.ReconnectWait = d.ReconnectWait
	}
	if c.MaxReconnectWait == 0 {
		c.MaxReconnectWait = d.MaxReconnectWait
	}
	if c.PingInterval == 0 {
		c.PingInterval = d.PingInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	return c
}

// Validate reports the first invalid field of c (zero numeric fields are
// valid: they take the defaults).
func (c Config) Validate() error {
	switch {
	case c.URL == "":
		return errors.New("fanout/nats: config: URL is empty")
	case !ValidPrefix(c.Prefix):
		return fmt.Errorf("fanout/nats: config: Prefix %q is not dot-separated tokens of [A-Za-z0-9_-]", c.Prefix)
	case !ValidNodeID(c.NodeID):
		return fmt.Errorf("fanout/nats: config: NodeID %q is not 1 to 64 printable ASCII bytes", c.NodeID)
	case c.MaxPending < 0 || c.TypingQueue < 0 || c.ReceiveQueue < 0:
		return errors.New("fanout/nats: config: MaxPending, TypingQueue and ReceiveQueue must not be negative")
	case c.ReconnectWait < 0 || c.MaxReconnectWait < 0 || c.PingInterval < 0:
		return errors.New("fanout/nats: config: durations must not be negative")
	case c.MaxReconnectWait != 0 && c.ReconnectWait > c.MaxReconnectWait:
		return fmt.Errorf("fanout/nats: config: ReconnectWait %v exceeds MaxReconnectWait %v", c.ReconnectWait, c.MaxReconnectWait)
	}
	return nil
}

// ValidPrefix reports whether p is a valid subject prefix: dot-separated
// tokens of letters, digits, '_' and '-'.
func ValidPrefix(p string) bool {
	if p == "" {
		return false
	}
	for tok := range strings.SplitSeq(p, ".") {
		if !validToken(tok) {
			return false
		}
	}
	return true
}

// validToken reports whether s is a non-empty subject token of letters,
// digits, '_' and '-' (never a wildcard, never a separator).
func validToken(s string) bool {
	if s == "" || len(s) > 255 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidNodeID reports whether id is a valid node id: 1 to 64 printable
// ASCII bytes without spaces.
func ValidNodeID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if id[i] <= ' ' || id[i] > '~' {
			return false
		}
	}
	return true
}
