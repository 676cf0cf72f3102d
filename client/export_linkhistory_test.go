package client

// SetHistoryPartBytesForTest sets the size of the parts a history sent
// at link time is cut into, and returns a function that restores it.
func SetHistoryPartBytesForTest(n int) (restore func()) {
	old := historyPartBytes
	historyPartBytes = n
	return func() { historyPartBytes = old }
}
