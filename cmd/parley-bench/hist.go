package main

import (
	"math"
	"sort"
	"sync"
	"time"
)

// histBase is the ratio between consecutive histogram bucket bounds: 1%
// relative precision.
const histBase = 1.01

// hist is a latency histogram with logarithmic buckets of 1% width over
// microseconds, small enough to travel as JSON between processes and
// mergeable. The zero value is empty and usable.
type hist struct {
	Buckets map[int]int64 `json:"buckets,omitempty"` // Buckets counts samples by bucket index.
	Count   int64         `json:"count"`
	Sum     float64       `json:"sum_us"` // Sum is the total in microseconds.
	Max     float64       `json:"max_us"`
}

// bucketOf returns the bucket of a latency in microseconds.
func bucketOf(us float64) int {
	if us < 1 {
		return 0
	}
	return int(math.Log(us)/math.Log(histBase)) + 1
}

// add records one latency.
func (h *hist) add(d time.Duration) {
	us := float64(d) / float64(time.Microsecond)
	if us < 0 {
		us = 0
	}
	if h.Buckets == nil {
		h.Buckets = map[int]int64{}
	}
	h.Buckets[bucketOf(us)]++
	h.Count++
	h.Sum += us
	h.Max = max(h.Max, us)
}

// merge adds o's samples.
func (h *hist) merge(o *hist) {
	if o == nil || o.Count == 0 {
		return
	}
	if h.Buckets == nil {
		h.Buckets = map[int]int64{}
	}
	for b, n := range o.Buckets {
		h.Buckets[b] += n
	}
	h.Count += o.Count
	h.Sum += o.Sum
	h.Max = max(h.Max, o.Max)
}

// quantile returns the q-quantile (0 < q ≤ 1) as the upper bound of its
// bucket, capped at the maximum.
func (h *hist) quantile(q float64) time.Duration {
	if h.Count == 0 {
		return 0
	}
	keys := make([]int, 0, len(h.Buckets))
	for k := range h.Buckets {
		keys = append(keys, k)
	}
	sort.Ints(keys)
	rank := int64(math.Ceil(q * float64(h.Count)))
	var seen int64
	for _, k := range keys {
		seen += h.Buckets[k]
		if seen >= rank {
			us := math.Min(math.Pow(histBase, float64(k)), h.Max)
			return time.Duration(us * float64(time.Microsecond))
		}
	}
	return time.Duration(h.Max * float64(time.Microsecond))
}

// shardedHist spreads concurrent recording over a few locked histograms.
type shardedHist struct {
	shards [16]struct {
		mu sync.Mutex
		h  hist
	}
}

// add records d in shard key.
func (s *shardedHist) add(key int, d time.Duration) {
	sh := &s.shards[key%len(s.shards)]
	sh.mu.Lock()
	sh.h.add(d)
	sh.mu.Unlock()
}

// total merges the shards.
func (s *shardedHist) total() *hist {
	var h hist
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.Lock()
		h.merge(&sh.h)
		sh.mu.Unlock()
	}
	return &h
}
