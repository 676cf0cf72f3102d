package mls

// Group benchmarks live in bench_large_test.go (BenchmarkLargeGroup), which
// replaced BenchmarkSelfUpdateFullTree: it builds its full trees with real
// commits, so that they pass full validation, and measures creation,
// processing, Welcome size and join for bare and full trees.
