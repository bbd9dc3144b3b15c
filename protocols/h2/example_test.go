package h2_test

import (
	"context"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/h2"
)

// This example serves HTTP/2 with prior knowledge (h2c) on a listener that also takes
// HTTP/1 connections, and sends it one request with a ClientConn.
func Example() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		panic(err)
	}
	defer ln.Close()
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			isH2, peeked, err := h2.DetectPreface(conn, time.Now().Add(10*time.Second))
			if err != nil || !isH2 {
				conn.Close() // an HTTP/1 session would take over PrefixConn(conn, peeked) here
				continue
			}
			sc := h2.NewServerConn(h2.PrefixConn(conn, peeked), nil)
			go sc.Serve(func(s *h2.ServerStream) {
				resp := header.NewResponse(200)
				resp.Append("content-type", "text/plain")
				s.WriteResponseHeader(resp)
				s.WriteBody([]byte("hello " + s.Req.Value("host")))
				var trailers header.Fields
				trailers.Append("grpc-status", "0")
				s.FinishResponse(&trailers)
			})
		}
	}()

	conn, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		panic(err)
	}
	cc, err := h2.NewClientConn(conn, nil)
	if err != nil {
		panic(err)
	}
	defer cc.Close()
	st, err := cc.NewStream(context.Background())
	if err != nil {
		panic(err)
	}
	defer st.Close()
	req := header.NewRequest("GET", "/")
	req.Append("Host", "example.test")
	req.Append("Connection", "keep-alive") // connection-specific: not sent
	if err := st.WriteRequestHeader(req, true); err != nil {
		panic(err)
	}
	if err := st.ReadResponseHeader(); err != nil {
		panic(err)
	}
	var body []byte
	for {
		p, err := st.ReadBody()
		body = append(body, p...)
		if err == io.EOF {
			break
		}
		if err != nil {
			panic(err)
		}
	}
	fmt.Println(st.Resp.Status, st.Resp.Value("content-type"))
	fmt.Println(string(body))
	fmt.Println("grpc-status:", st.Trailers().Value("grpc-status"))
	// Output:
	// 200 text/plain
	// hello example.test
	// grpc-status: 0
}
