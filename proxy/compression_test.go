package proxy_test

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"

	"github.com/pingora-go/pingora/compression"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// page is a text body that compresses well.
var page = func() []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < 150<<10; i++ {
		fmt.Fprintf(&b, "<p id=\"p%d\">paragraph %d of the page, %s</p>\n", i, i, strings.Repeat("words ", i%7+1))
	}
	return b.Bytes()
}()

// encodeWith compresses b with the reference encoders.
func encodeWith(t testing.TB, coding string, b []byte) []byte {
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
	w.Write(b)
	w.Close()
	return out.Bytes()
}

// decoderFor returns a reader decoding r as coding ("" passes r through).
func decoderFor(t testing.TB, coding string, r io.Reader) io.Reader {
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
		zr, err := zstd.NewReader(r)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(zr.Close)
		return zr
	}
	return r
}

var (
	bombOnce sync.Once
	bomb     []byte // 16 MiB of zeros, gzipped
)

// compressionOrigin serves page under /page, page coded with the coding named by ?coded=, a
// gzip bomb under /bomb and a slow event stream under /events.
func compressionOrigin(t testing.TB, release <-chan struct{}) *countingServer {
	bombOnce.Do(func() { bomb = encodeWith(t, "gzip", make([]byte, 16<<20)) })
	return startOrigin(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/page":
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Header().Set("ETag", `"v1"`)
			body := page
			if c := r.URL.Query().Get("coded"); c != "" {
				body = encodeWith(t, c, page)
				w.Header().Set("Content-Encoding", c)
			}
			w.Header().Set("Content-Length", fmt.Sprint(len(body)))
			w.Write(body)
		case "/bomb":
			w.Header().Set("Content-Type", "text/plain")
			w.Header().Set("Content-Encoding", "gzip")
			w.Write(bomb)
		case "/events":
			w.Header().Set("Content-Type", "text/event-stream")
			w.WriteHeader(200)
			fmt.Fprint(w, "data: first\n\n")
			w.(http.Flusher).Flush()
			<-release
			fmt.Fprint(w, "data: second\n\n")
		}
	}))
}

// rawClient does not ask for or decode compression by itself.
func rawClient() *http.Client {
	return &http.Client{Transport: &http.Transport{DisableCompression: true}}
}

func startCompressionProxy(t *testing.T, origin string, o compression.Options) (string, *proxy.CompressionBuilder) {
	b := proxy.NewCompression(o)
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, origin)}}
	app.requestFilter = func(s *proxy.Session) (bool, error) {
		switch string(s.Req().Path()) {
		case "/raw":
			b.For(s).Options().DisableCompression = true
			s.Req().SetTarget("/page")
		case "/local":
			var f header.Fields
			f.Append("Content-Type", "text/html")
			return true, s.Respond(200, &f, page)
		}
		return false, nil
	}
	app.respFilter = nil
	addr, _ := startProxy(t, app, proxy.Options{Modules: []proxy.ModuleBuilder{b}})
	return addr, b
}

func TestCompressionThroughProxy(t *testing.T) {
	release := make(chan struct{})
	close(release)
	origin := compressionOrigin(t, release)
	addr, _ := startCompressionProxy(t, origin.addr, compression.Options{})
	cases := []struct {
		name, method, path, accept string
		wantCoding                 string
		wantVary                   bool
		transformed                bool // the body changed: no Content-Length, weak ETag
	}{
		{"gzip", "GET", "/page", "gzip", "gzip", true, true},
		{"br", "GET", "/page", "br", "br", true, true},
		{"zstd", "GET", "/page", "zstd", "zstd", true, true},
		{"browser", "GET", "/page", "gzip, deflate, br, zstd", "zstd", true, true},
		{"br refused", "GET", "/page", "br;q=0, gzip, zstd;q=0.5", "gzip", true, true},
		{"star", "GET", "/page", "*;q=0.5", "zstd", true, true},
		{"star without zstd", "GET", "/page", "*;q=0.5, zstd;q=0", "br", true, true},
		{"identity refused", "GET", "/page", "identity;q=0, gzip;q=0.2", "gzip", true, true},
		{"identity preferred", "GET", "/page", "identity, gzip;q=0.2", "", true, false},
		{"none", "GET", "/page", "", "", true, false},
		{"gzip upstream kept", "GET", "/page?coded=gzip", "gzip, br", "gzip", true, false},
		{"br upstream decoded", "GET", "/page?coded=br", "", "", true, true},
		{"zstd upstream decoded", "GET", "/page?coded=zstd", "", "", true, true},
		{"gzip upstream to br", "GET", "/page?coded=gzip", "br", "br", true, true},
		{"per-request off", "GET", "/raw", "gzip", "", false, false},
		{"local response", "GET", "/local", "br", "br", true, false},
	}
	client := rawClient()
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, nil)
			if tc.accept != "" {
				req.Header.Set("Accept-Encoding", tc.accept)
			}
			resp, err := client.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if got := resp.Header.Get("Content-Encoding"); got != tc.wantCoding {
				t.Fatalf("Content-Encoding %q, want %q", got, tc.wantCoding)
			}
			if got := strings.Contains(resp.Header.Get("Vary"), "Accept-Encoding"); got != tc.wantVary {
				t.Errorf("Vary %q", resp.Header.Get("Vary"))
			}
			if tc.transformed {
				if resp.ContentLength != -1 || resp.Header.Get("ETag") != `W/"v1"` {
					t.Errorf("Content-Length %d, ETag %q", resp.ContentLength, resp.Header.Get("ETag"))
				}
			}
			body, err := io.ReadAll(decoderFor(t, tc.wantCoding, resp.Body))
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(body, page) {
				t.Fatalf("client decoded %d bytes, want %d", len(body), len(page))
			}
		})
	}
	t.Run("HEAD", func(t *testing.T) {
		req, _ := http.NewRequest("HEAD", "http://"+addr+"/page", nil)
		req.Header.Set("Accept-Encoding", "br")
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.Header.Get("Content-Encoding") != "br" || resp.Header.Get("Content-Length") != "" {
			t.Errorf("HEAD head: %v", resp.Header)
		}
		// The connection must still be usable: the HEAD response carried no body bytes.
		resp, err = client.Get("http://" + addr + "/page")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !bytes.Equal(b, page) {
			t.Errorf("GET after HEAD: %d bytes", len(b))
		}
	})
}

// TestCompressionStreams checks that each coded piece reaches the client while the upstream
// response is still going: the first event is decoded before the origin sends the second.
func TestCompressionStreams(t *testing.T) {
	for _, coding := range []string{"gzip", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			release := make(chan struct{})
			origin := compressionOrigin(t, release)
			addr, _ := startCompressionProxy(t, origin.addr, compression.Options{})
			req, _ := http.NewRequest("GET", "http://"+addr+"/events", nil)
			req.Header.Set("Accept-Encoding", coding)
			resp, err := rawClient().Do(req)
			if err != nil {
				close(release)
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.Header.Get("Content-Encoding") != coding {
				close(release)
				t.Fatalf("Content-Encoding %q", resp.Header.Get("Content-Encoding"))
			}
			r := bufio.NewReader(decoderFor(t, coding, resp.Body))
			line, err := r.ReadString('\n')
			close(release) // only now may the origin finish
			if err != nil || line != "data: first\n" {
				t.Fatalf("first event %q, %v", line, err)
			}
			rest, err := io.ReadAll(r)
			if err != nil || string(rest) != "\ndata: second\n\n" {
				t.Fatalf("rest %q, %v", rest, err)
			}
		})
	}
}

// TestDecompressionBomb checks that a body decoding past the limit is cut off.
func TestDecompressionBomb(t *testing.T) {
	origin := compressionOrigin(t, nil)
	addr, _ := startCompressionProxy(t, origin.addr, compression.Options{DecompressLimit: 1 << 20})
	resp, err := rawClient().Get("http://" + addr + "/bomb")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n > 1<<20 {
		t.Errorf("bomb: read %d bytes, error %v; want an error within 1 MiB", n, err)
	}
}

// TestCompressionCurl fetches each coding with curl --compressed, if curl is there and was
// built with the coding.
func TestCompressionCurl(t *testing.T) {
	curl, err := exec.LookPath("curl")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("curl is not installed; scripts/test.sh installs it")
		}
		t.Skip("no curl")
	}
	version, _ := exec.Command(curl, "-V").Output()
	origin := compressionOrigin(t, nil)
	addr, _ := startCompressionProxy(t, origin.addr, compression.Options{})
	features := map[string]string{"gzip": "libz", "br": "brotli", "zstd": "zstd"}
	for _, coding := range []string{"gzip", "br", "zstd"} {
		t.Run(coding, func(t *testing.T) {
			if !bytes.Contains(version, []byte(features[coding])) {
				t.Skipf("curl without %s", coding)
			}
			out, err := exec.Command(curl, "-sS", "--compressed", "-H", "Accept-Encoding: "+coding,
				"-D", "/dev/stderr", "http://"+addr+"/page").CombinedOutput()
			if err != nil {
				t.Fatalf("curl: %v\n%s", err, out)
			}
			head, body, _ := bytes.Cut(out, []byte("\r\n\r\n"))
			if !bytes.Contains(bytes.ToLower(head), []byte("content-encoding: "+coding)) {
				t.Errorf("head without Content-Encoding %s:\n%s", coding, head)
			}
			if !bytes.Equal(body, page) {
				t.Errorf("curl decoded %d bytes, want %d", len(body), len(page))
			}
		})
	}
}

// downloadsApp proxies to one peer and turns compression off for /download/.
type downloadsApp struct {
	proxy.Defaults[struct{}]
	compress *proxy.CompressionBuilder
	peer     *upstream.Peer
}

func (a *downloadsApp) NewCtx() struct{} { return struct{}{} }

func (a *downloadsApp) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) {
	return a.peer, nil
}

func (a *downloadsApp) RequestFilter(s *proxy.Session, _ *struct{}) (bool, error) {
	if bytes.HasPrefix(s.Req().Path(), []byte("/download/")) {
		a.compress.For(s).Options().DisableCompression = true
	}
	return false, nil
}

// The compression module for every request of a service, with per-coding levels, the
// server's preferred codings, and a per-request override in a phase.
func ExampleNewCompression() {
	compress := proxy.NewCompression(compression.Options{
		Codings:         []compression.Coding{compression.Brotli, compression.Gzip},
		GzipLevel:       5,
		BrotliLevel:     4,
		Types:           []string{"text/*", "application/json", "application/javascript", "image/svg+xml"},
		DecompressLimit: 32 << 20,
	})
	peer, err := upstream.NewPeer("127.0.0.1:8080", false, "")
	if err != nil {
		panic(err)
	}
	app := &downloadsApp{compress: compress, peer: peer}
	svc := proxy.NewService("web", app, proxy.Options{Modules: []proxy.ModuleBuilder{compress}})
	svc.AddTCP("0.0.0.0:6188")
	// Add svc to a server.Server and run it, as in the quick start.
}
