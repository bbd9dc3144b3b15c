package proxy

import (
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/protocols/h2"
)

// upstreamSession is what an attempt needs of its upstream exchange: an HTTP/1 client session
// (h1Up) or an HTTP/2 stream (h2Up). Conversions of the session pointers to these types do
// not allocate.
type upstreamSession interface {
	// writeHead sends the request head; endStream says there is no body.
	writeHead(req *header.RequestHeader, endStream bool) error
	WriteBody(p []byte) error
	Flush() error
	FinishRequest(trailers *header.Fields) error
	ReadResponseHeader() error
	// response is the response head ReadResponseHeader read.
	response() *header.ResponseHeader
	ReadBody() ([]byte, error)
	BodyDone() bool
	Trailers() *header.Fields
	// abort wakes a reader or writer blocked on another goroutine and makes the session
	// unusable.
	abort()
	// stopRequest makes a request body writer on another goroutine fail.
	stopRequest()
	// markBroken keeps the session from being reused.
	markBroken()
}

type h1Up h1.ClientSession

func (u *h1Up) cs() *h1.ClientSession { return (*h1.ClientSession)(u) }

func (u *h1Up) writeHead(req *header.RequestHeader, _ bool) error {
	return u.cs().WriteRequestHeader(req)
}
func (u *h1Up) WriteBody(p []byte) error                    { return u.cs().WriteBody(p) }
func (u *h1Up) Flush() error                                { return u.cs().Flush() }
func (u *h1Up) FinishRequest(trailers *header.Fields) error { return u.cs().FinishRequest(trailers) }
func (u *h1Up) ReadResponseHeader() error                   { return u.cs().ReadResponseHeader() }
func (u *h1Up) response() *header.ResponseHeader            { return &u.cs().Resp }
func (u *h1Up) ReadBody() ([]byte, error)                   { return u.cs().ReadBody() }
func (u *h1Up) BodyDone() bool                              { return u.cs().BodyDone() }
func (u *h1Up) Trailers() *header.Fields                    { return u.cs().Trailers() }
func (u *h1Up) abort()                                      { u.cs().MarkBroken(); u.cs().Conn().Close() }
func (u *h1Up) stopRequest()                                { u.cs().InterruptWrite() }
func (u *h1Up) markBroken()                                 { u.cs().MarkBroken() }

type h2Up h2.ClientStream

func (u *h2Up) cs() *h2.ClientStream { return (*h2.ClientStream)(u) }

func (u *h2Up) writeHead(req *header.RequestHeader, endStream bool) error {
	return u.cs().WriteRequestHeader(req, endStream)
}
func (u *h2Up) WriteBody(p []byte) error                    { return u.cs().WriteBody(p) }
func (u *h2Up) Flush() error                                { return nil }
func (u *h2Up) FinishRequest(trailers *header.Fields) error { return u.cs().FinishRequest(trailers) }
func (u *h2Up) ReadResponseHeader() error                   { return u.cs().ReadResponseHeader() }
func (u *h2Up) response() *header.ResponseHeader            { return &u.cs().Resp }
func (u *h2Up) ReadBody() ([]byte, error)                   { return u.cs().ReadBody() }
func (u *h2Up) BodyDone() bool                              { return u.cs().BodyDone() }
func (u *h2Up) Trailers() *header.Fields                    { return u.cs().Trailers() }
func (u *h2Up) abort()                                      { u.cs().Abort() }
func (u *h2Up) stopRequest()                                { u.cs().Abort() }
func (u *h2Up) markBroken()                                 {}
