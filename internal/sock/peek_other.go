//go:build !linux

// Package sock holds small socket operations the standard library does not offer.
package sock

import "syscall"

// Supported reports whether Peek works on this system.
const Supported = false

// Peek is not implemented off Linux; it reports EAGAIN.
func Peek(fd uintptr, buf *byte) (n int, errno syscall.Errno) { return 0, syscall.EAGAIN }

// PeekN is not implemented off Linux; it reports EAGAIN.
func PeekN(fd uintptr, buf []byte) (n int, errno syscall.Errno) { return 0, syscall.EAGAIN }
