package gateway

import (
	"bytes"
	"compress/gzip"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
)

func TestFiles(t *testing.T) {
	dir := t.TempDir()
	www := filepath.Join(dir, "www")
	for name, body := range map[string]string{
		"index.html":          "<h1>home</h1>",
		"app.js":              "console.log(1)",
		"style.css":           "body{}",
		"docs/index.html":     "<h1>docs</h1>",
		"empty/.keep":         "",
		"data/ten.txt":        "0123456789",
		"with space/file.txt": "spaced",
	} {
		p := filepath.Join(www, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "secret.txt"), []byte("secret"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(dir, "secret.txt"), filepath.Join(www, "escape.txt")); err != nil {
		t.Fatal(err)
	}
	listen := testbin.FreeAddr(t)
	path := writeFile(t, dir, expand(`
listeners: [{address: "{{LISTEN}}"}]
services:
  s:
    routes:
      - match: {path_prefix: /static/}
        rewrite: {prefix: /static/, replacement: /}
        files: {root: www, cache_control: "max-age=60"}
        response_headers: {set: {X-Files: "yes"}}
`, map[string]string{"LISTEN": listen}))
	serve(t, path)
	c := testserve.Client(t)
	base := "http://" + listen + "/static"

	resp, body := testserve.Do(t, c, "GET", base+"/app.js")
	if resp.StatusCode != 200 || body != "console.log(1)" || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/javascript") {
		t.Fatalf("%d %q %v", resp.StatusCode, body, resp.Header)
	}
	etag, lm := resp.Header.Get("ETag"), resp.Header.Get("Last-Modified")
	if etag == "" || lm == "" || resp.Header.Get("Cache-Control") != "max-age=60" || resp.Header.Get("X-Files") != "yes" {
		t.Fatalf("headers %v", resp.Header)
	}
	if resp, _ := testserve.Do(t, c, "GET", base+"/style.css"); !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/css") {
		t.Errorf("css type %q", resp.Header.Get("Content-Type"))
	}

	cases := []struct {
		name   string
		method string
		path   string
		hdr    []string
		status int
		body   string
		check  func(t *testing.T, r *http.Response)
	}{
		{"If-None-Match", "GET", "/app.js", []string{"If-None-Match", etag}, 304, "", nil},
		{"If-None-Match other", "GET", "/app.js", []string{"If-None-Match", `"other"`}, 200, "console.log(1)", nil},
		{"If-Modified-Since", "GET", "/app.js", []string{"If-Modified-Since", lm}, 304, "", nil},
		{"If-Modified-Since old", "GET", "/app.js", []string{"If-Modified-Since", time.Unix(0, 0).UTC().Format(http.TimeFormat)}, 200, "console.log(1)", nil},
		{"range", "GET", "/data/ten.txt", []string{"Range", "bytes=2-4"}, 206, "234", func(t *testing.T, r *http.Response) {
			if r.Header.Get("Content-Range") != "bytes 2-4/10" {
				t.Errorf("Content-Range %q", r.Header.Get("Content-Range"))
			}
		}},
		{"suffix range", "GET", "/data/ten.txt", []string{"Range", "bytes=-3"}, 206, "789", nil},
		{"unsatisfiable range", "GET", "/data/ten.txt", []string{"Range", "bytes=20-30"}, 416, "", nil},
		{"If-Range stale", "GET", "/data/ten.txt", []string{"Range", "bytes=0-0", "If-Range", `"stale"`}, 200, "0123456789", nil},
		{"index", "GET", "/", nil, 200, "<h1>home</h1>", nil},
		{"directory index", "GET", "/docs/", nil, 200, "<h1>docs</h1>", nil},
		{"directory without slash", "GET", "/docs", nil, 301, "", func(t *testing.T, r *http.Response) {
			if r.Header.Get("Location") != "/docs/" {
				t.Errorf("Location %q", r.Header.Get("Location"))
			}
		}},
		{"directory without index", "GET", "/empty/", nil, 404, "", nil},
		{"missing", "GET", "/nope.txt", nil, 404, "", nil},
		{"escaped name", "GET", "/with%20space/file.txt", nil, 200, "spaced", nil},
		{"symlink out of root", "GET", "/escape.txt", nil, 404, "", nil},
		{"HEAD", "HEAD", "/data/ten.txt", nil, 200, "", func(t *testing.T, r *http.Response) {
			if r.ContentLength != 10 {
				t.Errorf("Content-Length %d", r.ContentLength)
			}
		}},
		{"POST", "POST", "/app.js", nil, 405, "", func(t *testing.T, r *http.Response) {
			if r.Header.Get("Allow") != "GET, HEAD" {
				t.Errorf("Allow %q", r.Header.Get("Allow"))
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := testserve.Do(t, c, tc.method, base+tc.path, tc.hdr...)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d (%q)", resp.StatusCode, tc.status, body)
			}
			if tc.body != "" && body != tc.body {
				t.Errorf("body %q, want %q", body, tc.body)
			}
			if tc.check != nil {
				tc.check(t, resp)
			}
		})
	}
	// Targets a client library would clean, sent raw: none may leave the root.
	for _, target := range []string{"/static/../secret.txt", "/static/%2e%2e/secret.txt", "/static/..%2fsecret.txt", "/static/%2e%2e%2f%2e%2e%2fetc/passwd", "/static/a%00b"} {
		out := rawGet(t, listen, target)
		if strings.Contains(out, "secret") && !strings.Contains(out, "404") || strings.Contains(out, "root:") || strings.HasPrefix(out, "HTTP/1.1 200") {
			t.Errorf("%s escaped the root:\n%s", target, out)
		}
	}
}

// TestFilesLarge checks a file larger than one chunk arrives whole, with a range inside it.
func TestFilesLarge(t *testing.T) {
	dir := t.TempDir()
	big := make([]byte, 3*fileChunk+123)
	for i := range big {
		big[i] = byte('a' + i%26)
	}
	if err := os.WriteFile(filepath.Join(dir, "big.bin"), big, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := testbin.FreeAddr(t)
	serve(t, writeFile(t, dir, "listeners: [{address: \""+listen+"\"}]\nservices: {s: {routes: [{files: {root: .}}]}}\n"))
	c := testserve.Client(t)
	resp, body := testserve.Do(t, c, "GET", "http://"+listen+"/big.bin")
	if resp.StatusCode != 200 || body != string(big) || resp.Header.Get("Content-Type") != "application/octet-stream" {
		t.Fatalf("%d, %d bytes, %q", resp.StatusCode, len(body), resp.Header.Get("Content-Type"))
	}
	resp, body = testserve.Do(t, c, "GET", "http://"+listen+"/big.bin", "Range", "bytes=65530-65545")
	if resp.StatusCode != 206 || body != string(big[65530:65546]) {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
}

// TestFilesEveryPath serves one file through each way a body can take: sendfile (plain
// HTTP/1.1), the copying path (HTTP/2 cleartext; a compressing route; multipart ranges), and
// checks every byte.
func TestFilesEveryPath(t *testing.T) {
	dir := t.TempDir()
	text := []byte(strings.Repeat("all work and no play makes jack a dull boy\n", 200_000)) // 8.6 MB
	if err := os.WriteFile(filepath.Join(dir, "big.txt"), text, 0o644); err != nil {
		t.Fatal(err)
	}
	listen := testbin.FreeAddr(t)
	conf := "listeners: [{address: \"" + listen + "\", h2c: true}]\nservices: {s: {routes: [\n" +
		"  {match: {path_prefix: /z/}, rewrite: {prefix: /z/, replacement: /}, files: {root: .}, compression: true},\n" +
		"  {files: {root: .}}]}}\n"
	serve(t, writeFile(t, dir, conf))
	base := "http://" + listen
	h1 := testserve.Client(t)
	h2c := &http.Client{Timeout: bound, Transport: &http.Transport{Protocols: h2cOnly()}}
	t.Cleanup(h2c.CloseIdleConnections)
	for _, tc := range []struct {
		name   string
		c      *http.Client
		path   string
		hdr    []string
		status int
		want   []byte
		proto  string
	}{
		{"whole, HTTP/1.1 (sendfile)", h1, "/big.txt", nil, 200, text, "HTTP/1.1"},
		{"range, HTTP/1.1 (sendfile)", h1, "/big.txt", []string{"Range", "bytes=1000000-5000000"}, 206, text[1000000:5000001], "HTTP/1.1"},
		{"whole, h2c (copied)", h2c, "/big.txt", nil, 200, text, "HTTP/2.0"},
		{"range, h2c (copied)", h2c, "/big.txt", []string{"Range", "bytes=7-70000"}, 206, text[7:70001], "HTTP/2.0"},
		{"compressing route, identity accepted (sendfile)", h1, "/z/big.txt", []string{"Accept-Encoding", "identity"}, 200, text, "HTTP/1.1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest("GET", base+tc.path, nil)
			for i := 0; i+1 < len(tc.hdr); i += 2 {
				req.Header.Set(tc.hdr[i], tc.hdr[i+1])
			}
			resp, err := tc.c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, err := io.ReadAll(resp.Body)
			resp.Body.Close()
			if err != nil || resp.StatusCode != tc.status || resp.Proto != tc.proto || !bytes.Equal(body, tc.want) {
				t.Fatalf("%v: %d %s, %d bytes (want %d), equal %v", err, resp.StatusCode, resp.Proto, len(body), len(tc.want), bytes.Equal(body, tc.want))
			}
		})
	}
	t.Run("compressing route, gzip (copied through the module)", func(t *testing.T) {
		req, _ := http.NewRequest("GET", base+"/z/big.txt", nil)
		req.Header.Set("Accept-Encoding", "gzip")
		resp, err := h1.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
		}
		zr, err := gzip.NewReader(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		body, err := io.ReadAll(zr)
		if err != nil || !bytes.Equal(body, text) {
			t.Fatalf("%v, %d bytes", err, len(body))
		}
	})
	t.Run("multipart ranges (copied)", func(t *testing.T) {
		resp, body := testserve.Do(t, h1, "GET", base+"/big.txt", "Range", "bytes=0-9,100-109")
		if resp.StatusCode != 206 || !strings.HasPrefix(resp.Header.Get("Content-Type"), "multipart/byteranges") ||
			!strings.Contains(body, string(text[0:10])) || !strings.Contains(body, string(text[100:110])) {
			t.Fatalf("%d %q", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	})
}

// h2cOnly makes an http.Transport speak HTTP/2 with prior knowledge over cleartext.
func h2cOnly() *http.Protocols {
	var p http.Protocols
	p.SetUnencryptedHTTP2(true)
	return &p
}
