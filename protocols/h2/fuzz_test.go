package h2

import (
	"bytes"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

func FuzzMatchPreface(f *testing.F) {
	f.Add([]byte(ClientPreface))
	f.Add([]byte("PRI * HTTP/2.0\r\n"))
	f.Add([]byte("GET / HTTP/1.1\r\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		prefix, full := MatchPreface(b)
		n := min(len(b), len(ClientPreface))
		if prefix != (string(b[:n]) == ClientPreface[:n]) {
			t.Fatalf("prefix %v for %q", prefix, b)
		}
		if full != (prefix && len(b) >= len(ClientPreface)) {
			t.Fatalf("full %v for %q", full, b)
		}
	})
}

func FuzzNormalizeAuthority(f *testing.F) {
	for _, s := range []string{"a:1:2", "a.test:80", "[::1]:8080", "::1", "fe80::1:2", "a::", ":1:2", "h:1:2:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		got := NormalizeAuthority(s)
		if !strings.HasPrefix(s, got) {
			t.Fatalf("%q became %q, not a prefix", s, got)
		}
		if again := NormalizeAuthority(got); again != got {
			t.Fatalf("not idempotent: %q, then %q", got, again)
		}
		if strings.Count(got, ":") > 1 && got != s {
			t.Fatalf("%q kept two colons after trimming: %q", s, got)
		}
	})
}

// frames returns the bytes of frames written by fn.
func frames(fn func(fr *http2.Framer, enc *hpack.Encoder, blk *bytes.Buffer)) []byte {
	var out, blk bytes.Buffer
	fr := http2.NewFramer(&out, nil)
	fn(fr, hpack.NewEncoder(&blk), &blk)
	return out.Bytes()
}

// FuzzServerConn feeds whatever comes after the preface to a ServerConn: it must neither
// panic nor hang, whatever the bytes.
func FuzzServerConn(f *testing.F) {
	request := func(fr *http2.Framer, enc *hpack.Encoder, blk *bytes.Buffer) {
		fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 1})
		for _, kv := range [][2]string{{":method", "POST"}, {":scheme", "http"}, {":path", "/"}, {":authority", "f"}, {"content-length", "3"}} {
			enc.WriteField(hpack.HeaderField{Name: kv[0], Value: kv[1]})
		}
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes(), EndHeaders: true})
		fr.WriteData(1, false, []byte("ab"))
		fr.WriteWindowUpdate(1, 100)
		fr.WriteData(1, true, []byte("c"))
		fr.WritePing(false, [8]byte{1})
		fr.WriteRSTStream(3, http2.ErrCodeCancel)
		fr.WriteGoAway(1, http2.ErrCodeNo, nil)
	}
	f.Add(frames(request))
	f.Add(frames(func(fr *http2.Framer, enc *hpack.Encoder, blk *bytes.Buffer) {
		fr.WriteSettings()
		enc.WriteField(hpack.HeaderField{Name: ":method", Value: "GET"})
		fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: blk.Bytes()})
		fr.WriteContinuation(1, false, []byte{0x82})
		fr.WriteContinuation(1, true, []byte{0x84, 0x86})
		fr.WritePriority(1, http2.PriorityParam{StreamDep: 1})
		fr.WriteData(5, true, nil)
	}))
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, data []byte) {
		cli, srv := net.Pipe()
		sc := NewServerConn(srv, &ServerOptions{MaxConcurrentStreams: 4, IdleTimeout: 5 * time.Second})
		go sc.Serve(echo)
		go io.Copy(io.Discard, cli)
		go func() {
			io.WriteString(cli, ClientPreface)
			cli.Write(data)
			cli.Close()
		}()
		select {
		case <-sc.Done():
		case <-time.After(10 * time.Second):
			t.Fatal("Serve did not return after the client closed")
		}
	})
}

func TestLowerString(t *testing.T) {
	for in, want := range map[string]string{"Content-Type": "content-type", "content-type": "content-type",
		"X-Custom-Header": "x-custom-header", "ETAG": "etag", "": "", "a-very-long-field-name-beyond-32-bytes-X": "a-very-long-field-name-beyond-32-bytes-x"} {
		if got := lowerString([]byte(in)); got != want {
			t.Errorf("lowerString(%q) = %q, want %q", in, got, want)
		}
	}
	b := []byte("Content-Type")
	if n := testing.AllocsPerRun(100, func() { lowerString(b) }); n != 0 {
		t.Errorf("a common name costs %v allocations", n)
	}
}
