package h2

import (
	"context"
	"io"
	"testing"

	"github.com/pingora-go/pingora/header"
)

// small answers every request with a 2-byte body.
func small(s *ServerStream) {
	for {
		if _, err := s.ReadBody(); err != nil {
			break
		}
	}
	resp := header.NewResponse(200)
	resp.Append("content-type", "text/plain")
	s.WriteResponseHeader(resp)
	s.WriteBody([]byte("ok"))
	s.FinishResponse(nil)
}

func benchExchange(b *testing.B, cc *ClientConn, req *header.RequestHeader, body []byte) {
	st, err := cc.NewStream(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	if err := st.WriteRequestHeader(req, body == nil); err != nil {
		b.Fatal(err)
	}
	if body != nil {
		if err := st.WriteBody(body); err != nil {
			b.Fatal(err)
		}
		if err := st.FinishRequest(nil); err != nil {
			b.Fatal(err)
		}
	}
	if err := st.ReadResponseHeader(); err != nil {
		b.Fatal(err)
	}
	for {
		_, err := st.ReadBody()
		if err == io.EOF {
			return
		}
		if err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip is one GET at a time, this package's client to its server over loopback
// (both sides' allocations count).
func BenchmarkRoundTrip(b *testing.B) {
	cc := dial(b, serve(b, nil, nil, nil, small), nil, nil)
	req := header.NewRequest("GET", "/bench")
	req.Append("Host", "bench.test")
	req.Append("Accept", "*/*")
	b.ReportAllocs()
	for b.Loop() {
		benchExchange(b, cc, req, nil)
	}
}

// BenchmarkRoundTripParallel multiplexes concurrent GETs over one connection.
func BenchmarkRoundTripParallel(b *testing.B) {
	cc := dial(b, serve(b, nil, nil, nil, small), nil, &ClientOptions{MaxConcurrentStreams: 1000})
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := header.NewRequest("GET", "/bench")
		req.Append("Host", "bench.test")
		for pb.Next() {
			benchExchange(b, cc, req, nil)
		}
	})
}

// BenchmarkUpload sends a 1 MiB request body per request.
func BenchmarkUpload(b *testing.B) {
	cc := dial(b, serve(b, nil, nil, nil, small), nil, nil)
	req := header.NewRequest("POST", "/up")
	req.Append("Host", "bench.test")
	body := make([]byte, 1<<20)
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		benchExchange(b, cc, req, body)
	}
}

// BenchmarkDownload reads a 1 MiB response body per request.
func BenchmarkDownload(b *testing.B) {
	chunk := make([]byte, 16<<10)
	addr := serve(b, nil, nil, nil, func(s *ServerStream) {
		s.WriteResponseHeader(header.NewResponse(200))
		for range 64 {
			s.WriteBody(chunk)
		}
		s.FinishResponse(nil)
	})
	cc := dial(b, addr, nil, nil)
	req := header.NewRequest("GET", "/down")
	b.SetBytes(64 * int64(len(chunk)))
	b.ReportAllocs()
	for b.Loop() {
		benchExchange(b, cc, req, nil)
	}
}
