package h1

import (
	"bytes"
	"strconv"
	"testing"

	"github.com/pingora-go/pingora/header"
)

// The framing decisions as made before scanHead, one lookup per field name: the fuzz targets
// check that the one-pass scan decides as they do, on every head they parse.

func refContentLength(f *header.Fields) (n int64, ok bool, err string) {
	count := 0
	f.Values("Content-Length", func(v []byte) bool {
		for more := true; more; {
			item := v
			i := bytes.IndexByte(v, ',')
			if more = i >= 0; more {
				item, v = v[:i], v[i+1:]
			}
			m, valid := parseContentLength(header.TrimOWS(item))
			if !valid {
				err = "invalid Content-Length"
				return false
			}
			if count > 0 && m != n {
				err = "conflicting Content-Length values"
				return false
			}
			n = m
			count++
		}
		return true
	})
	if err != "" {
		return 0, false, err
	}
	if count == 0 {
		return 0, false, ""
	}
	if count > 1 {
		f.Set("Content-Length", strconv.FormatInt(n, 10))
	}
	return n, true, ""
}

func refTransferCodings(f *header.Fields) (present, onlyChunked, lastChunked bool, chunked int) {
	tokens := 0
	last := false
	f.Values("Transfer-Encoding", func(v []byte) bool {
		present = true
		for len(v) > 0 {
			var item []byte
			if i := bytes.IndexByte(v, ','); i >= 0 {
				item, v = header.TrimOWS(v[:i]), v[i+1:]
			} else {
				item, v = header.TrimOWS(v), nil
			}
			if len(item) == 0 {
				continue
			}
			tokens++
			last = header.EqualFold(item, "chunked")
			if last {
				chunked++
			}
		}
		return true
	})
	return present, tokens == 1 && last, last, chunked
}

func refRequestFraming(req *header.RequestHeader) (Framing, error) {
	hosts := req.Count("Host")
	if hosts > 1 {
		return Framing{}, badRequest("repeated Host field")
	}
	if hosts == 0 && req.Version == header.HTTP11 {
		return Framing{}, badRequest("missing Host field")
	}
	if hosts == 1 {
		for _, c := range req.Host() {
			if !isHostByte[c] {
				return Framing{}, badRequest("invalid Host field")
			}
		}
	}
	te, onlyChunked, lastChunked, chunked := refTransferCodings(&req.Fields)
	if te {
		switch {
		case req.Version == header.HTTP10:
			return Framing{}, badRequest("Transfer-Encoding in an HTTP/1.0 request")
		case req.Has("Content-Length"):
			return Framing{}, badRequest("both Transfer-Encoding and Content-Length")
		case !lastChunked:
			return Framing{}, badRequest("final transfer coding is not chunked")
		case chunked > 1:
			return Framing{}, badRequest("chunked applied more than once")
		case !onlyChunked:
			return Framing{}, statusError(501, "transfer coding not implemented")
		}
		return Framing{Kind: BodyChunked}, nil
	}
	n, ok, bad := refContentLength(&req.Fields)
	if bad != "" {
		return Framing{}, badRequest(bad)
	}
	if !ok || n == 0 {
		return Framing{Kind: BodyNone}, nil
	}
	return Framing{Kind: BodyLength, Length: n}, nil
}

func refResponseFraming(resp *header.ResponseHeader, headRequest, connectRequest, allowBadLength bool) (f Framing, reuse bool, err error) {
	switch {
	case resp.Status == 101:
		return Framing{Kind: BodyRaw}, false, nil
	case resp.Status >= 100 && resp.Status < 200:
		return Framing{Kind: BodyNone}, true, nil
	case connectRequest && resp.Status >= 200 && resp.Status < 300:
		return Framing{Kind: BodyRaw}, false, nil
	case headRequest || resp.Status == 204 || resp.Status == 304:
		return Framing{Kind: BodyNone}, true, nil
	}
	te, _, lastChunked, _ := refTransferCodings(&resp.Fields)
	if te {
		reuse = true
		if resp.Remove("Content-Length") > 0 {
			reuse = false
		}
		if !lastChunked {
			return Framing{Kind: BodyUntilClose}, false, nil
		}
		return Framing{Kind: BodyChunked}, reuse, nil
	}
	n, ok, bad := refContentLength(&resp.Fields)
	if bad != "" {
		if allowBadLength {
			resp.Remove("Content-Length")
			return Framing{Kind: BodyUntilClose}, false, nil
		}
		return Framing{}, false, badResponse(bad)
	}
	if !ok {
		return Framing{Kind: BodyUntilClose}, false, nil
	}
	if n == 0 {
		return Framing{Kind: BodyNone}, true, nil
	}
	return Framing{Kind: BodyLength, Length: n}, true, nil
}

// checkScan compares what scanHead found in f with the lookups of each field.
func checkScan(t *testing.T, f *header.Fields) {
	t.Helper()
	h := scanHead(f)
	if int(h.hosts) != min(f.Count("Host"), 255) || h.date != f.Has("Date") || h.conn != f.Has("Connection") ||
		h.close != f.HasToken("Connection", "close") || h.keepAlive != f.HasToken("Connection", "keep-alive") ||
		h.clSeen != f.Has("Content-Length") || h.te != f.Has("Transfer-Encoding") {
		t.Fatalf("scan %+v disagrees with the lookups of %q", h, fieldDump(f))
	}
}

func errText(err error) string {
	if err == nil {
		return ""
	}
	return err.Error()
}

// checkRequestFraming parses in twice and compares RequestFraming with refRequestFraming.
func checkRequestFraming(t *testing.T, in []byte) {
	t.Helper()
	var a, b header.RequestHeader
	if _, err := ParseRequest(in, &a, nil); err != nil {
		return
	}
	ParseRequest(in, &b, nil)
	checkScan(t, &a.Fields)
	f1, err1 := RequestFraming(&a)
	f2, err2 := refRequestFraming(&b)
	if f1 != f2 || errText(err1) != errText(err2) || fieldDump(&a.Fields) != fieldDump(&b.Fields) {
		t.Fatalf("request framing of %q: %+v %v, lookups %+v %v", in, f1, err1, f2, err2)
	}
}

// checkResponseFraming parses in again for each way of answering and compares
// ResponseFraming with refResponseFraming, fields included.
func checkResponseFraming(t *testing.T, in []byte) {
	t.Helper()
	for _, c := range [][3]bool{{false, false, false}, {true, false, false}, {false, true, false}, {false, false, true}} {
		var a, b header.ResponseHeader
		if _, err := ParseResponse(in, &a, nil); err != nil {
			return
		}
		ParseResponse(in, &b, nil)
		checkScan(t, &a.Fields)
		f1, r1, err1 := ResponseFraming(&a, c[0], c[1], c[2])
		f2, r2, err2 := refResponseFraming(&b, c[0], c[1], c[2])
		if f1 != f2 || r1 != r2 || errText(err1) != errText(err2) || fieldDump(&a.Fields) != fieldDump(&b.Fields) {
			t.Fatalf("response framing of %q (%v): %+v %v %v, lookups %+v %v %v", in, c, f1, r1, err1, f2, r2, err2)
		}
	}
}

// TestFramingScan runs the comparison on heads that exercise every framing rule.
func TestFramingScan(t *testing.T) {
	for _, s := range []string{
		"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
		"GET / HTTP/1.1\r\n\r\n",
		"GET / HTTP/1.0\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nhost: b\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a b\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3, 3\r\ncontent-length: 3\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 4\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3,\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\nContent-Length: 4\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 1\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
		"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,\r\n\r\n",
		"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n",
		"GET / HTTP/1.0\r\nConnection: Keep-Alive, x\r\nDate: y\r\n\r\n",
		"GET / HTTP/1.1\r\nHost: a\r\nConnection: x\r\nconnection: CLOSE\r\n\r\n",
	} {
		checkRequestFraming(t, []byte(s))
	}
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5, 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
		"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
		"HTTP/1.1 200 OK\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: close\r\n\r\n",
		"HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n",
		"HTTP/1.1 304 Not Modified\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nConnection: Upgrade\r\n\r\n",
		"HTTP/1.1 103 Early Hints\r\n\r\n",
		"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nDate: x\r\n\r\n",
	} {
		checkResponseFraming(t, []byte(s))
	}
}
