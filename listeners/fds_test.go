package listeners

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHandOver sends a TCP and a unix listener over an upgrade socket and checks that the
// adopted listeners accept connections made to the original addresses.
func TestHandOver(t *testing.T) {
	dir := t.TempDir()
	tcp, err := Listen(context.Background(), Address{Network: "tcp", Addr: "127.0.0.1:0"})
	if err != nil {
		t.Fatal(err)
	}
	udsPath := filepath.Join(dir, "proxy.sock")
	uds, err := Listen(context.Background(), Address{Network: "unix", Addr: udsPath})
	if err != nil {
		t.Fatal(err)
	}
	addrs := []Address{{Network: "tcp", Addr: "127.0.0.1:0"}, {Network: "unix", Addr: udsPath, Perm: 0o600}}
	var files []*os.File
	for _, ln := range []net.Listener{tcp, uds} {
		f, err := File(ln)
		if err != nil {
			t.Fatal(err)
		}
		files = append(files, f)
	}
	sock := filepath.Join(dir, "upgrade.sock")
	got := make(chan map[string]*os.File, 1)
	errc := make(chan error, 1)
	go func() {
		m, err := ReceiveFds(sock, 5)
		errc <- err
		got <- m
	}()
	if err := SendFds(sock, 5, []string{addrs[0].String(), addrs[1].String()}, files); err != nil {
		t.Fatal(err)
	}
	if err := <-errc; err != nil {
		t.Fatal(err)
	}
	m := <-got
	if len(m) != 2 {
		t.Fatalf("received %d sockets, want 2", len(m))
	}
	tcpAddr := tcp.Addr().String()
	// The old process closes its listeners; the sockets live on in the new one.
	tcp.Close()
	uds.Close()
	closeAll(files)
	if _, err := os.Stat(udsPath); err != nil {
		t.Fatalf("closing the handed-over unix listener removed its path: %v", err)
	}
	for _, a := range addrs {
		ln, err := FromFile(m[a.String()], a)
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		network, dial := "tcp", tcpAddr
		if a.Network == "unix" {
			network, dial = "unix", udsPath
			if fi, _ := os.Stat(udsPath); fi.Mode().Perm() != 0o600 {
				t.Errorf("unix socket mode %v, want 0600", fi.Mode().Perm())
			}
		}
		go func() {
			if c, err := ln.Accept(); err == nil {
				c.Write([]byte("hi"))
				c.Close()
			}
		}()
		c, err := net.DialTimeout(network, dial, 5*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", a, err)
		}
		buf := make([]byte, 2)
		c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := c.Read(buf); err != nil || string(buf) != "hi" {
			t.Errorf("%s: read %q %v", a, buf, err)
		}
		c.Close()
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Errorf("upgrade socket left behind: %v", err)
	}
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

func TestSendFdsNobodyWaiting(t *testing.T) {
	err := SendFds(filepath.Join(t.TempDir(), "none.sock"), 0, nil, nil)
	if err == nil || !strings.Contains(err.Error(), "connecting to upgrade socket") {
		t.Fatalf("err = %v", err)
	}
}

func TestSendFdsLimits(t *testing.T) {
	cases := []struct {
		name  string
		keys  []string
		files int
		want  string
	}{
		{"count mismatch", []string{"a"}, 0, "differ in number"},
		{"too many", make([]string, MaxFds+1), MaxFds + 1, "at most 32"},
		{"payload too long", []string{strings.Repeat("x", MaxFdPayload+1)}, 1, "bytes"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := make([]*os.File, tc.files)
			err := SendFds(filepath.Join(t.TempDir(), "s.sock"), 0, tc.keys, files)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want %q", err, tc.want)
			}
		})
	}
}

func TestReceiveFdsTimesOut(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "upgrade.sock")
	if _, err := ReceiveFds(sock, 0); err == nil || !strings.Contains(err.Error(), "no old process") {
		t.Fatalf("err = %v", err)
	}
}

func TestPairFds(t *testing.T) {
	cases := []struct {
		payload string
		n       int
		ok      bool
	}{
		{"", 0, true},
		{"127.0.0.1:80", 1, true},
		{"0.0.0.0:80 unix:/tmp/a.sock", 2, true},
		{"a b", 1, false},
		{"a", 2, false},
		{"a a", 2, false},
		{"a  b", 3, false},
	}
	for _, tc := range cases {
		fds := make([]int, tc.n)
		for i := range fds {
			fds[i] = -1
		}
		m, err := pairFds(tc.payload, fds)
		if (err == nil) != tc.ok {
			t.Errorf("%q with %d fds: err %v, want ok=%v", tc.payload, tc.n, err, tc.ok)
		}
		if err == nil && len(m) != tc.n {
			t.Errorf("%q: %d entries, want %d", tc.payload, len(m), tc.n)
		}
	}
}

func FuzzPairFds(f *testing.F) {
	f.Add("0.0.0.0:80 unix:/tmp/a.sock", 2)
	f.Add("", 0)
	f.Add("a a", 2)
	f.Fuzz(func(t *testing.T, payload string, n int) {
		if n < 0 || n > MaxFds {
			return
		}
		fds := make([]int, n)
		for i := range fds {
			fds[i] = -1
		}
		m, err := pairFds(payload, fds)
		if err == nil && len(m) != n {
			t.Fatalf("%q: %d entries for %d fds", payload, len(m), n)
		}
	})
}
