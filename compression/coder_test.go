package compression

import (
	"bytes"
	stdgzip "compress/gzip"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"sync"
	"testing"

	"github.com/andybalholm/brotli"
	"github.com/klauspost/compress/zstd"
)

var allCodings = []Coding{Gzip, Brotli, Zstd}

// corpus returns n bytes of text that compresses the way web pages do.
func corpus(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "<li class=\"item-%d\">Entry %d: %s</li>\n", i%17, i, strings.Repeat("lorem ipsum ", i%5+1))
	}
	return b.Bytes()[:n]
}

// referenceDecode decodes with a decoder other than the package's.
func referenceDecode(t testing.TB, c Coding, data []byte) []byte {
	t.Helper()
	var r io.Reader
	switch c {
	case Gzip:
		zr, err := stdgzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	case Brotli:
		r = brotli.NewReader(bytes.NewReader(data))
	case Zstd:
		zr, err := zstd.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		defer zr.Close()
		r = zr
	}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("%v: reference decoder: %v", c, err)
	}
	return out
}

// split cuts b into pieces of the given sizes, cycling.
func split(b []byte, sizes ...int) [][]byte {
	var out [][]byte
	for i := 0; len(b) > 0; i++ {
		n := min(sizes[i%len(sizes)], len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func TestEncoderRoundTrip(t *testing.T) {
	body := corpus(32 << 10)
	for _, c := range allCodings {
		for _, level := range []int{0, 1, 100} {
			t.Run(fmt.Sprintf("%v/%d", c, level), func(t *testing.T) {
				for range 2 { // the second round uses the pooled encoder
					e := NewEncoder(c, level)
					var out []byte
					var err error
					for _, p := range split(body, 1, 4000, 0, 65536) {
						if out, err = e.Encode(out, p, false); err != nil {
							t.Fatal(err)
						}
					}
					if out, err = e.Encode(out, nil, true); err != nil {
						t.Fatal(err)
					}
					e.Release()
					if got := referenceDecode(t, c, out); !bytes.Equal(got, body) {
						t.Fatalf("decoded %d bytes, want %d", len(got), len(body))
					}
					if len(out) >= len(body)/2 {
						t.Errorf("%d bytes compressed to %d", len(body), len(out))
					}
				}
			})
		}
	}
}

// TestStreamingPieceByPiece checks that every piece the encoder emits decodes, on its own and
// at once, to the piece that went in: what keeps server-sent events live.
func TestStreamingPieceByPiece(t *testing.T) {
	for _, c := range allCodings {
		t.Run(c.String(), func(t *testing.T) {
			e := NewEncoder(c, 0)
			defer e.Release()
			d := NewDecoder(c, 1<<20)
			defer d.Release()
			events := []string{"data: one\n\n", "data: two\n\n", strings.Repeat("data: x\n", 500) + "\n", "data: end\n\n"}
			for i, ev := range events {
				last := i == len(events)-1
				coded, err := e.Encode(nil, []byte(ev), last)
				if err != nil {
					t.Fatal(err)
				}
				got, err := d.Decode(nil, coded, last)
				if err != nil {
					t.Fatalf("event %d: %v", i, err)
				}
				if string(got) != ev {
					t.Fatalf("event %d decoded to %q, want %q", i, got, ev)
				}
			}
		})
	}
}

func encodeAll(t testing.TB, c Coding, body []byte) []byte {
	t.Helper()
	e := NewEncoder(c, 0)
	defer e.Release()
	out, err := e.Encode(nil, body, true)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// errAny stands for any error in test tables.
var errAny = errors.New("any error")

func TestDecoder(t *testing.T) {
	body := corpus(300 << 10)
	bomb := make([]byte, 8<<20)
	for _, c := range allCodings {
		coded := encodeAll(t, c, body)
		codedBomb := encodeAll(t, c, bomb)
		cases := []struct {
			name    string
			input   []byte
			pieces  []int
			limit   int64
			want    []byte
			wantErr error
		}{
			{"whole", coded, []int{len(coded)}, 1 << 20, body, nil},
			{"byte by byte", coded[:2000], []int{1}, 1 << 20, nil, errAny},
			{"pieces", coded, []int{7, 1000, 16384}, 1 << 20, body, nil},
			{"exact limit", coded, []int{4096}, int64(len(body)), body, nil},
			{"over limit", coded, []int{4096}, int64(len(body)) - 1, nil, ErrTooLarge},
			{"bomb", codedBomb, []int{16384}, 1 << 20, nil, ErrTooLarge},
			{"truncated", coded[:len(coded)/2], []int{4096}, 1 << 20, nil, errAny},
			{"trailing garbage", append(append([]byte(nil), coded...), 0, 0, 0, 0, 0, 0, 0, 0), []int{len(coded) + 8}, 1 << 20, nil, errAny},
		}
		for _, tc := range cases {
			t.Run(c.String()+"/"+tc.name, func(t *testing.T) {
				d := NewDecoder(c, tc.limit)
				defer d.Release()
				var got []byte
				var err error
				pieces := split(tc.input, tc.pieces...)
				for i, p := range pieces {
					got, err = d.Decode(got, p, i == len(pieces)-1)
					if err != nil {
						break
					}
				}
				if tc.wantErr != nil {
					if err == nil || (tc.wantErr != errAny && !errors.Is(err, tc.wantErr)) {
						t.Fatalf("error %v, want %v", err, tc.wantErr)
					}
					if int64(len(got)) > tc.limit {
						t.Fatalf("%d bytes decoded past the limit %d", len(got), tc.limit)
					}
					return
				}
				if err != nil {
					t.Fatal(err)
				}
				if tc.want != nil && !bytes.Equal(got, tc.want) {
					t.Fatalf("decoded %d bytes, want %d", len(got), len(tc.want))
				}
			})
		}
	}
}

func TestDecoderCorruptAndEmpty(t *testing.T) {
	for _, c := range allCodings {
		d := NewDecoder(c, 1<<20)
		if _, err := d.Decode(nil, []byte("this is not compressed at all, not even a little"), true); err == nil {
			t.Errorf("%v: garbage decoded without an error", c)
		}
		d.Release()
		d = NewDecoder(c, 1<<20)
		if out, err := d.Decode(nil, nil, true); err != nil || len(out) != 0 {
			t.Errorf("%v: empty body: %q, %v", c, out, err)
		}
		d.Release()
	}
}

// TestDecoderReleaseMidStream checks that releasing a decoder that is waiting for input ends
// its goroutine.
func TestDecoderReleaseMidStream(t *testing.T) {
	var coded [numCodings][]byte
	for _, c := range allCodings {
		coded[c] = encodeAll(t, c, corpus(100<<10))
	}
	before := runtime.NumGoroutine()
	for range 20 {
		for _, c := range allCodings {
			coded := coded[c]
			d := NewDecoder(c, 1<<20)
			if _, err := d.Decode(nil, coded[:len(coded)/2], false); err != nil {
				t.Fatal(err)
			}
			d.Release()
		}
	}
	if after := runtime.NumGoroutine(); after > before+2 {
		t.Errorf("%d goroutines before, %d after releasing decoders mid-stream", before, after)
	}
}

func TestCodersConcurrent(t *testing.T) {
	body := corpus(64 << 10)
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := allCodings[i%len(allCodings)]
			for range 5 {
				coded := encodeAll(t, c, body)
				d := NewDecoder(c, 1<<20)
				got, err := d.Decode(nil, coded, true)
				d.Release()
				if err != nil || !bytes.Equal(got, body) {
					t.Errorf("%v: round trip failed: %v", c, err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

func TestEncoderAfterEnd(t *testing.T) {
	e := NewEncoder(Gzip, 0)
	defer e.Release()
	if _, err := e.Encode(nil, []byte("x"), true); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Encode(nil, []byte("y"), false); err == nil {
		t.Error("Encode after the last piece did not fail")
	}
}

func FuzzDecoder(f *testing.F) {
	for _, c := range allCodings {
		f.Add(uint8(c), encodeAll(f, c, corpus(3000)), uint16(100))
	}
	f.Add(uint8(Gzip), []byte("\x1f\x8b\x08\x00garbage"), uint16(3))
	f.Fuzz(func(t *testing.T, coding uint8, data []byte, pieceSize uint16) {
		c := allCodings[int(coding)%len(allCodings)]
		const limit = 1 << 20
		d := NewDecoder(c, limit)
		defer d.Release()
		pieces := split(data, int(pieceSize)+1)
		var out []byte
		for i, p := range pieces {
			var err error
			if out, err = d.Decode(out, p, i == len(pieces)-1); err != nil {
				break
			}
		}
		if len(out) > limit {
			t.Fatalf("decoded %d bytes past the limit", len(out))
		}
	})
}

// Every coding decodes whatever the size of the pieces the coded body arrives in, down to one
// byte (brotli's reader calls a stream whose last bytes came one by one "excessive input");
// bytes after the end of a stream, in a later piece, are still an error.
func TestDecoderEveryPieceSize(t *testing.T) {
	for _, body := range [][]byte{[]byte("000000010002"), []byte("x"), corpus(3000)} {
		for _, c := range allCodings {
			in := encodeAll(t, c, body)
			for size := 1; size <= len(in); size++ {
				d := NewDecoder(c, 1<<20)
				var out []byte
				pieces := split(in, size)
				for i, p := range pieces {
					o, err := d.Decode(nil, p, i == len(pieces)-1)
					out = append(out, o...)
					if err != nil {
						t.Fatalf("%v, %d-byte body, pieces of %d: piece %d: %v", c, len(body), size, i, err)
					}
				}
				d.Release()
				if !bytes.Equal(out, body) {
					t.Fatalf("%v, pieces of %d: decoded %d bytes, want %d", c, size, len(out), len(body))
				}
				if size > 64 {
					size += size / 8 // fewer sizes for long inputs
				}
			}
			d := NewDecoder(c, 1<<20)
			out, err := d.Decode(nil, in, false)
			if err == nil {
				var more []byte
				more, err = d.Decode(nil, []byte("garbage after the end"), true)
				out = append(out, more...)
			}
			d.Release()
			if err == nil {
				t.Errorf("%v: bytes after the end of the stream were accepted", c)
			}
		}
	}
}
