package main

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
)

// openConns returns how many established TCP connections process pid holds to addr
// (an IPv4 host:port): the sockets among its file descriptors that /proc/PID/net/tcp lists
// with that remote address.
func openConns(pid int, addr string) (int, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return 0, err
	}
	ip := net.ParseIP(host).To4()
	p, err := strconv.ParseUint(port, 10, 16)
	if ip == nil || err != nil {
		return 0, fmt.Errorf("%s is not an IPv4 address and port", addr)
	}
	// /proc/net/tcp writes the address as the 32-bit word in host (little-endian) order.
	remote := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], p)

	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		return 0, err
	}
	inodes := map[string]bool{}
	for _, fd := range fds {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		if err == nil && strings.HasPrefix(l, "socket:[") {
			inodes[strings.TrimSuffix(strings.TrimPrefix(l, "socket:["), "]")] = true
		}
	}
	f, err := os.Open(fmt.Sprintf("/proc/%d/net/tcp", pid))
	if err != nil {
		return 0, err
	}
	defer f.Close()
	return countTCP(bufio.NewScanner(f), remote, inodes)
}

// countTCP counts the lines of a /proc/net/tcp table in state ESTABLISHED (01) whose remote
// address is remote and whose inode is in inodes.
func countTCP(sc *bufio.Scanner, remote string, inodes map[string]bool) (int, error) {
	n := 0
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		// sl local rem st tx:rx tr:when retrnsmt uid timeout inode ...
		if len(f) < 10 || f[2] != remote || f[3] != "01" {
			continue
		}
		if inodes[f[9]] {
			n++
		}
	}
	return n, sc.Err()
}
