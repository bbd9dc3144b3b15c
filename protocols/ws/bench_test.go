package ws

import (
	"bytes"
	"io"
	"testing"
)

// repeatReader serves the same bytes forever.
type repeatReader struct {
	b []byte
	i int
}

func (r *repeatReader) Read(p []byte) (int, error) {
	n := copy(p, r.b[r.i:])
	r.i = (r.i + n) % len(r.b)
	return n, nil
}

func benchmarkRead(b *testing.B, size int, c *Config, compress bool) {
	var wire bytes.Buffer
	w := NewWriter(&wire, ClientSide, c)
	msg := bytes.Repeat([]byte("benchmark text "), size/15+1)[:size]
	for range 64 {
		w.WriteMessage(OpText, msg, compress)
	}
	// The wire repeats: compressed messages must not depend on the ones before.
	r := NewReader(&repeatReader{b: wire.Bytes()}, ServerSide, c)
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := r.ReadMessage(); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkReadMasked1K(b *testing.B)  { benchmarkRead(b, 1<<10, &Config{}, false) }
func BenchmarkReadMasked64K(b *testing.B) { benchmarkRead(b, 64<<10, &Config{}, false) }
func BenchmarkReadDeflate1K(b *testing.B) {
	benchmarkRead(b, 1<<10, &Config{Deflate: &DeflateParams{ClientNoContextTakeover: true}}, true)
}

func benchmarkWrite(b *testing.B, role Role, size int, c *Config, compress bool) {
	w := NewWriter(io.Discard, role, c)
	msg := bytes.Repeat([]byte("benchmark text "), size/15+1)[:size]
	b.SetBytes(int64(size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if err := w.WriteMessage(OpText, msg, compress); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkWriteServer1K(b *testing.B)  { benchmarkWrite(b, ServerSide, 1<<10, nil, false) }
func BenchmarkWriteClient1K(b *testing.B)  { benchmarkWrite(b, ClientSide, 1<<10, nil, false) }
func BenchmarkWriteClient64K(b *testing.B) { benchmarkWrite(b, ClientSide, 64<<10, nil, false) }
func BenchmarkWriteDeflate1K(b *testing.B) {
	benchmarkWrite(b, ServerSide, 1<<10, &Config{Deflate: &DeflateParams{}}, true)
}
func BenchmarkWriteDeflateNoContext1K(b *testing.B) {
	benchmarkWrite(b, ServerSide, 1<<10, &Config{Deflate: &DeflateParams{ServerNoContextTakeover: true}}, true)
}
