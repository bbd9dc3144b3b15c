package faults

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Get returns an HTTP/1.1 GET request for path.
func Get(path string) []byte {
	return []byte("GET " + path + " HTTP/1.1\r\nHost: faults.test\r\n\r\n")
}

// Post returns an HTTP/1.1 POST request for path with body and its Content-Length.
func Post(path, body string) []byte {
	return []byte(fmt.Sprintf("POST %s HTTP/1.1\r\nHost: faults.test\r\nContent-Length: %d\r\n\r\n%s", path, len(body), body))
}

// MaxBody bounds the response body an Outcome keeps.
const MaxBody = 64 << 20

// Outcome is what a client saw.
type Outcome struct {
	// Status is the final response's status, 0 when no response head arrived.
	Status int
	// Header is the final response's header.
	Header http.Header
	// Interim counts the 1xx responses before the final one.
	Interim int
	// Body is the body received, whole or not.
	Body []byte
	// Complete says the body ended where its framing said: Content-Length reached, last chunk
	// read, or a status or method without a body. A close-delimited body is never Complete:
	// a client cannot tell its end from a cut.
	Complete bool
	// CloseDelimited says the final response had neither Content-Length nor chunked framing:
	// its body ends when the connection closes. A proxy that turns a cut upstream body into a
	// close-delimited one makes the cut look like a complete response.
	CloseDelimited bool
	// Responses counts the final responses read completely (PipelineFlood).
	Responses int
	// Closed says the server closed the connection (FIN or reset) while the client waited.
	Closed bool
	// Reset says the connection was reset.
	Reset bool
	// Sent is how many bytes the client wrote.
	Sent int
	// Err is the error that ended reading, nil after a Complete response.
	Err error
	// Elapsed is how long the exchange took.
	Elapsed time.Duration
}

// String describes the outcome in one line, for test failures.
func (o Outcome) String() string {
	return fmt.Sprintf("status %d (interim %d, responses %d), body %d bytes complete=%v close-delimited=%v, closed=%v reset=%v, sent %d, err=%v, after %v",
		o.Status, o.Interim, o.Responses, len(o.Body), o.Complete, o.CloseDelimited, o.Closed, o.Reset, o.Sent, o.Err, o.Elapsed.Round(time.Millisecond))
}

// Client talks to Addr (the proxy under test) and misbehaves on request. Every method opens
// its own connection and bounds the whole exchange by Bound (DefaultBound when zero).
type Client struct {
	Addr  string
	Bound time.Duration
}

func (c Client) bound() time.Duration {
	if c.Bound > 0 {
		return c.Bound
	}
	return DefaultBound
}

// dial connects to Addr with the whole exchange's deadline set.
func (c Client) dial() (net.Conn, time.Time, error) {
	start := time.Now()
	nc, err := net.DialTimeout("tcp", c.Addr, c.bound())
	if err != nil {
		return nil, start, err
	}
	nc.SetDeadline(start.Add(c.bound()))
	return nc, start, nil
}

// Fetch is a well-behaved client: it sends req and reads one response.
func (c Client) Fetch(req []byte) Outcome {
	nc, start, err := c.dial()
	if err != nil {
		return Outcome{Err: err}
	}
	defer nc.Close()
	o := Outcome{}
	n, err := nc.Write(req)
	o.Sent = n
	if err != nil {
		o.Err = err
	} else {
		readOne(bufio.NewReader(nc), methodOf(req), &o)
	}
	o.Elapsed = time.Since(start)
	return o
}

// Slowloris sends head one byte each gap, and stops when the server answers or closes: a
// server without a head timeout holds the connection as long as the client likes.
func (c Client) Slowloris(head []byte, gap time.Duration) Outcome {
	return c.dribble(nil, head, gap)
}

// SlowBody sends head at once, then body one byte each gap, and stops when the server
// answers or closes: it exercises the timeout between body reads.
func (c Client) SlowBody(head, body []byte, gap time.Duration) Outcome {
	return c.dribble(head, body, gap)
}

// dribble writes prefix, then slow a byte at a time, while reading the response.
func (c Client) dribble(prefix, slow []byte, gap time.Duration) Outcome {
	nc, start, err := c.dial()
	if err != nil {
		return Outcome{Err: err}
	}
	defer nc.Close()
	done := make(chan struct{})
	var read Outcome
	go func() {
		defer close(done)
		readOne(bufio.NewReader(nc), methodOf(append(append([]byte(nil), prefix...), slow...)), &read)
	}()
	sent, err := nc.Write(prefix)
	if err == nil {
		t := time.NewTicker(gap)
	writing:
		for i := range slow {
			if _, err := nc.Write(slow[i : i+1]); err != nil {
				break
			}
			sent++
			if i == len(slow)-1 {
				break
			}
			select {
			case <-done:
				break writing
			case <-t.C:
			}
		}
		t.Stop()
	}
	<-done
	o := read
	o.Sent = sent
	o.Elapsed = time.Since(start)
	return o
}

// OversizedHead sends a GET whose head is size bytes, mostly one long field, while reading
// the answer: a server should refuse it (431) or close, without buffering it whole.
func (c Client) OversizedHead(size int) Outcome {
	pre := "GET / HTTP/1.1\r\nHost: faults.test\r\nX-Oversized: "
	n := max(size-len(pre)-4, 1)
	head := make([]byte, 0, len(pre)+n+4)
	head = append(head, pre...)
	head = append(head, body(n)...)
	head = append(head, "\r\n\r\n"...)
	return c.stream(head, 1)
}

// PipelineFlood writes n copies of req back to back without waiting for answers, while
// reading the responses; Responses counts those read completely.
func (c Client) PipelineFlood(req []byte, n int) Outcome {
	all := make([]byte, 0, len(req)*n)
	for range n {
		all = append(all, req...)
	}
	return c.stream(all, n)
}

// stream writes data on its own goroutine (the server may stop reading) while reading up to
// want responses.
func (c Client) stream(data []byte, want int) Outcome {
	nc, start, err := c.dial()
	if err != nil {
		return Outcome{Err: err}
	}
	defer nc.Close()
	wrote := make(chan int, 1)
	go func() {
		n, _ := nc.Write(data)
		wrote <- n
	}()
	o := Outcome{}
	br := bufio.NewReader(nc)
	for o.Responses < want {
		var one Outcome
		readOne(br, methodOf(data), &one)
		o.Status, o.Header, o.Body, o.Complete, o.Err = one.Status, one.Header, one.Body, one.Complete, one.Err
		o.Interim += one.Interim
		o.Closed, o.Reset = one.Closed, one.Reset
		if !one.Complete {
			break
		}
		o.Responses++
	}
	nc.Close() // unblocks the writer
	o.Sent = <-wrote
	o.Elapsed = time.Since(start)
	return o
}

// HalfClose sends req and closes its sending side (TCP FIN) before reading the response: a
// server must still answer.
func (c Client) HalfClose(req []byte) Outcome {
	nc, start, err := c.dial()
	if err != nil {
		return Outcome{Err: err}
	}
	defer nc.Close()
	o := Outcome{}
	n, err := nc.Write(req)
	o.Sent = n
	if err == nil {
		err = nc.(*net.TCPConn).CloseWrite()
	}
	if err != nil {
		o.Err = err
	} else {
		readOne(bufio.NewReader(nc), methodOf(req), &o)
	}
	o.Elapsed = time.Since(start)
	return o
}

// SlowReader is a client that sent its request and stopped reading the response after its
// head, with a small receive buffer, so that the server's writes back up.
type SlowReader struct {
	conn  net.Conn
	br    *bufio.Reader
	resp  *http.Response
	start time.Time
	// Status is the response's status.
	Status int
}

// StartSlowReader sends req, reads the response head and then stops reading. It returns an
// error if no response head arrived within the bound.
func (c Client) StartSlowReader(req []byte) (*SlowReader, error) {
	start := time.Now()
	d := net.Dialer{Timeout: c.bound(), Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096)
		})
		return errors.Join(err, serr)
	}}
	nc, err := d.Dial("tcp", c.Addr)
	if err != nil {
		return nil, err
	}
	nc.SetDeadline(start.Add(c.bound()))
	if _, err := nc.Write(req); err != nil {
		nc.Close()
		return nil, err
	}
	br := bufio.NewReaderSize(nc, 4096)
	resp, err := http.ReadResponse(br, &http.Request{Method: methodOf(req)})
	if err != nil {
		nc.Close()
		return nil, err
	}
	nc.SetDeadline(time.Time{})
	return &SlowReader{conn: nc, br: br, resp: resp, start: start, Status: resp.StatusCode}, nil
}

// Resume reads the rest of the body within bound and returns the outcome: a server that gave
// up on the slow reader has closed the connection before the body's end.
func (s *SlowReader) Resume(bound time.Duration) Outcome {
	s.conn.SetDeadline(time.Now().Add(bound))
	o := Outcome{Status: s.resp.StatusCode, Header: s.resp.Header}
	readBody(s.resp, &o)
	o.Elapsed = time.Since(s.start)
	return o
}

// Close closes the connection.
func (s *SlowReader) Close() error { return s.conn.Close() }

// readOne reads one final response (after any 1xx) into o.
func readOne(br *bufio.Reader, method string, o *Outcome) {
	for {
		resp, err := http.ReadResponse(br, &http.Request{Method: method})
		if err != nil {
			o.Err = err
			o.Closed, o.Reset = closedBy(err)
			return
		}
		if resp.StatusCode >= 100 && resp.StatusCode < 200 && resp.StatusCode != 101 {
			o.Interim++
			continue
		}
		o.Status, o.Header = resp.StatusCode, resp.Header
		readBody(resp, o)
		return
	}
}

// readBody reads resp's body into o, telling a framed end from a cut.
func readBody(resp *http.Response, o *Outcome) {
	noBody := resp.StatusCode == 204 || resp.StatusCode == 304 || resp.Request != nil && resp.Request.Method == "HEAD"
	chunked := len(resp.TransferEncoding) > 0 && resp.TransferEncoding[0] == "chunked"
	o.CloseDelimited = !noBody && !chunked && resp.ContentLength < 0
	b, err := io.ReadAll(io.LimitReader(resp.Body, MaxBody))
	o.Body = b
	if err != nil {
		o.Err = err
		o.Closed, o.Reset = closedBy(err)
		return
	}
	o.Complete = !o.CloseDelimited
	if !o.Complete {
		// Close-delimited: the body ended with the connection.
		o.Closed = true
		o.Err = errors.New("faults: close-delimited body")
	}
}

// closedBy tells whether err means the server closed the connection, and whether by reset.
func closedBy(err error) (closed, reset bool) {
	if errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE) {
		return true, true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return true, false
	}
	return false, false
}

// methodOf returns the method of the first request in req.
func methodOf(req []byte) string {
	m, _, _ := strings.Cut(string(req[:min(len(req), 16)]), " ")
	return m
}
