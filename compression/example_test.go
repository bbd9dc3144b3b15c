package compression_test

import (
	"fmt"
	"strings"

	"github.com/pingora-go/pingora/compression"
	"github.com/pingora-go/pingora/header"
)

// A client weighs br out and prefers gzip to zstd; the server's preference only breaks ties.
func ExampleAccept_Negotiate() {
	var f header.Fields
	f.Append("Accept-Encoding", "br;q=0, gzip, zstd;q=0.8")
	a := compression.ParseAccept(&f)
	fmt.Println(a.Negotiate(compression.DefaultCodings))
	// Output: gzip
}

// A Filter rewrites the response head, then codes the body piece by piece.
func ExampleFilter() {
	req := header.NewRequest("GET", "/")
	req.Append("Accept-Encoding", "gzip")
	resp := header.NewResponse(200)
	resp.Append("Content-Type", "text/plain")
	resp.Append("Content-Length", "1024")
	resp.Append("ETag", `"v1"`)

	f := compression.NewFilter(compression.Options{GzipLevel: 9})
	defer f.Release()
	f.ResponseHeader(req, resp, false)
	fmt.Print(strings.ReplaceAll(resp.String(), "\r", ""))

	out, _ := f.ResponseBody(make([]byte, 1024), true)
	fmt.Println(len(out) < 1024)
	// Output:
	// HTTP/1.1 200 OK
	// Content-Type: text/plain
	// ETag: W/"v1"
	// Vary: Accept-Encoding
	// Content-Encoding: gzip
	//
	// true
}
