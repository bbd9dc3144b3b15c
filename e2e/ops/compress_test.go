package ops

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/pingora-go/pingora/internal/testbin"
)

// compressText is the origin's page: text that compresses well, large enough to span many
// upstream reads.
var compressText = func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 200<<10; i++ {
		fmt.Fprintf(&b, "line %d of the page: %s\n", i, strings.Repeat("compressible text ", i%6+1))
	}
	return b.Bytes()
}()

// codings are the codings the proxy produces, with the Go decoder of each.
var codings = []string{"gzip", "br", "zstd"}

// encodeAs codes b with coding, with the libraries' own writers.
func encodeAs(t testing.TB, coding string, b []byte) []byte {
	t.Helper()
	var out bytes.Buffer
	var w io.WriteCloser
	switch coding {
	case "gzip":
		w = gzip.NewWriter(&out)
	case "br":
		w = brotli.NewWriter(&out)
	case "zstd":
		zw, err := zstd.NewWriter(&out)
		if err != nil {
			t.Fatal(err)
		}
		w = zw
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

// decodeAs returns a reader decoding r as coding ("" passes r through).
func decodeAs(t testing.TB, coding string, r io.Reader) io.Reader {
	t.Helper()
	switch coding {
	case "gzip":
		zr, err := gzip.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		return zr
	case "br":
		return brotli.NewReader(r)
	case "zstd":
		// One goroutine decodes synchronously: Close does not wait for a read ahead that an
		// open stream would block.
		zr, err := zstd.NewReader(r, zstd.WithDecoderConcurrency(1))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	return r
}

// compressOrigin serves compressText under any path; ?coded=C serves it coded with C, /events
// is an event stream whose second event waits for release, and /range serves the text with
// byte ranges (206 for a Range request).
func compressOrigin(t *testing.T, release <-chan struct{}) string {
	t.Helper()
	coded := map[string][]byte{}
	for _, c := range codings {
		coded[c] = encodeAs(t, c, compressText)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{ReadHeaderTimeout: waitBound, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.HasSuffix(r.URL.Path, "/events"):
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			io.WriteString(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			select {
			case <-release:
			case <-r.Context().Done():
				return
			}
			io.WriteString(w, "data: second\n\n")
		case strings.HasSuffix(r.URL.Path, "/range"):
			w.Header().Set("Content-Type", "text/plain")
			http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(compressText))
		default:
			w.Header().Set("Content-Type", "text/plain; charset=utf-8")
			w.Header().Set("ETag", `"v1"`)
			body := compressText
			if c := r.URL.Query().Get("coded"); c != "" {
				body = coded[c]
				w.Header().Set("Content-Encoding", c)
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		}
	})}
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	return ln.Addr().String()
}

// rawGet sends a GET with the header pairs hdr through a client that neither asks for nor
// decodes compression by itself.
func rawGet(t *testing.T, url string, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	c := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: waitBound}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { resp.Body.Close() })
	return resp
}

// curlCompressed fetches url with curl --compressed, offering only coding, and returns the
// response head and the body curl decoded. The test is skipped without curl or when curl was
// built without the coding.
func curlCompressed(t *testing.T, coding, url string) (head, body []byte) {
	t.Helper()
	curl, err := exec.LookPath("curl")
	if err != nil {
		t.Skip("curl is not installed")
	}
	version, _ := exec.Command(curl, "-V").Output()
	feature := map[string]string{"gzip": "libz", "br": "brotli", "zstd": "zstd"}[coding]
	if !bytes.Contains(version, []byte(feature)) {
		t.Skipf("curl was built without %s", coding)
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitBound)
	defer cancel()
	var stderr bytes.Buffer
	cmd := exec.CommandContext(ctx, curl, "-sS", "--compressed", "-H", "Accept-Encoding: "+coding, "-D", "/dev/stderr", url)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("curl: %v\n%s", err, stderr.Bytes())
	}
	return stderr.Bytes(), out
}

// checkCodings fetches url with curl --compressed and with a Go client decoding for each
// coding, and checks that each gets that coding and decodes to compressText.
func checkCodings(t *testing.T, url string) {
	for _, coding := range codings {
		t.Run("curl "+coding, func(t *testing.T) {
			head, body := curlCompressed(t, coding, url)
			if !bytes.Contains(bytes.ToLower(head), []byte("content-encoding: "+coding+"\r\n")) {
				t.Errorf("head without Content-Encoding %s:\n%s", coding, head)
			}
			if !bytes.Equal(body, compressText) {
				t.Errorf("curl decoded %d bytes, want %d", len(body), len(compressText))
			}
		})
		t.Run("Go "+coding, func(t *testing.T) {
			resp := rawGet(t, url, "Accept-Encoding", coding)
			if got := resp.Header.Get("Content-Encoding"); got != coding {
				t.Fatalf("Content-Encoding %q, want %q", got, coding)
			}
			if resp.ContentLength != -1 || resp.Header.Get("Vary") != "Accept-Encoding" || resp.Header.Get("ETag") != `W/"v1"` {
				t.Errorf("head: length %d, %v", resp.ContentLength, resp.Header)
			}
			body, err := io.ReadAll(decodeAs(t, coding, resp.Body))
			if err != nil || !bytes.Equal(body, compressText) {
				t.Fatalf("decoded %d bytes, %v", len(body), err)
			}
		})
	}
}

// checkDecompressed fetches url (an upstream response coded with each coding) without
// Accept-Encoding, and checks that the proxy decoded it.
func checkDecompressed(t *testing.T, url string) {
	for _, coding := range codings {
		t.Run("decode "+coding, func(t *testing.T) {
			resp := rawGet(t, url+"?coded="+coding)
			if ce := resp.Header.Get("Content-Encoding"); ce != "" {
				t.Fatalf("Content-Encoding %q for a client without Accept-Encoding", ce)
			}
			body, err := io.ReadAll(resp.Body)
			if err != nil || !bytes.Equal(body, compressText) {
				t.Fatalf("got %d bytes, %v", len(body), err)
			}
		})
	}
}

// TestCompressFlag runs the binary with --compress in quick mode: curl --compressed and a Go
// client get each coding, upstream codings are decoded for clients that do not accept them,
// a 206 answer to a Range request passes untouched, and an event stream is delivered live.
func TestCompressFlag(t *testing.T) {
	bin := testbin.Binary(t)
	release := make(chan struct{})
	released := false
	defer func() {
		if !released {
			close(release)
		}
	}()
	origin := compressOrigin(t, release)
	listen := testbin.FreeAddr(t)
	p := testbin.Start(t, bin, "--listen", listen, "--upstream", origin, "--compress")
	p.WaitLog("listening", listen)
	base := "http://" + listen

	checkCodings(t, base+"/page")
	checkDecompressed(t, base+"/page")

	t.Run("range", func(t *testing.T) {
		resp := rawGet(t, base+"/range", "Accept-Encoding", "gzip, br, zstd", "Range", "bytes=100-199")
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.StatusCode != 206 || resp.Header.Get("Content-Encoding") != "" || !bytes.Equal(body, compressText[100:200]) {
			t.Fatalf("%d %v: %q", resp.StatusCode, resp.Header, body)
		}
	})

	t.Run("no-transform request", func(t *testing.T) {
		resp := rawGet(t, base+"/page?coded=br", "Cache-Control", "no-transform")
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Content-Encoding") != "br" || resp.Header.Get("ETag") != `"v1"` || len(body) == len(compressText) {
			t.Fatalf("the proxy transformed the response: %v, %d bytes", resp.Header, len(body))
		}
	})

	// The first event must decode before the origin sends the second, which it does only
	// once the client has seen the first.
	for _, coding := range codings {
		t.Run("stream "+coding, func(t *testing.T) {
			if released {
				t.Skip("the origin's stream was released by a failed subtest")
			}
			resp := rawGet(t, base+"/events", "Accept-Encoding", coding)
			defer resp.Body.Close() // before the decoder's cleanup: the stream is still open
			if resp.Header.Get("Content-Encoding") != coding {
				t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
			r := bufio.NewReader(decodeAs(t, coding, resp.Body))
			got := make(chan string, 1)
			go func() {
				line, _ := r.ReadString('\n')
				got <- line
			}()
			select {
			case line := <-got:
				if line != "data: first\n" {
					t.Fatalf("first event %q", line)
				}
			case <-time.After(waitBound):
				close(release)
				released = true
				t.Fatal("the first event did not arrive while the origin was still sending")
			}
		})
	}
	close(release)
	released = true
	t.Run("stream completes", func(t *testing.T) {
		resp := rawGet(t, base+"/events", "Accept-Encoding", "zstd")
		body, err := io.ReadAll(decodeAs(t, "zstd", resp.Body))
		if err != nil || string(body) != "data: first\n\ndata: second\n\n" {
			t.Fatalf("%q, %v", body, err)
		}
	})
}

// TestCompressGatewayRoutes runs the binary with a gateway configuration whose routes turn
// compression on and off: the route with `compression: true` compresses and decompresses,
// the other leaves bodies as the origin sent them.
func TestCompressGatewayRoutes(t *testing.T) {
	bin := testbin.Binary(t)
	origin := compressOrigin(t, nil)
	listen := testbin.FreeAddr(t)
	conf := fmt.Sprintf(`version: 1
listeners:
  - address: %s
upstreams:
  origin:
    backends: [%s]
services:
  site:
    routes:
      - name: on
        match: {path_prefix: /on/}
        upstream: origin
        compression: true
      - name: off
        match: {path_prefix: /off/}
        upstream: origin
`, listen, origin)
	cfg := writeConf(t, t.TempDir(), conf)
	if out, err := exec.Command(bin, "-t", "-c", cfg).CombinedOutput(); err != nil {
		t.Fatalf("pingora -t: %v\n%s", err, out)
	}
	p := testbin.Start(t, bin, "-c", cfg)
	t.Cleanup(func() {
		if !p.Stop(syscall.SIGTERM) {
			t.Errorf("pingora did not stop on SIGTERM:\n%s", p.Log())
		}
	})
	p.WaitListening(listen)
	base := "http://" + listen

	checkCodings(t, base+"/on/page")
	checkDecompressed(t, base+"/on/page")

	t.Run("route without compression", func(t *testing.T) {
		resp := rawGet(t, base+"/off/page", "Accept-Encoding", "gzip, br, zstd")
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if resp.Header.Get("Content-Encoding") != "" || resp.Header.Get("Vary") != "" || !bytes.Equal(body, compressText) {
			t.Fatalf("%v, %d bytes", resp.Header, len(body))
		}
		resp = rawGet(t, base+"/off/page?coded=br")
		if resp.Header.Get("Content-Encoding") != "br" {
			t.Fatalf("coded upstream response changed on a route without compression: %v", resp.Header)
		}
	})
}
