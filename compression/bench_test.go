package compression

import (
	"testing"

	"github.com/pingora-go/pingora/header"
)

// benchPiece is the size of the pieces benchmarks feed, about one upstream read.
const benchPiece = 16 << 10

func BenchmarkEncode(b *testing.B) {
	body := corpus(256 << 10)
	for _, c := range allCodings {
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var out []byte
			for b.Loop() {
				e := NewEncoder(c, 0)
				pieces := split(body, benchPiece)
				for i, p := range pieces {
					out, _ = e.Encode(out[:0], p, i == len(pieces)-1)
				}
				e.Release()
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	body := corpus(256 << 10)
	for _, c := range allCodings {
		coded := encodeAll(b, c, body)
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			var out []byte
			for b.Loop() {
				d := NewDecoder(c, 1<<30)
				pieces := split(coded, benchPiece)
				for i, p := range pieces {
					out, _ = d.Decode(out[:0], p, i == len(pieces)-1)
				}
				d.Release()
			}
		})
	}
}

func BenchmarkNegotiate(b *testing.B) {
	var f header.Fields
	f.Append("Accept-Encoding", "gzip, deflate, br, zstd;q=0.9, *;q=0.1")
	b.ReportAllocs()
	for b.Loop() {
		if ParseAccept(&f).Negotiate(DefaultCodings) != Brotli {
			b.Fatal("wrong coding")
		}
	}
}

// BenchmarkFilterHeader measures the decision and head rewrite of one response.
func BenchmarkFilterHeader(b *testing.B) {
	req := newReq("GET", kv("Accept-Encoding: gzip, br"))
	src := newResp(200, kv("Content-Type: text/html", "Content-Length: 5000", "ETag: \"a\""))
	var resp header.ResponseHeader
	var f Filter
	b.ReportAllocs()
	for b.Loop() {
		resp.CopyFrom(src)
		f.ResponseHeader(req, &resp, false)
		f.Release()
	}
}
