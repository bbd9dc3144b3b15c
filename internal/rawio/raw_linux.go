//go:build !race

package rawio

import (
	"syscall"
	"unsafe"
)

// sysRead is read(2) as a raw system call; p is not empty.
func sysRead(fd uintptr, p []byte) (int, syscall.Errno) {
	n, _, e := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	return int(n), e
}

// sysWritev writes a then b as one raw system call: write(2) when one of them is empty,
// writev(2) otherwise. They are not both empty.
func sysWritev(fd uintptr, a, b []byte) (int, syscall.Errno) {
	if len(a) == 0 || len(b) == 0 {
		p := a
		if len(p) == 0 {
			p = b
		}
		n, _, e := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		return int(n), e
	}
	iov := [2]syscall.Iovec{{Base: &a[0]}, {Base: &b[0]}}
	iov[0].SetLen(len(a))
	iov[1].SetLen(len(b))
	n, _, e := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&iov[0])), 2)
	return int(n), e
}
