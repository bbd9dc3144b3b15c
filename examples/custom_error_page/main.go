// Command custom_error_page is a reverse proxy that answers failed requests with its own HTML
// error page (502 when the upstream cannot be reached, 504 when it does not answer in time)
// and counts the status of every response in its Logging phase.
//
//	go run ./examples/custom_error_page -listen 127.0.0.1:6193 -upstream 127.0.0.1:8001
package main

import (
	"context"
	"flag"
	"fmt"
	"html"
	"log"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:6193", "address to accept HTTP on")
	up := flag.String("upstream", "127.0.0.1:8001", "upstream host:port")
	readTimeout := flag.Duration("read-timeout", 10*time.Second, "longest wait for each read from the upstream")
	flag.Parse()

	app, err := newProxy(*up, *readTimeout)
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("custom error page", app, proxy.Options{})
	svc.AddTCP(*listen)
	srv := server.New(server.Options{})
	srv.AddService(svc)
	if err := srv.Run(context.Background()); err != nil {
		log.Fatal(err)
	}
}

// errorPager proxies to one upstream, answers failures with an HTML page and counts statuses.
type errorPager struct {
	proxy.Defaults[struct{}]
	peer      *upstream.Peer
	pageHeads header.Fields // the fields of every error page, besides Content-Length

	mu       sync.Mutex // guards statuses
	statuses map[int]int
}

// newProxy returns the proxy in front of addr, waiting at most readTimeout for each read from
// it.
func newProxy(addr string, readTimeout time.Duration) (*errorPager, error) {
	p, err := upstream.NewPeer(addr, false, "")
	if err != nil {
		return nil, err
	}
	p.Options.ReadTimeout = readTimeout
	e := &errorPager{peer: p, statuses: map[int]int{}}
	e.pageHeads.Append("Content-Type", "text/html; charset=utf-8")
	e.pageHeads.Append("Cache-Control", "private, no-store")
	return e, nil
}

// NewCtx returns the empty context: no per-request state is needed.
func (e *errorPager) NewCtx() struct{} { return struct{}{} }

// UpstreamPeer sends every request to the one upstream.
func (e *errorPager) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return e.peer, nil
}

// FailToProxy answers a failed request with an HTML page carrying the status the default would
// have sent (perr.StatusFor). When a response has already started, or the client is gone
// (status 0), nothing can be sent.
func (e *errorPager) FailToProxy(s *proxy.Session, err error, _ *struct{}) proxy.FailToProxy {
	code := perr.StatusFor(err)
	if code > 0 && !s.ResponseStarted() {
		s.Respond(code, &e.pageHeads, errorPage(code))
	}
	// The request body may not have been read to its end: do not reuse the connection.
	return proxy.FailToProxy{ErrorCode: code}
}

// errorPage returns the HTML page for status code.
func errorPage(code int) []byte {
	title := html.EscapeString(strconv.Itoa(code) + " " + header.StatusText(code))
	return fmt.Appendf(nil, "<!DOCTYPE html>\n<html><head><title>%s</title></head>\n"+
		"<body><h1>%s</h1><p>The site could not be reached through pingora-go. Please try again later.</p></body></html>\n",
		title, title)
}

// Logging counts the status of the response sent, 0 when none was.
func (e *errorPager) Logging(s *proxy.Session, _ error, _ *struct{}) {
	e.mu.Lock()
	e.statuses[s.ResponseStatus()]++
	e.mu.Unlock()
}

// Statuses returns how many responses were sent with each status so far.
func (e *errorPager) Statuses() map[int]int {
	e.mu.Lock()
	defer e.mu.Unlock()
	return maps.Clone(e.statuses)
}
