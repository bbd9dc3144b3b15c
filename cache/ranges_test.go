package cache

import (
	"bytes"
	"context"
	"io"
	"mime"
	"mime/multipart"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestParseRange covers RFC 9110 §14.1.2 and §14.2.
func TestParseRange(t *testing.T) {
	const size = 1000
	tests := []struct {
		name string
		v    string
		max  int
		want []ByteRange
		res  RangeResult
	}{
		{"single", "bytes=0-499", 0, []ByteRange{{0, 499}}, RangeSingle},
		{"unit case-insensitive", "Bytes=0-0", 0, []ByteRange{{0, 0}}, RangeSingle},
		{"open-ended", "bytes=900-", 0, []ByteRange{{900, 999}}, RangeSingle},
		{"suffix", "bytes=-100", 0, []ByteRange{{900, 999}}, RangeSingle},
		{"suffix longer than body", "bytes=-5000", 0, []ByteRange{{0, 999}}, RangeSingle},
		{"end clamped", "bytes=500-5000", 0, []ByteRange{{500, 999}}, RangeSingle},
		{"multi", "bytes=0-9, 20-29", 0, []ByteRange{{0, 9}, {20, 29}}, RangeMulti},
		{"overlapping coalesced", "bytes=0-99,50-149", 0, []ByteRange{{0, 149}}, RangeSingle},
		{"adjacent coalesced", "bytes=0-9,10-19,30-39", 0, []ByteRange{{0, 19}, {30, 39}}, RangeMulti},
		{"unordered sorted", "bytes=30-39,0-9", 0, []ByteRange{{0, 9}, {30, 39}}, RangeMulti},
		{"unsatisfiable part dropped", "bytes=0-9,2000-3000", 0, []ByteRange{{0, 9}}, RangeSingle},
		{"all unsatisfiable §14.1.2", "bytes=1000-", 0, nil, RangeUnsatisfiable},
		{"zero suffix unsatisfiable", "bytes=-0", 0, nil, RangeUnsatisfiable},
		{"other unit ignored", "items=0-5", 0, nil, RangeNone},
		{"last before first ignored", "bytes=10-5", 0, nil, RangeNone},
		{"junk ignored", "bytes=a-b", 0, nil, RangeNone},
		{"no dash ignored", "bytes=5", 0, nil, RangeNone},
		{"empty set ignored", "bytes=", 0, nil, RangeNone},
		{"only commas ignored", "bytes=,,", 0, nil, RangeNone},
		{"one bad spec spoils all", "bytes=0-5,x", 0, nil, RangeNone},
		{"too many ranges ignored", "bytes=0-0,2-2,4-4", 2, nil, RangeNone},
		{"at the limit", "bytes=0-0,2-2", 2, []ByteRange{{0, 0}, {2, 2}}, RangeMulti},
		{"huge numbers", "bytes=0-99999999999999999999999", 0, []ByteRange{{0, 999}}, RangeSingle},
		{"whitespace", " bytes=0-1 ,  3-4 ", 0, []ByteRange{{0, 1}, {3, 4}}, RangeMulti},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, res := ParseRange(nil, []byte(tt.v), size, tt.max)
			if res != tt.res || !slices.Equal(got, tt.want) {
				t.Fatalf("got %v %v, want %v %v", got, res, tt.want, tt.res)
			}
		})
	}
	if _, res := ParseRange(nil, []byte("bytes=0-5"), 0, 0); res != RangeUnsatisfiable {
		t.Fatal("an empty body satisfies no range")
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=5-", "bytes=1-2,3-4,0-9", "bytes=9-1", "bytes=,", "bytes=99999999999999999999-"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, v string, size int64) {
		if size < 0 {
			size = -size
		}
		rs, res := ParseRange(nil, []byte(v), size, 10)
		switch res {
		case RangeNone, RangeUnsatisfiable:
			if len(rs) != 0 {
				t.Fatalf("%v with ranges %v", res, rs)
			}
			return
		case RangeSingle:
			if len(rs) != 1 {
				t.Fatalf("single with %v", rs)
			}
		case RangeMulti:
			if len(rs) < 2 {
				t.Fatalf("multi with %v", rs)
			}
		}
		var total int64
		for i, r := range rs {
			if r.Start < 0 || r.End < r.Start || r.End >= size {
				t.Fatalf("range %v outside %d", r, size)
			}
			if i > 0 && r.Start <= rs[i-1].End+1 {
				t.Fatalf("not disjoint ascending: %v", rs)
			}
			total += r.Len()
		}
		if total > size {
			t.Fatalf("more bytes than the body: %v", rs)
		}
	})
}

// TestIfRange covers RFC 9110 §13.1.5.
func TestIfRange(t *testing.T) {
	lm := httpDate(t0)
	resp := respOf(200, `ETag: "abc"`, "Last-Modified: "+lm)
	tests := []struct {
		v    string
		want bool
	}{
		{`"abc"`, true},
		{`"abd"`, false},
		{`W/"abc"`, false},
		{lm, true},
		{httpDate(t0.Add(time.Second)), false},
		{"garbage", false},
	}
	for _, tt := range tests {
		if got := IfRangeMatches(reqOf("GET", "/", "If-Range: "+tt.v), resp); got != tt.want {
			t.Errorf("If-Range %q: %v", tt.v, got)
		}
	}
	if IfRangeMatches(reqOf("GET", "/", `If-Range: "abc"`), respOf(200, `ETag: W/"abc"`)) {
		t.Error("a weak stored ETag never matches")
	}
	if !IfRangeMatches(reqOf("GET", "/"), resp) {
		t.Error("no If-Range matches")
	}
}

// memBody is a finished BodyReader over a byte slice, for tests in this package.
type memBody struct {
	b        []byte
	pos, end int64
}

func (m *memBody) Read(_ context.Context, p []byte) (int, error) {
	limit := int64(len(m.b))
	if m.end >= 0 {
		limit = m.end + 1
	}
	if m.pos >= limit {
		return 0, io.EOF
	}
	n := copy(p, m.b[m.pos:limit])
	m.pos += int64(n)
	return n, nil
}
func (m *memBody) SetRange(s, e int64) error { m.pos, m.end = s, e; return nil }
func (m *memBody) Size() int64               { return int64(len(m.b)) }
func (m *memBody) Close() error              { return nil }

// TestRangePlan covers the 206, multipart/byteranges and 416 responses of RFC 9110 §14.
func TestRangePlan(t *testing.T) {
	body := []byte(strings.Repeat("0123456789", 10))
	stored := respOf(200, "Content-Type: text/plain", "Content-Length: 100", `ETag: "e"`)
	run := func(method string, lines ...string) (*RangePlan, string, []byte) {
		var p RangePlan
		h := respOf(200)
		h.CopyFrom(stored)
		p.Plan(reqOf(method, "/", lines...), h, int64(len(body)), 0)
		p.Apply(h)
		var out bytes.Buffer
		err := p.CopyBody(context.Background(), &memBody{b: body, end: -1}, make([]byte, 7), func(b []byte) error {
			out.Write(b)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		return &p, h.String(), out.Bytes()
	}

	p, h, b := run("GET", "Range: bytes=10-19")
	if p.Result != RangeSingle || !strings.Contains(h, "HTTP/1.1 206") || !strings.Contains(h, "Content-Range: bytes 10-19/100") ||
		!strings.Contains(h, "Content-Length: 10\r\n") || string(b) != "0123456789" {
		t.Fatalf("single:\n%s%q", h, b)
	}

	p, h, b = run("GET", "Range: bytes=0-2,-3")
	if p.Result != RangeMulti || int64(len(b)) != p.BodyLen() {
		t.Fatalf("multi: %v, body %d bytes, BodyLen %d", p.Result, len(b), p.BodyLen())
	}
	ct := headerValue(h, "Content-Type")
	mt, params, err := mime.ParseMediaType(ct)
	if err != nil || mt != "multipart/byteranges" || len(params["boundary"]) != 16 {
		t.Fatalf("Content-Type %q", ct)
	}
	if headerValue(h, "Content-Length") != itoa(int64(len(b))) {
		t.Fatalf("Content-Length %q for %d bytes", headerValue(h, "Content-Length"), len(b))
	}
	mr := multipart.NewReader(bytes.NewReader(b), params["boundary"])
	wantParts := []struct{ cr, data string }{{"bytes 0-2/100", "012"}, {"bytes 97-99/100", "789"}}
	for _, w := range wantParts {
		part, err := mr.NextPart()
		if err != nil {
			t.Fatal(err)
		}
		data, _ := io.ReadAll(part)
		if part.Header.Get("Content-Range") != w.cr || part.Header.Get("Content-Type") != "text/plain" || string(data) != w.data {
			t.Fatalf("part %v %q", part.Header, data)
		}
	}
	if _, err := mr.NextPart(); err != io.EOF {
		t.Fatalf("after the parts: %v", err)
	}

	p, h, b = run("GET", "Range: bytes=500-")
	if p.Result != RangeUnsatisfiable || !strings.Contains(h, "HTTP/1.1 416") || headerValue(h, "Content-Range") != "bytes */100" ||
		strings.Contains(h, "Content-Type") || headerValue(h, "Content-Length") != "0" || len(b) != 0 {
		t.Fatalf("416:\n%s", h)
	}

	p, h, _ = run("GET", "Range: bytes=0-1", `If-Range: "other"`)
	if p.Result != RangeNone || !strings.Contains(h, "HTTP/1.1 200") || headerValue(h, "Accept-Ranges") != "bytes" {
		t.Fatalf("If-Range mismatch:\n%s", h)
	}
	if p, _, _ = run("POST", "Range: bytes=0-1"); p.Result != RangeNone {
		t.Fatal("POST ranged")
	}
}

func headerValue(head, name string) string {
	for _, l := range strings.Split(head, "\r\n") {
		if n, v, ok := strings.Cut(l, ": "); ok && strings.EqualFold(n, name) {
			return v
		}
	}
	return ""
}
