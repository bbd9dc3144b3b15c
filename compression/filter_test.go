package compression

import (
	"bytes"
	"errors"
	"strconv"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/header"
)

// kv builds fields from "Name: value" lines.
func kv(lines ...string) []string { return lines }

func newResp(status int, lines []string) *header.ResponseHeader {
	r := header.NewResponse(status)
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		r.Append(name, value)
	}
	return r
}

func newReq(method string, lines []string) *header.RequestHeader {
	r := header.NewRequest(method, "/")
	for _, l := range lines {
		name, value, _ := strings.Cut(l, ": ")
		r.Append(name, value)
	}
	return r
}

func TestFilterDecisions(t *testing.T) {
	html := "Content-Type: text/html; charset=utf-8"
	cases := []struct {
		name    string
		method  string
		req     []string
		status  int
		resp    []string
		opts    Options
		eos     bool
		decoded Coding
		encoded Coding
		// want lists fields expected after the filter ("Name: value", or "Name:" for
		// absent).
		want []string
	}{
		{"gzip for a gzip client", "GET", kv("Accept-Encoding: gzip"), 200,
			kv(html, "Content-Length: 5000", "ETag: \"abc\"", "Accept-Ranges: bytes"), Options{}, false,
			Identity, Gzip, kv("Content-Encoding: gzip", "Content-Length:", "Accept-Ranges:", "ETag: W/\"abc\"", "Vary: Accept-Encoding")},
		{"server order among equals", "GET", kv("Accept-Encoding: gzip, br, zstd"), 200, kv(html), Options{}, false,
			Identity, Zstd, kv("Content-Encoding: zstd")},
		{"server order configured", "GET", kv("Accept-Encoding: gzip, br, zstd"), 200, kv(html),
			Options{Codings: []Coding{Brotli, Gzip}}, false, Identity, Brotli, kv("Content-Encoding: br")},
		{"no Accept-Encoding", "GET", nil, 200, kv(html, "Content-Length: 5000"), Options{}, false,
			Identity, Identity, kv("Content-Encoding:", "Content-Length: 5000", "Vary: Accept-Encoding")},
		{"too short", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Content-Length: 19"), Options{}, false,
			Identity, Identity, kv("Content-Encoding:", "Content-Length: 19", "Vary:")},
		{"short but identity refused", "GET", kv("Accept-Encoding: gzip, identity;q=0"), 200, kv(html, "Content-Length: 5"), Options{}, false,
			Identity, Gzip, kv("Content-Encoding: gzip")},
		{"MinLength", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Content-Length: 500"), Options{MinLength: 1000}, false,
			Identity, Identity, kv("Content-Length: 500")},
		{"not compressible", "GET", kv("Accept-Encoding: gzip"), 200, kv("Content-Type: image/png"), Options{}, false,
			Identity, Identity, kv("Content-Encoding:", "Vary:")},
		{"zip excluded", "GET", kv("Accept-Encoding: gzip"), 200, kv("Content-Type: application/zip"), Options{}, false,
			Identity, Identity, kv("Content-Encoding:")},
		{"no type", "GET", kv("Accept-Encoding: gzip"), 200, nil, Options{}, false, Identity, Identity, kv("Content-Encoding:")},
		{"custom types", "GET", kv("Accept-Encoding: gzip"), 200, kv("Content-Type: image/png"),
			Options{Types: []string{"image/*"}}, false, Identity, Gzip, kv("Content-Encoding: gzip")},
		{"already encoded and accepted", "GET", kv("Accept-Encoding: gzip"), 200,
			kv(html, "Content-Encoding: gzip", "Content-Length: 50"), Options{}, false,
			Identity, Identity, kv("Content-Encoding: gzip", "Content-Length: 50", "Vary: Accept-Encoding")},
		{"decompress for identity client", "GET", nil, 200,
			kv(html, "Content-Encoding: br", "Content-Length: 50", "ETag: \"x\""), Options{}, false,
			Brotli, Identity, kv("Content-Encoding:", "Content-Length:", "ETag: W/\"x\"")},
		{"transcode", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Content-Encoding: zstd"), Options{}, false,
			Zstd, Gzip, kv("Content-Encoding: gzip")},
		{"decompression off", "GET", nil, 200, kv(html, "Content-Encoding: br"), Options{DisableDecompression: true}, false,
			Identity, Identity, kv("Content-Encoding: br", "Vary:")},
		{"compression off still decompresses", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Content-Encoding: br"),
			Options{DisableCompression: true}, false, Brotli, Identity, kv("Content-Encoding:")},
		{"unknown upstream coding", "GET", nil, 200, kv(html, "Content-Encoding: deflate"), Options{}, false,
			Identity, Identity, kv("Content-Encoding: deflate")},
		{"two upstream codings", "GET", nil, 200, kv(html, "Content-Encoding: gzip, br"), Options{}, false,
			Identity, Identity, kv("Content-Encoding: gzip, br")},
		{"partial", "GET", kv("Accept-Encoding: gzip"), 206, kv(html, "Content-Range: bytes 0-9/100"), Options{}, false,
			Identity, Identity, kv("Content-Encoding:")},
		{"Content-Range on 200", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Content-Range: bytes 0-9/100"), Options{}, false,
			Identity, Identity, kv("Content-Encoding:")},
		{"Range request answered 206", "GET", kv("Accept-Encoding: gzip", "Range: bytes=0-9"), 206,
			kv(html, "Content-Range: bytes 0-9/5000", "Content-Length: 10", "ETag: \"r\""), Options{}, false,
			Identity, Identity, kv("Content-Encoding:", "Content-Length: 10", "ETag: \"r\"", "Vary:")},
		{"Range request answered 206, coded upstream", "GET", kv("Range: bytes=0-9"), 206,
			kv(html, "Content-Encoding: gzip", "Content-Range: bytes 0-9/50"), Options{}, false,
			Identity, Identity, kv("Content-Encoding: gzip", "Content-Range: bytes 0-9/50")},
		{"Range request answered 200 in full", "GET", kv("Accept-Encoding: br", "Range: bytes=0-9"), 200,
			kv(html, "Content-Length: 5000", "Accept-Ranges: bytes"), Options{}, false,
			Identity, Brotli, kv("Content-Encoding: br", "Content-Length:", "Accept-Ranges:")},
		{"416", "GET", kv("Accept-Encoding: gzip", "Range: bytes=9000-"), 416,
			kv(html, "Content-Range: bytes */5000"), Options{}, false, Identity, Identity, kv("Content-Encoding:")},
		{"request no-transform", "GET", kv("Accept-Encoding: gzip", "Cache-Control: no-cache, no-transform"), 200,
			kv(html, "Content-Length: 5000"), Options{}, false, Identity, Identity, kv("Content-Encoding:", "Content-Length: 5000")},
		{"request no-transform keeps the upstream coding", "GET", kv("Cache-Control: no-transform"), 200,
			kv(html, "Content-Encoding: br"), Options{}, false, Identity, Identity, kv("Content-Encoding: br")},
		{"204", "GET", kv("Accept-Encoding: gzip"), 204, kv(html), Options{}, false, Identity, Identity, kv("Content-Encoding:", "Vary:")},
		{"304", "GET", kv("Accept-Encoding: gzip"), 304, kv(html, "ETag: \"a\""), Options{}, false,
			Identity, Identity, kv("ETag: \"a\"")},
		{"interim", "GET", kv("Accept-Encoding: gzip"), 103, kv(html), Options{}, false, Identity, Identity, kv("Content-Encoding:")},
		{"no body", "GET", kv("Accept-Encoding: gzip"), 200, kv(html), Options{}, true, Identity, Identity, kv("Content-Encoding:")},
		{"no-transform", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Cache-Control: public, no-transform"), Options{}, false,
			Identity, Identity, kv("Content-Encoding:")},
		{"HEAD gets GET's head", "HEAD", kv("Accept-Encoding: br"), 200, kv(html, "Content-Length: 5000"), Options{}, false,
			Identity, Brotli, kv("Content-Encoding: br", "Content-Length:")},
		{"Vary kept single", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Vary: Origin, accept-encoding"), Options{}, false,
			Identity, Gzip, kv("Vary: Origin, accept-encoding")},
		{"Vary star", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Vary: *"), Options{}, false,
			Identity, Gzip, kv("Vary: *")},
		{"Vary added", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "Vary: Origin"), Options{}, false,
			Identity, Gzip, kv("Vary: Origin, Accept-Encoding")},
		{"weak ETag kept", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "ETag: W/\"a\""), Options{}, false,
			Identity, Gzip, kv("ETag: W/\"a\"")},
		{"unquoted ETag removed", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "ETag: abc"), Options{}, false,
			Identity, Gzip, kv("ETag:")},
		{"PreserveETag", "GET", kv("Accept-Encoding: gzip"), 200, kv(html, "ETag: \"a\""), Options{PreserveETag: true}, false,
			Identity, Gzip, kv("ETag: \"a\"")},
		{"q-values", "GET", kv("Accept-Encoding: br;q=0, *;q=0.5"), 200, kv(html), Options{Codings: []Coding{Brotli, Gzip}}, false,
			Identity, Gzip, kv("Content-Encoding: gzip")},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			f := NewFilter(tc.opts)
			defer f.Release()
			resp := newResp(tc.status, tc.resp)
			f.ResponseHeader(newReq(tc.method, tc.req), resp, tc.eos)
			if info := f.Info(); info.Decoded != tc.decoded || info.Encoded != tc.encoded {
				t.Errorf("decoded %v, encoded %v; want %v, %v", info.Decoded, info.Encoded, tc.decoded, tc.encoded)
			}
			for _, w := range tc.want {
				name, value, _ := strings.Cut(w, ":")
				value = strings.TrimSpace(value)
				var got []string
				resp.Values(name, func(v []byte) bool { got = append(got, string(v)); return true })
				joined := strings.Join(got, ", ")
				if value == "" && len(got) > 0 || value != "" && joined != value {
					t.Errorf("%s = %q, want %q\n%s", name, joined, value, resp)
				}
			}
			if tc.method == "HEAD" {
				if out, err := f.ResponseBody(nil, true); err != nil || len(out) != 0 {
					t.Errorf("HEAD body %q, %v", out, err)
				}
			}
		})
	}
}

// TestFilterBody runs bodies through the filter and decodes what it sends.
func TestFilterBody(t *testing.T) {
	body := corpus(100 << 10)
	for _, up := range []Coding{Identity, Gzip, Brotli, Zstd} {
		for _, client := range []Coding{Identity, Gzip, Brotli, Zstd} {
			t.Run(up.String()+"->"+client.String(), func(t *testing.T) {
				input := body
				lines := kv("Content-Type: text/plain", "Content-Length: "+strconv.Itoa(len(body)))
				if up != Identity {
					input = encodeAll(t, up, body)
					lines = append(lines, "Content-Encoding: "+up.String())
				}
				var reqLines []string
				if client != Identity {
					reqLines = kv("Accept-Encoding: " + client.String())
				}
				var f Filter
				resp := newResp(200, lines)
				f.ResponseHeader(newReq("GET", reqLines), resp, false)
				var sent []byte
				pieces := split(input, 3000, 17, 40000)
				for i, p := range pieces {
					out, err := f.ResponseBody(p, i == len(pieces)-1)
					if err != nil {
						t.Fatal(err)
					}
					sent = append(sent, out...)
				}
				f.Release()
				if got := resp.Value("Content-Encoding"); got != strings.TrimPrefix(client.String(), "identity") {
					t.Fatalf("Content-Encoding %q for a %v client", got, client)
				}
				if client != Identity {
					sent = referenceDecode(t, client, sent)
				}
				if !bytes.Equal(sent, body) {
					t.Fatalf("client got %d bytes, want %d", len(sent), len(body))
				}
				if info := f.Info(); up != client && info.BytesIn != int64(len(input)) {
					t.Errorf("BytesIn %d, want %d", info.BytesIn, len(input))
				}
			})
		}
	}
}

// TestFilterPassThrough checks that a response the filter leaves alone keeps its pieces.
func TestFilterPassThrough(t *testing.T) {
	var f Filter
	f.ResponseHeader(newReq("GET", nil), newResp(200, kv("Content-Type: text/plain")), false)
	p := []byte("unchanged")
	out, err := f.ResponseBody(p, true)
	if err != nil || &out[0] != &p[0] {
		t.Errorf("pass-through copied or failed: %v", err)
	}
}

func TestFilterBomb(t *testing.T) {
	bomb := encodeAll(t, Gzip, make([]byte, 4<<20))
	f := NewFilter(Options{DecompressLimit: 1 << 20})
	defer f.Release()
	f.ResponseHeader(newReq("GET", nil), newResp(200, kv("Content-Type: text/plain", "Content-Encoding: gzip")), false)
	var total int
	var err error
	for _, p := range split(bomb, 1024) {
		var out []byte
		if out, err = f.ResponseBody(p, false); err != nil {
			break
		}
		total += len(out)
	}
	if !errors.Is(err, ErrTooLarge) || total > 1<<20 {
		t.Errorf("bomb: %d bytes out, error %v", total, err)
	}
	if out, err := f.ResponseBody([]byte("more"), true); !errors.Is(err, ErrTooLarge) || len(out) > 0 {
		t.Errorf("after the error: %q, %v", out, err)
	}
}

func TestCompressible(t *testing.T) {
	cases := []struct {
		ct   string
		want bool
	}{
		{"text/html", true}, {"TEXT/CSS; charset=utf-8", true}, {"application/json", true},
		{"application/javascript", true}, {"image/svg+xml", true}, {"font/woff2", true},
		{"image/png", false}, {"video/mp4", false}, {"application/gzip", false},
		{"application/x-bzip2", false}, {"application/zstd", false}, {"text", false}, {"", false},
	}
	var o Options
	for _, tc := range cases {
		if got := o.Compressible(newResp(200, kv("Content-Type: "+tc.ct)), true); got != tc.want {
			t.Errorf("Compressible(%q) = %v, want %v", tc.ct, got, tc.want)
		}
	}
}

// FuzzFilter runs arbitrary heads and bodies through the filter and checks what a client
// relies on: the head names the coding the body is in, a changed body has no Content-Length
// and says it varies on Accept-Encoding, the coding chosen is one the client accepts, and the
// body the client decodes is the origin's.
func FuzzFilter(f *testing.F) {
	f.Add("gzip, br;q=0.5", "text/html", uint8(0), uint8(0), []byte("<p>hello, hello, hello</p>"), uint16(7))
	f.Add("br;q=0, *;q=0.5", "application/json", uint8(1), uint8(0), []byte(`{"a":"aaaaaaaaaaaaaaaaaaaaaaa"}`), uint16(3))
	f.Add("", "text/plain", uint8(3), uint8(1), []byte("decode me for an identity client"), uint16(100))
	f.Add("identity;q=0", "text/css", uint8(0), uint8(2), []byte("a{}"), uint16(1))
	f.Add("zstd;q=0.001, gzip;q=0.000", "image/svg+xml", uint8(2), uint8(3), []byte("<svg/>"), uint16(2))
	f.Fuzz(func(t *testing.T, accept, ctype string, upstream, variant uint8, body []byte, pieceSize uint16) {
		up := Coding(upstream % uint8(numCodings))
		if strings.ContainsAny(accept+ctype, "\r\n\x00") {
			return // not a field value a parsed request can carry
		}
		input := body
		lines := kv("Content-Type: " + ctype)
		if up != Identity {
			input = encodeAll(t, up, body)
			lines = append(lines, "Content-Encoding: "+up.String())
		}
		if variant&1 != 0 {
			lines = append(lines, "Content-Length: "+strconv.Itoa(len(input)))
		}
		if variant&2 != 0 {
			lines = append(lines, "ETag: \"e\"", "Vary: Origin")
		}
		method := "GET"
		if variant&4 != 0 {
			method = "HEAD"
		}
		req := newReq(method, kv("Accept-Encoding: "+accept))
		resp := newResp(200, lines)
		flt := NewFilter(Options{DecompressLimit: 1 << 20})
		defer flt.Release()
		flt.ResponseHeader(req, resp, false)
		info := flt.Info()

		sentCoding, ok := contentCoding(resp)
		if !ok {
			t.Fatalf("Content-Encoding %q after the filter", resp.Value("Content-Encoding"))
		}
		a := ParseAccept(&req.Fields)
		if info.Decoded != Identity || info.Encoded != Identity {
			if info.Decoded != up || sentCoding != info.Encoded {
				t.Fatalf("upstream %v, sent as %v; Info %+v", up, sentCoding, info)
			}
			if resp.Has("Content-Length") || resp.Has("Accept-Ranges") {
				t.Fatalf("changed body keeps its length: %s", resp)
			}
			if !resp.HasToken("Vary", "Accept-Encoding") {
				t.Fatalf("no Vary: %s", resp)
			}
			if v := resp.Value("ETag"); v != "" && !strings.HasPrefix(v, "W/") {
				t.Fatalf("strong ETag %q on a changed body", v)
			}
		} else if sentCoding != up {
			t.Fatalf("untouched response changed coding: %v to %v", up, sentCoding)
		}
		if info.Encoded != Identity && !a.Accepts(info.Encoded) {
			t.Fatalf("sent %v, which %q does not accept", info.Encoded, accept)
		}

		var sent []byte
		pieces := split(input, int(pieceSize)+1)
		if len(pieces) == 0 {
			pieces = [][]byte{nil}
		}
		for i, p := range pieces {
			if method == "HEAD" {
				p = nil
			}
			out, err := flt.ResponseBody(p, i == len(pieces)-1)
			if err != nil {
				t.Fatalf("piece %d: %v", i, err)
			}
			sent = append(sent, out...)
		}
		if method == "HEAD" {
			if len(sent) > 0 {
				t.Fatalf("HEAD got %d body bytes", len(sent))
			}
			return
		}
		if sentCoding != Identity {
			sent = referenceDecode(t, sentCoding, sent)
		}
		if !bytes.Equal(sent, body) {
			t.Fatalf("client decoded %d bytes, want %d", len(sent), len(body))
		}
	})
}
