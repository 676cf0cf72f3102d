package client

// SetFailpoint installs a failpoint for tests; nil removes it.
func SetFailpoint(f func(name string) bool) { failpoint = f }
