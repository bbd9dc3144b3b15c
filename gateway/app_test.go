package gateway

import (
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/internal/testbin"
	"github.com/pingora-go/pingora/internal/testserve"
)

const routesConf = `
version: 1
listeners:
  - address: {{LISTEN}}
access_log: {path: access.log}
upstreams:
  api:
    backends: [{{A}}]
services:
  web:
    routes:
      - name: api
        match: {hosts: [api.example.com, "*.api.example.com"], path_prefix: /v1/}
        upstream: api
        rewrite: {prefix: /v1/, replacement: /}
        request_headers:
          set: {X-Test: "from $client_ip via $host"}
          remove: [X-Secret]
        response_headers:
          add: {X-Gateway: pingora}
          remove: [X-Origin]
      - name: moved
        match: {path_regex: "^/old/"}
        redirect: {status: 308, location: "https://$host/new$path$is_query$query"}
      - name: teapot
        match: {path: /tea, methods: [GET, HEAD]}
        respond: {status: 418, headers: {Content-Type: text/plain}, body: "short and stout, $method\n"}
      - name: canary
        match: {headers: [{name: X-Canary, value: "yes"}]}
        respond: {body: canary}
      - name: private
        match: {path_prefix: /private/}
        basic_auth: {realm: staff, users: {alice: "sha256:{{SHA}}"}}
        upstream: api
      - name: internal
        match: {path_prefix: /internal/}
        allow: [10.0.0.0/8]
        upstream: api
      - name: blocked
        match: {path_prefix: /blocked/}
        deny: [127.0.0.0/8]
        upstream: api
      - name: nows
        match: {path_prefix: /ws}
        websocket: false
        upstream: api
      - name: limited
        match: {path_prefix: /limited}
        rate_limit: {requests: 3, window: 1m}
        upstream: api
        access_log: false
      - name: gz
        match: {path: /big}
        compression: true
        upstream: api
      - name: plain
        match: {path: /big-plain}
        rewrite: {regex: "^/big-plain$", replacement: /big}
        upstream: api
`

func TestRoutes(t *testing.T) {
	a := startOrigin(t, "A")
	dir := t.TempDir()
	sum := sha256.Sum256([]byte("s3cret"))
	listen := testbin.FreeAddr(t)
	path := writeFile(t, dir, expand(routesConf, map[string]string{"LISTEN": listen, "A": a.addr, "SHA": hex.EncodeToString(sum[:])}))
	serve(t, path)
	c := testserve.Client(t)
	base := "http://" + listen

	t.Run("upstream with rewrite and header edits", func(t *testing.T) {
		resp, body := testserve.Do(t, c, "GET", base+"/v1/users?id=7", "Host", "api.example.com", "X-Secret", "x")
		if resp.StatusCode != 200 || body != "A /users?id=7" {
			t.Fatalf("%d %q", resp.StatusCode, body)
		}
		if got := resp.Header.Get("X-Echo"); got != "from 127.0.0.1 via api.example.com" {
			t.Errorf("request header set: %q", got)
		}
		if resp.Header.Get("X-Gateway") != "pingora" || resp.Header.Get("X-Origin") != "" {
			t.Errorf("response edits: %v", resp.Header)
		}
		resp, _ = testserve.Do(t, c, "GET", base+"/v1/x", "Host", "eu.api.example.com:8080")
		if resp.StatusCode != 200 {
			t.Errorf("wildcard host: %d", resp.StatusCode)
		}
	})
	t.Run("no route is 404", func(t *testing.T) {
		resp, _ := testserve.Do(t, c, "GET", base+"/v1/users", "Host", "api.example.org")
		if resp.StatusCode != 404 {
			t.Errorf("%d", resp.StatusCode)
		}
	})
	t.Run("redirect", func(t *testing.T) {
		resp, _ := testserve.Do(t, c, "GET", base+"/old/page?a=1&b=2", "Host", "www.example.com")
		if resp.StatusCode != 308 || resp.Header.Get("Location") != "https://www.example.com/new/old/page?a=1&b=2" {
			t.Errorf("%d %q", resp.StatusCode, resp.Header.Get("Location"))
		}
		resp, _ = testserve.Do(t, c, "GET", base+"/old/", "Host", "www.example.com")
		if resp.Header.Get("Location") != "https://www.example.com/new/old/" {
			t.Errorf("without query: %q", resp.Header.Get("Location"))
		}
	})
	t.Run("static response", func(t *testing.T) {
		resp, body := testserve.Do(t, c, "GET", base+"/tea")
		if resp.StatusCode != 418 || body != "short and stout, GET\n" || resp.Header.Get("Content-Type") != "text/plain" {
			t.Errorf("%d %q %v", resp.StatusCode, body, resp.Header)
		}
		resp, body = testserve.Do(t, c, "HEAD", base+"/tea")
		if resp.StatusCode != 418 || body != "" || resp.ContentLength != int64(len("short and stout, HEAD\n")) {
			t.Errorf("HEAD: %d %q %d", resp.StatusCode, body, resp.ContentLength)
		}
		resp, _ = testserve.Do(t, c, "POST", base+"/tea")
		if resp.StatusCode == 418 {
			t.Error("POST took a GET/HEAD route")
		}
	})
	t.Run("header match", func(t *testing.T) {
		_, body := testserve.Do(t, c, "GET", base+"/anything", "X-Canary", "yes")
		if body != "canary" {
			t.Errorf("%q", body)
		}
	})
	t.Run("basic auth", func(t *testing.T) {
		resp, _ := testserve.Do(t, c, "GET", base+"/private/x")
		if resp.StatusCode != 401 || resp.Header.Get("WWW-Authenticate") != `Basic realm="staff", charset="UTF-8"` {
			t.Errorf("%d %q", resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
		}
		req, _ := http.NewRequest("GET", base+"/private/x", nil)
		req.SetBasicAuth("alice", "wrong")
		if resp, err := c.Do(req); err != nil || resp.StatusCode != 401 {
			t.Errorf("wrong password: %v %v", resp, err)
		} else {
			resp.Body.Close()
		}
		req.SetBasicAuth("alice", "s3cret")
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || string(body) != "A /private/x" {
			t.Errorf("%d %q", resp.StatusCode, body)
		}
	})
	t.Run("cidr", func(t *testing.T) {
		if resp, _ := testserve.Do(t, c, "GET", base+"/internal/x"); resp.StatusCode != 403 {
			t.Errorf("allow: %d", resp.StatusCode)
		}
		if resp, _ := testserve.Do(t, c, "GET", base+"/blocked/x"); resp.StatusCode != 403 {
			t.Errorf("deny: %d", resp.StatusCode)
		}
	})
	t.Run("websocket refused", func(t *testing.T) {
		resp, _ := testserve.Do(t, c, "GET", base+"/ws", "Connection", "Upgrade", "Upgrade", "websocket", "Sec-WebSocket-Version", "13", "Sec-WebSocket-Key", "dGhlIHNhbXBsZSBub25jZQ==")
		if resp.StatusCode != 403 {
			t.Errorf("%d", resp.StatusCode)
		}
		if resp, _ := testserve.Do(t, c, "GET", base+"/ws"); resp.StatusCode != 200 {
			t.Errorf("plain request: %d", resp.StatusCode)
		}
	})
	t.Run("rate limit", func(t *testing.T) {
		for i := range 3 {
			resp, _ := testserve.Do(t, c, "GET", base+"/limited")
			if resp.StatusCode != 200 || resp.Header.Get("RateLimit-Limit") != "3" {
				t.Fatalf("request %d: %d %v", i, resp.StatusCode, resp.Header)
			}
		}
		resp, _ := testserve.Do(t, c, "GET", base+"/limited")
		if resp.StatusCode != 429 || resp.Header.Get("Retry-After") == "" {
			t.Errorf("%d %v", resp.StatusCode, resp.Header)
		}
	})
	t.Run("compression per route", func(t *testing.T) {
		resp, body := testserve.Do(t, c, "GET", base+"/big", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "gzip" {
			t.Fatalf("not compressed: %v", resp.Header)
		}
		zr, err := gzip.NewReader(strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		plain, _ := io.ReadAll(zr)
		if len(plain) != 18000 {
			t.Errorf("decompressed %d bytes", len(plain))
		}
		resp, body = testserve.Do(t, c, "GET", base+"/big-plain", "Accept-Encoding", "gzip")
		if resp.Header.Get("Content-Encoding") != "" || len(body) != 18000 {
			t.Errorf("route without compression: %v, %d bytes", resp.Header, len(body))
		}
	})
	t.Run("access log per route", func(t *testing.T) {
		c.CloseIdleConnections()
		data, err := os.ReadFile(filepath.Join(dir, "access.log"))
		if err != nil {
			t.Fatal(err)
		}
		log := string(data)
		if !strings.Contains(log, `"path":"/tea"`) || !strings.Contains(log, `"status":418`) {
			t.Errorf("access log lacks the /tea request:\n%s", log)
		}
		if strings.Contains(log, "/limited") {
			t.Errorf("access log has a request of a route with access_log: false:\n%s", log)
		}
	})
}
