//go:build !unix || aix

package pool

import "syscall"

// peekAlive reports true: this platform has no non-blocking peek that
// ConnAlive can use.
func peekAlive(syscall.RawConn) (alive bool, err error) {
	return true, nil
}
