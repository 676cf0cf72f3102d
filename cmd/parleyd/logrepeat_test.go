package main

import (
	"strings"
	"testing"
	"time"
)

// parleyd's logger writes at most log.max_repeats identical records per
// log.repeat_interval; 0 writes every record.
func TestLoggerRepeatLimit(t *testing.T) {
	for _, tc := range []struct {
		max, want int
	}{{2, 2}, {0, 50}} {
		var b strings.Builder
		log := newLogger(LogConfig{Level: "info", Format: "json", MaxRepeats: tc.max, RepeatInterval: time.Hour}, &b)
		for range 50 {
			log.With("node", "n").Error("request failed", "err", "boom")
		}
		if got := strings.Count(b.String(), `"msg":"request failed"`); got != tc.want {
			t.Errorf("max_repeats %d: %d of 50 identical records written, want %d", tc.max, got, tc.want)
		}
	}
}

// The new limits are configuration keys with validated values, and reach
// the HTTP adapter.
func TestAbuseLimitSettings(t *testing.T) {
	c := NewConfig()
	c.DataDir = t.TempDir()
	if c.Log.MaxRepeats != 10 || c.Log.RepeatInterval != time.Minute || c.RateLimits.FramesPerConnection.Burst < 1 {
		t.Fatalf("defaults: log %+v, frames %+v", c.Log, c.RateLimits.FramesPerConnection)
	}
	byKey := map[string]setting{}
	for _, s := range settings() {
		byKey[s.key] = s
	}
	for k, v := range map[string]string{"log.max_repeats": "3", "log.repeat_interval": "30s",
		"rate_limits.frames_per_connection.per_second": "7", "rate_limits.frames_per_connection.burst": "70"} {
		s, ok := byKey[k]
		if !ok {
			t.Fatalf("no setting %s", k)
		}
		if err := s.set(&c, v); err != nil {
			t.Fatalf("%s = %s: %v", k, v, err)
		}
	}
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	if h := httpapiConfig(c); h.RateLimits.FramesPerConnection.PerSecond != 7 || h.RateLimits.FramesPerConnection.Burst != 70 {
		t.Errorf("httpapi frames per connection %+v, want 7/s burst 70", h.RateLimits.FramesPerConnection)
	}
	if !strings.Contains(formatConfig(&c), "log.max_repeats = 3\n") {
		t.Errorf("parleyd config does not show log.max_repeats:\n%s", formatConfig(&c))
	}
	for _, bad := range []struct{ key, value string }{
		{"log.max_repeats", "-1"}, {"log.repeat_interval", "0s"},
		{"rate_limits.frames_per_connection.per_second", "0"}, {"rate_limits.frames_per_connection.burst", "0"},
	} {
		c := NewConfig()
		c.DataDir = t.TempDir()
		if err := byKey[bad.key].set(&c, bad.value); err != nil {
			continue // refused when parsed
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), bad.key) {
			t.Errorf("%s = %s: %v, want an error naming the key", bad.key, bad.value, err)
		}
	}
}
