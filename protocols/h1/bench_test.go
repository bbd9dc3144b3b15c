package h1

import (
	"bytes"
	"io"
	"testing"

	"github.com/pingora-go/pingora/header"
)

func BenchmarkParseRequest(b *testing.B) {
	buf := []byte(browserRequest)
	var req header.RequestHeader
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := ParseRequest(buf, &req, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseRequestFraming(b *testing.B) {
	buf := []byte(browserRequest)
	var req header.RequestHeader
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := ParseRequest(buf, &req, nil); err != nil {
			b.Fatal(err)
		}
		if _, err := RequestFraming(&req); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkParseResponse(b *testing.B) {
	buf := []byte(typicalResponse)
	var resp header.ResponseHeader
	b.ReportAllocs()
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := ParseResponse(buf, &resp, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkAppendRequestH1(b *testing.B) {
	var req header.RequestHeader
	if _, err := ParseRequest([]byte(browserRequest), &req, nil); err != nil {
		b.Fatal(err)
	}
	out := make([]byte, 0, 1024)
	b.ReportAllocs()
	b.SetBytes(int64(len(browserRequest)))
	for b.Loop() {
		out = req.AppendH1(out[:0])
	}
}

// BenchmarkChunkedDecode decodes a 64 KiB body sent as 4 KiB chunks.
func BenchmarkChunkedDecode(b *testing.B) {
	piece := bytes.Repeat([]byte("x"), 4096)
	var wire []byte
	for range 16 {
		wire = append(wire, "1000\r\n"...)
		wire = append(wire, piece...)
		wire = append(wire, "\r\n"...)
	}
	wire = append(wire, "0\r\n\r\n"...)
	conn := &memConn{}
	rd := &reader{conn: conn}
	var br bodyReader
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		conn.in = wire
		rd.eof = false
		rd.startMessage()
		br.reset(Framing{Kind: BodyChunked})
		for {
			_, err := br.next(rd, &defaultLimits)
			if err == io.EOF {
				break
			}
			if err != nil {
				b.Fatal(err)
			}
		}
	}
}

func BenchmarkChunkedEncode(b *testing.B) {
	piece := bytes.Repeat([]byte("x"), 4096)
	wr := &writer{conn: &discardConn{}}
	var bw bodyWriter
	b.ReportAllocs()
	b.SetBytes(16 * int64(len(piece)))
	for b.Loop() {
		bw.reset(Framing{Kind: BodyChunked})
		for range 16 {
			if err := bw.write(wr, piece); err != nil {
				b.Fatal(err)
			}
		}
		if err := bw.finish(wr, nil); err != nil {
			b.Fatal(err)
		}
		if err := wr.flush(); err != nil {
			b.Fatal(err)
		}
	}
}

// discardConn is a connection that drops what is written to it.
type discardConn struct{ memConn }

func (*discardConn) Write(p []byte) (int, error) { return len(p), nil }

// BenchmarkServerExchange runs one keep-alive exchange per iteration through a ServerSession:
// read the browser request, write a 2-field response head and a 13-byte body, finish.
func BenchmarkServerExchange(b *testing.B) {
	reqBytes := []byte(browserRequest)
	conn := &memConn{}
	s := NewServerSession(conn, nil)
	resp := header.NewResponse(200)
	body := []byte("hello, world\n")
	b.ReportAllocs()
	b.SetBytes(int64(len(reqBytes)))
	for b.Loop() {
		conn.in = reqBytes
		conn.out.Reset()
		if err := s.ReadRequest(); err != nil {
			b.Fatal(err)
		}
		resp.Reset()
		resp.Status, resp.Version = 200, header.HTTP11
		resp.Append("Content-Type", "text/plain")
		resp.Append("Content-Length", "13")
		if err := s.WriteResponseHeader(resp); err != nil {
			b.Fatal(err)
		}
		if err := s.WriteBody(body); err != nil {
			b.Fatal(err)
		}
		if err := s.FinishResponse(nil); err != nil {
			b.Fatal(err)
		}
		if !s.Finish() {
			b.Fatal("connection not kept alive")
		}
	}
}
