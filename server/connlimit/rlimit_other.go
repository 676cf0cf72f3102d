//go:build !unix

package connlimit

import "errors"

// OpenFileLimit reports that this system has no open-file limit to
// derive a connection cap from.
func OpenFileLimit() (uint64, error) {
	return 0, errors.New("connlimit: no open-file limit on this system")
}
