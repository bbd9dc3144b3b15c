package bench

import (
	"bufio"
	"bytes"
	"net/http"
	"testing"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/valyala/fasthttp"
)

// browserRequest is a typical browser request head of about 500 bytes.
const browserRequest = "GET /wiki/Hypertext_Transfer_Protocol?action=view HTTP/1.1\r\n" +
	"Host: en.wikipedia.org\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:132.0) Gecko/20100101 Firefox/132.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\n" +
	"Accept-Encoding: gzip, deflate, br, zstd\r\n" +
	"Referer: https://www.google.com/\r\n" +
	"Connection: keep-alive\r\n" +
	"Cookie: session=9f2c1a7b3e; theme=dark\r\n" +
	"Upgrade-Insecure-Requests: 1\r\n" +
	"Sec-Fetch-Dest: document\r\n" +
	"\r\n"

// typicalResponse is a typical response head of an origin server.
const typicalResponse = "HTTP/1.1 200 OK\r\n" +
	"Date: Mon, 25 Nov 2026 20:00:00 GMT\r\n" +
	"Content-Type: text/html; charset=UTF-8\r\n" +
	"Content-Length: 84211\r\n" +
	"Connection: keep-alive\r\n" +
	"Cache-Control: private, s-maxage=0, max-age=0, must-revalidate\r\n" +
	"Content-Encoding: gzip\r\n" +
	"Vary: Accept-Encoding,Cookie\r\n" +
	"Last-Modified: Sun, 24 Nov 2026 09:12:41 GMT\r\n" +
	"Server: ATS/9.2.5\r\n" +
	"X-Cache: cp3066 miss, cp3066 hit/3\r\n" +
	"\r\n"

// Every parser gets the head the way it would get it from a connection: the bytes are copied
// into its read buffer first (pingora's session buffer, or the bufio.Reader the others read
// from), so each figure includes that copy.

func BenchmarkRequestHead(b *testing.B) {
	src := []byte(browserRequest)
	b.Run("pingora", func(b *testing.B) {
		buf := make([]byte, 4096)
		var req header.RequestHeader
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			n := copy(buf, src)
			if _, err := h1.ParseRequest(buf[:n], &req, nil); err != nil {
				b.Fatal(err)
			}
			if _, err := h1.RequestFraming(&req); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fasthttp", func(b *testing.B) {
		r := bytes.NewReader(src)
		br := bufio.NewReaderSize(r, 4096)
		var h fasthttp.RequestHeader
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			r.Reset(src)
			br.Reset(r)
			if err := h.Read(br); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nethttp", func(b *testing.B) {
		r := bytes.NewReader(src)
		br := bufio.NewReaderSize(r, 4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			r.Reset(src)
			br.Reset(r)
			if _, err := http.ReadRequest(br); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkResponseHead(b *testing.B) {
	src := []byte(typicalResponse)
	b.Run("pingora", func(b *testing.B) {
		buf := make([]byte, 4096)
		var resp header.ResponseHeader
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			n := copy(buf, src)
			if _, err := h1.ParseResponse(buf[:n], &resp, nil); err != nil {
				b.Fatal(err)
			}
			if _, _, err := h1.ResponseFraming(&resp, false, false, false); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("fasthttp", func(b *testing.B) {
		r := bytes.NewReader(src)
		br := bufio.NewReaderSize(r, 4096)
		var h fasthttp.ResponseHeader
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			r.Reset(src)
			br.Reset(r)
			if err := h.Read(br); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("nethttp", func(b *testing.B) {
		r := bytes.NewReader(src)
		br := bufio.NewReaderSize(r, 4096)
		b.ReportAllocs()
		b.SetBytes(int64(len(src)))
		for b.Loop() {
			r.Reset(src)
			br.Reset(r)
			if _, err := http.ReadResponse(br, nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
