package header

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
)

func TestRequestHeader(t *testing.T) {
	r := NewRequest("GET", "/a/b?x=1&y")
	r.Append("Host", "example.com")
	r.Append("X-Mixed-Case", "v")
	if !r.IsMethod("GET") || r.IsMethod("get") {
		t.Errorf("IsMethod is not case-sensitive")
	}
	if string(r.Path()) != "/a/b" || string(r.Query()) != "x=1&y" {
		t.Errorf("Path, Query = %q, %q", r.Path(), r.Query())
	}
	if string(r.Host()) != "example.com" {
		t.Errorf("Host = %q", r.Host())
	}
	want := "GET /a/b?x=1&y HTTP/1.1\r\nHost: example.com\r\nX-Mixed-Case: v\r\n\r\n"
	if got := r.String(); got != want {
		t.Errorf("String = %q, want %q", got, want)
	}
	r.Version = HTTP10
	r.SetMethod("POST")
	r.SetTarget("*")
	if got, want := r.String(), "POST * HTTP/1.0\r\nHost: example.com\r\nX-Mixed-Case: v\r\n\r\n"; got != want {
		t.Errorf("after setters: %q, want %q", got, want)
	}
	if r.Query() != nil || string(r.Path()) != "*" {
		t.Errorf("no query: Path, Query = %q, %q", r.Path(), r.Query())
	}
	r.Version = HTTP2
	if got := string(r.AppendH1(nil)[:15]); got != "POST * HTTP/1.1" {
		t.Errorf("HTTP/2 head serialized for HTTP/1 as %q", got)
	}
}

func TestRequestHeaderCopyFromAndReset(t *testing.T) {
	buf := []byte("PUT/xHostexample")
	var src RequestHeader
	src.SetStartLine(buf[:3], buf[3:5], HTTP11)
	src.AppendRef(buf[5:9], buf[9:])
	var dst RequestHeader
	dst.CopyFrom(&src)
	copy(buf, "################")
	src.Reset()
	if got, want := dst.String(), "PUT /x HTTP/1.1\r\nHost: example\r\n\r\n"; got != want {
		t.Fatalf("copy = %q, want %q", got, want)
	}
	if src.Len() != 0 || src.Method() != nil || src.Target() != nil || src.Version != VersionUnknown {
		t.Fatalf("Reset left %q", src.String())
	}
}

func TestResponseHeader(t *testing.T) {
	tests := []struct {
		name  string
		build func() *ResponseHeader
		want  string
	}{
		{"standard reason", func() *ResponseHeader { return NewResponse(404) },
			"HTTP/1.1 404 Not Found\r\n\r\n"},
		{"custom reason", func() *ResponseHeader {
			r := NewResponse(200)
			r.SetReason("Fine")
			return r
		}, "HTTP/1.1 200 Fine\r\n\r\n"},
		{"SetStatus clears reason", func() *ResponseHeader {
			r := NewResponse(200)
			r.SetReason("Fine")
			r.SetStatus(503)
			return r
		}, "HTTP/1.1 503 Service Unavailable\r\n\r\n"},
		{"unknown code, fields, 1.0", func() *ResponseHeader {
			r := NewResponse(599)
			r.Version = HTTP10
			r.Append("Server", "x")
			return r
		}, "HTTP/1.0 599 \r\nServer: x\r\n\r\n"},
		{"empty reason kept", func() *ResponseHeader {
			r := &ResponseHeader{}
			r.SetStatusLine(200, []byte{}, HTTP11)
			return r
		}, "HTTP/1.1 200 \r\n\r\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.build().String(); got != tt.want {
				t.Fatalf("String = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestResponseHeaderCopyFrom(t *testing.T) {
	reason := []byte("Okay")
	var src ResponseHeader
	src.SetStatusLine(200, reason, HTTP10)
	src.Append("A", "b")
	var dst ResponseHeader
	dst.CopyFrom(&src)
	copy(reason, "XXXX")
	src.Reset()
	if got, want := dst.String(), "HTTP/1.0 200 Okay\r\nA: b\r\n\r\n"; got != want {
		t.Fatalf("copy = %q, want %q", got, want)
	}
	if string(src.Reason()) != "" || src.Status != 0 {
		t.Fatalf("Reset left status %d reason %q", src.Status, src.Reason())
	}
	var std ResponseHeader
	std.CopyFrom(NewResponse(204))
	if string(std.Reason()) != "No Content" {
		t.Fatalf("copy of a standard reason = %q", std.Reason())
	}
}

func TestVersionString(t *testing.T) {
	for v, want := range map[Version]string{HTTP10: "HTTP/1.0", HTTP11: "HTTP/1.1", HTTP2: "HTTP/2", VersionUnknown: "HTTP/?"} {
		if got := v.String(); got != want {
			t.Errorf("%d.String() = %q, want %q", v, got, want)
		}
	}
}

func TestStatusTextCoversCommonCodes(t *testing.T) {
	for _, code := range []int{100, 101, 200, 204, 206, 301, 302, 304, 400, 404, 413, 414, 431, 500, 502, 503, 504, 505} {
		if StatusText(code) == "" {
			t.Errorf("StatusText(%d) is empty", code)
		}
	}
	if StatusText(299) != "" {
		t.Errorf("StatusText(299) = %q, want empty", StatusText(299))
	}
}

func ExampleRequestHeader() {
	req := NewRequest("GET", "/index.html?lang=en")
	req.Append("Host", "example.com")
	req.Append("X-Request-ID", "42")
	req.Set("x-request-id", "43") // keeps the original spelling
	fmt.Print(strings.ReplaceAll(req.String(), "\r\n", "\n"))
	// Output:
	// GET /index.html?lang=en HTTP/1.1
	// Host: example.com
	// X-Request-ID: 43
}

// TestResponseStatusLine: the status code is written in decimal for every value, the common
// three-digit ones and the others a program might set.
func TestResponseStatusLine(t *testing.T) {
	for _, code := range []int{100, 101, 200, 204, 304, 404, 500, 599, 999, 0, 42, 1000, 12345} {
		r := &ResponseHeader{Status: code, Version: HTTP11}
		r.SetReason("R")
		want := "HTTP/1.1 " + strconv.Itoa(code) + " R\r\n\r\n"
		if got := string(r.AppendH1(nil)); got != want {
			t.Errorf("status %d: %q, want %q", code, got, want)
		}
	}
}
