package testserve

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/pingora-go/pingora/server"
)

// greeter writes "hi" on each connection and closes it.
type greeter struct{}

func (greeter) ServeConn(_ context.Context, c net.Conn) {
	defer c.Close()
	c.SetWriteDeadline(time.Now().Add(Bound))
	io.WriteString(c, "hi")
}

func read(t *testing.T, addr string) (string, error) {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetReadDeadline(time.Now().Add(Bound))
	b, err := io.ReadAll(c)
	return string(b), err
}

func TestRunListenStop(t *testing.T) {
	svc := server.NewListeningService("greeter", greeter{})
	svc.SetLogger(Quiet())
	addr := Listen(t, svc)
	stopped := 0
	stop := Run(t, Options{AfterStop: func() error { stopped++; return nil }}, svc)
	if got := Addr(t, svc); got != addr {
		t.Fatalf("Addr = %s, Listen said %s", got, addr)
	}
	if s, err := read(t, addr); err != nil || s != "hi" {
		t.Fatalf("read %q, %v", s, err)
	}
	stop()
	stop()
	if stopped != 1 {
		t.Fatalf("AfterStop ran %d times, want 1", stopped)
	}
	if s, err := read(t, addr); err == nil && s == "hi" {
		t.Fatal("the service still answers after stop")
	}
}

func TestAddrOfTCPAddress(t *testing.T) {
	svc := server.NewListeningService("greeter", greeter{})
	svc.SetLogger(Quiet())
	svc.AddTCP("127.0.0.1:0")
	Run(t, Options{GracePeriod: 100 * time.Millisecond}, svc)
	addr := Addr(t, svc)
	if s, err := read(t, addr); err != nil || s != "hi" {
		t.Fatalf("read from %s: %q, %v", addr, s, err)
	}
}

// recordingTB records what Run reports instead of failing the test.
type recordingTB struct {
	testing.TB
	errs []string
}

func (r *recordingTB) Helper()                      {}
func (r *recordingTB) Cleanup(f func())             {}
func (r *recordingTB) Errorf(f string, args ...any) { r.errs = append(r.errs, f) }

func TestReportErr(t *testing.T) {
	for _, report := range []bool{false, true} {
		svc := server.NewListeningService("bad", greeter{})
		svc.SetLogger(Quiet())
		svc.AddTCP("127.0.0.1:99999") // no such port: RunServices fails
		rec := &recordingTB{TB: t}
		Run(rec, Options{ReportErr: report}, svc)()
		if got := len(rec.errs) > 0; got != report {
			t.Errorf("ReportErr %v: errors reported %q", report, rec.errs)
		}
	}
}

func TestClientDo(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: Bound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/away" {
			http.Redirect(w, r, "/elsewhere", http.StatusFound)
			return
		}
		fmt.Fprintf(w, "%s %s %s %q %q", r.Method, r.Host, r.URL.Path, r.Header.Values("X-A"), r.Header.Get("Accept-Encoding"))
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	c := Client(t)
	base := "http://" + ln.Addr().String()
	resp, body := Do(t, c, "PUT", base+"/p", "host", "h.test", "X-A", "1", "X-A", "2")
	if want := `PUT h.test /p ["1" "2"] ""`; resp.StatusCode != 200 || body != want {
		t.Fatalf("got %d %s, want 200 %s", resp.StatusCode, body, want)
	}
	if resp, _ := Do(t, c, "GET", base+"/away"); resp.StatusCode != http.StatusFound {
		t.Fatalf("redirect: got %d, want 302 not followed", resp.StatusCode)
	}
}
