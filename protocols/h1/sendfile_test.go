package h1

import (
	"bufio"
	"bytes"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/pingora-go/pingora/header"
)

// sendFileCheck wraps a connection and records what ReadFrom was handed.
type sendFileCheck struct {
	net.Conn
	rf     io.ReaderFrom
	ofFile int // ReadFrom calls with an *io.LimitedReader of an *os.File: what sendfile takes
}

func (c *sendFileCheck) ReadFrom(r io.Reader) (int64, error) {
	if lr, ok := r.(*io.LimitedReader); ok {
		if _, ok := lr.R.(*os.File); ok {
			c.ofFile++
		}
	}
	return c.rf.ReadFrom(r)
}

func TestSendFile(t *testing.T) {
	data := make([]byte, 9<<20+123) // more than two sendfile chunks
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	path := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()

	tests := []struct {
		name     string
		chunked  bool
		wrap     bool // a connection without ReadFrom: the copying path
		from, to int64
	}{
		{name: "whole file by sendfile", from: 0, to: int64(len(data))},
		{name: "a range by sendfile", from: 1000, to: 5<<20 + 7},
		{name: "chunked response copies", chunked: true, from: 10, to: 300_000},
		{name: "connection without ReadFrom copies", wrap: true, from: 0, to: 1 << 20},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var check *sendFileCheck
			c, done := startServerWith(t, func(conn net.Conn) net.Conn {
				if tt.wrap {
					return struct{ net.Conn }{conn}
				}
				check = &sendFileCheck{Conn: conn, rf: conn.(io.ReaderFrom)}
				return check
			}, func(t *testing.T, s *ServerSession) {
				resp := header.NewResponse(200)
				n := tt.to - tt.from
				if !tt.chunked {
					resp.Set("Content-Length", strconv.FormatInt(n, 10))
				}
				if err := s.WriteResponseHeader(resp); err != nil {
					t.Error(err)
					return
				}
				if got, want := s.CanSendFile(), !tt.chunked && !tt.wrap; got != want {
					t.Errorf("CanSendFile %v, want %v", got, want)
				}
				// Two calls, as a multi-piece body would make them.
				half := n / 2
				if k, err := s.SendFile(f, tt.from, half); err != nil || k != half {
					t.Errorf("first SendFile: %d %v", k, err)
				}
				if k, err := s.SendFile(f, tt.from+half, n-half); err != nil || k != n-half {
					t.Errorf("second SendFile: %d %v", k, err)
				}
				if !tt.chunked {
					if _, err := s.SendFile(f, 0, 1); err == nil {
						t.Error("a byte past Content-Length was accepted")
					}
				}
				if err := s.FinishResponse(nil); err != nil {
					t.Error(err)
				}
			})
			io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
			resp, body := readResp(t, bufio.NewReader(c), "GET")
			if resp.StatusCode != 200 || !bytes.Equal([]byte(body), data[tt.from:tt.to]) {
				t.Fatalf("status %d, %d bytes, equal %v", resp.StatusCode, len(body), bytes.Equal([]byte(body), data[tt.from:tt.to]))
			}
			wait(t, done)
			n := tt.to - tt.from
			chunks := func(k int64) int { return int((k + sendFileChunk - 1) / sendFileChunk) }
			if want := chunks(n/2) + chunks(n-n/2); check != nil && !tt.chunked && check.ofFile != want {
				t.Errorf("ReadFrom got a file %d times, want %d (one per 4 MiB chunk)", check.ofFile, want)
			}
			if check != nil && tt.chunked && check.ofFile != 0 {
				t.Errorf("a chunked body went to ReadFrom %d times", check.ofFile)
			}
		})
	}
}
