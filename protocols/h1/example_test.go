package h1_test

import (
	"fmt"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
)

func ExampleParseRequest() {
	buf := []byte("POST /submit HTTP/1.1\r\nHost: example.com\r\nX-Trace: on\r\nContent-Length: 5\r\n\r\nhello")
	var req header.RequestHeader
	n, err := h1.ParseRequest(buf, &req, nil)
	if err != nil {
		fmt.Println("status", perr.StatusFor(err))
		return
	}
	framing, err := h1.RequestFraming(&req)
	if err != nil {
		fmt.Println("status", perr.StatusFor(err))
		return
	}
	fmt.Printf("%s %s, %d fields, body: %v of %d bytes at %q\n",
		req.Method(), req.Target(), req.Len(), framing.Kind, framing.Length, buf[n:])
	// Output: POST /submit, 3 fields, body: content-length of 5 bytes at "hello"
}

func ExampleRequestFraming_smuggling() {
	buf := []byte("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n")
	var req header.RequestHeader
	if _, err := h1.ParseRequest(buf, &req, nil); err != nil {
		fmt.Println(err)
		return
	}
	_, err := h1.RequestFraming(&req)
	fmt.Println("status", perr.StatusFor(err))
	// Output: status 400
}
