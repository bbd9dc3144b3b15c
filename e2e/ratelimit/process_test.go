package ratelimit

import (
	"bufio"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestRedisGlobalLimitTwoProcesses: two proxy processes (limitproxy) share one Redis and enforce
// one limit, with the tolerance of TestRedisGlobalLimit: L − 2×(Lease−1) ≤ let through ≤ L.
func TestRedisGlobalLimitTwoProcesses(t *testing.T) {
	r := startRedis(t)
	origin := startOrigin(t)
	bin := filepath.Join(t.TempDir(), "limitproxy")
	if out, err := exec.Command("go", "build", "-o", bin, "./limitproxy").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	const limit, lease = 40, 4
	var addrs []string
	for range 2 {
		cmd := exec.Command(bin, "-upstream", origin, "-redis", r.addr, "-limit", "40", "-lease", "4")
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			cmd.Process.Signal(syscall.SIGTERM)
			done := make(chan struct{})
			go func() { cmd.Wait(); close(done) }()
			select {
			case <-done:
			case <-time.After(waitBound):
				cmd.Process.Kill()
				<-done
			}
		})
		line := make(chan string, 1)
		go func() {
			sc := bufio.NewScanner(out)
			for sc.Scan() {
				if a, ok := strings.CutPrefix(sc.Text(), "listening "); ok {
					line <- a
				}
			}
		}()
		select {
		case a := <-line:
			addrs = append(addrs, a)
		case <-time.After(waitBound):
			t.Fatal("limitproxy did not start")
		}
	}
	for _, tt := range []struct {
		name          string
		clients, each int
	}{{"one client in turn", 1, 120}, {"four clients at once", 4, 30}} {
		t.Run(tt.name, func(t *testing.T) {
			ok := countOK(t, addrs, "procs-"+strings.ReplaceAll(tt.name, " ", "-"), tt.clients, tt.each)
			if ok > limit || ok < limit-2*(lease-1) {
				t.Fatalf("%d requests got through two proxy processes, want %d-%d", ok, limit-2*(lease-1), limit)
			}
		})
	}
}
