package testbin

import (
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestProcLogAndStop(t *testing.T) {
	p := Start(t, "sh", "-c", `echo "first line" >&2; trap 'echo "got term" >&2; exit 3' TERM; echo "ready on port 7" >&2; while :; do sleep 0.05; done`)
	p.WaitLog("ready", "port 7")
	if !strings.Contains(p.Log(), "first line") {
		t.Fatalf("log lacks the first line:\n%s", p.Log())
	}
	if !p.Stop(syscall.SIGTERM) {
		t.Fatal("sh did not stop on SIGTERM")
	}
	if err := p.Wait(time.Second); err == nil || !strings.Contains(err.Error(), "exit status 3") {
		t.Fatalf("exit error %v, want exit status 3", err)
	}
	if !strings.Contains(p.Log(), "got term") {
		t.Fatalf("log lacks the trap's line:\n%s", p.Log())
	}
	select {
	case <-p.Exited():
	default:
		t.Fatal("Exited is not closed after Wait")
	}
}

func TestProcSignalAndWait(t *testing.T) {
	p := Start(t, "sh", "-c", `trap 'exit 0' INT; echo up >&2; while :; do sleep 0.05; done`)
	p.WaitLog("up")
	p.Signal(syscall.SIGINT)
	if err := p.Wait(Bound); err != nil {
		t.Fatalf("exit: %v", err)
	}
}

func TestWaitListening(t *testing.T) {
	addr := FreeAddr(t)
	if !strings.HasPrefix(addr, "127.0.0.1:") {
		t.Fatalf("FreeAddr = %q", addr)
	}
	if err := waitListening(addr, closed()); err == nil {
		t.Fatal("waitListening succeeded on a closed port with an exited process")
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	WaitListening(t, addr)
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}
