package gateway

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
)

const compressConf = `
listeners:
  - address: {{LISTEN}}
upstreams:
  app:
    backends: [{{A}}]
services:
  web:
    routes:
      - match: {path: /big}
        upstream: app
        compression: {codings: [gzip], gzip_level: 9}
      - match: {path: /short}
        upstream: app
        compression: {min_length: 0}
      - match: {path: /big-json}
        rewrite: {prefix: /big-json, replacement: /big}
        upstream: app
        compression: {types: [application/json]}
      - match: {path: /big-off}
        rewrite: {prefix: /big-off, replacement: /big}
        upstream: app
        compression: {enabled: false, codings: [gzip]}
      - upstream: app
        compression: true
`

func TestCompressionSettings(t *testing.T) {
	a := startOrigin(t, "A")
	listen := testbin.FreeAddr(t)
	path := writeFile(t, t.TempDir(), expand(compressConf, map[string]string{"LISTEN": listen, "A": a.addr}))
	serve(t, path)
	c := testserve.Client(t)
	get := func(p string) (*http.Response, []byte) {
		t.Helper()
		req, _ := http.NewRequest("GET", "http://"+listen+p, nil)
		req.Header.Set("Accept-Encoding", "zstd, br, gzip")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		return resp, b
	}
	want := strings.Repeat("compressible text ", 1000)

	resp, b := get("/big")
	if ce := resp.Header.Get("Content-Encoding"); ce != "gzip" {
		t.Fatalf("codings [gzip]: Content-Encoding %q", ce)
	}
	zr, err := gzip.NewReader(strings.NewReader(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || string(plain) != want {
		t.Fatalf("gzip body: %v, %d bytes", err, len(plain))
	}
	for _, p := range []string{"/big-json", "/big-off"} {
		resp, b := get(p)
		if ce := resp.Header.Get("Content-Encoding"); ce != "" || string(b) != want {
			t.Errorf("%s: Content-Encoding %q, %d bytes", p, ce, len(b))
		}
	}
	// "A /short" has a Content-Length under the default minimum of 20 bytes: min_length 0
	// compresses it anyway, the default route does not.
	if resp, _ := get("/short"); resp.Header.Get("Content-Encoding") != "zstd" {
		t.Errorf("min_length 0: Content-Encoding %q", resp.Header.Get("Content-Encoding"))
	}
	if resp, b := get("/other"); resp.Header.Get("Content-Encoding") != "" || string(b) != "A /other" {
		t.Errorf("short body under the default: %q %q", resp.Header.Get("Content-Encoding"), b)
	}
}

func TestCompressionConfigErrors(t *testing.T) {
	for _, tt := range []struct{ c, want string }{
		{`"on"`, "true, false or a mapping"},
		{`{codings: [deflate]}`, "want zstd, br or gzip"},
		{`{codings: [gzip, gzip]}`, "listed twice"},
		{`{gzip_level: 10}`, "from 1 to 9"},
		{`{br_level: 12}`, "from 1 to 11"},
		{`{zstd_level: 23}`, "from 1 to 22"},
		{`{types: [text]}`, "media type"},
		{`{decompress_limit: 10}`, "at least 1KiB"},
		{`{level: 3}`, "unknown key"},
	} {
		conf := "listeners: [{address: 127.0.0.1:1}]\nservices:\n  web:\n    routes:\n      - respond: {body: x}\n        compression: " + tt.c + "\n"
		_, err := Parse([]byte(conf), "")
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("compression: %s: %v, want %q", tt.c, err, tt.want)
		}
	}
}
