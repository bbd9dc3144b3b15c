package header

import (
	"bytes"
	"fmt"
	"strings"
	"testing"
)

// dump renders fields as "Name: value|Name: value" for compact comparisons.
func dump(f *Fields) string {
	var parts []string
	for _, fl := range f.All() {
		parts = append(parts, string(fl.Name)+": "+string(fl.Value))
	}
	return strings.Join(parts, "|")
}

func sample() *Fields {
	var f Fields
	f.Append("Host", "example.com")
	f.Append("X-Forwarded-For", "1.1.1.1")
	f.Append("accept", "*/*")
	f.Append("x-forwarded-for", "2.2.2.2")
	return &f
}

func TestFieldsPreserveCaseAndOrder(t *testing.T) {
	f := sample()
	want := "Host: example.com|X-Forwarded-For: 1.1.1.1|accept: */*|x-forwarded-for: 2.2.2.2"
	if got := dump(f); got != want {
		t.Fatalf("fields = %q, want %q", got, want)
	}
	wire := "Host: example.com\r\nX-Forwarded-For: 1.1.1.1\r\naccept: */*\r\nx-forwarded-for: 2.2.2.2\r\n"
	if got := string(f.AppendH1(nil)); got != wire {
		t.Fatalf("AppendH1 = %q, want %q", got, wire)
	}
	if f.Len() != 4 || string(f.At(2).Name) != "accept" {
		t.Fatalf("Len/At wrong: %d %q", f.Len(), f.At(2).Name)
	}
}

func TestFieldsGet(t *testing.T) {
	f := sample()
	tests := []struct {
		name   string
		want   string
		ok     bool
		count  int
		values string
	}{
		{"host", "example.com", true, 1, "example.com"},
		{"HOST", "example.com", true, 1, "example.com"},
		{"X-FORWARDED-FOR", "1.1.1.1", true, 2, "1.1.1.1,2.2.2.2"},
		{"Accept", "*/*", true, 1, "*/*"},
		{"Missing", "", false, 0, ""},
		{"Hos", "", false, 0, ""},
		{"Hostt", "", false, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v, ok := f.Get(tt.name)
			if string(v) != tt.want || ok != tt.ok {
				t.Errorf("Get = %q, %v; want %q, %v", v, ok, tt.want, tt.ok)
			}
			if got := f.Value(tt.name); got != tt.want {
				t.Errorf("Value = %q, want %q", got, tt.want)
			}
			if got := f.Has(tt.name); got != tt.ok {
				t.Errorf("Has = %v, want %v", got, tt.ok)
			}
			if got := f.Count(tt.name); got != tt.count {
				t.Errorf("Count = %d, want %d", got, tt.count)
			}
			var vals []string
			f.Values(tt.name, func(v []byte) bool { vals = append(vals, string(v)); return true })
			if got := strings.Join(vals, ","); got != tt.values {
				t.Errorf("Values = %q, want %q", got, tt.values)
			}
		})
	}
}

func TestFieldsValuesStops(t *testing.T) {
	f := sample()
	n := 0
	f.Values("x-forwarded-for", func([]byte) bool { n++; return false })
	if n != 1 {
		t.Fatalf("Values called fn %d times after it returned false, want 1", n)
	}
}

func TestFieldsSet(t *testing.T) {
	tests := []struct {
		name, setName, value, want string
	}{
		{"replace all keeps first position and spelling", "X-FORWARDED-FOR", "9.9.9.9",
			"Host: example.com|X-Forwarded-For: 9.9.9.9|accept: */*"},
		{"replace single", "ACCEPT", "text/html",
			"Host: example.com|X-Forwarded-For: 1.1.1.1|accept: text/html|x-forwarded-for: 2.2.2.2"},
		{"append new with given spelling", "X-New", "v",
			"Host: example.com|X-Forwarded-For: 1.1.1.1|accept: */*|x-forwarded-for: 2.2.2.2|X-New: v"},
		{"empty value", "host", "",
			"Host: |X-Forwarded-For: 1.1.1.1|accept: */*|x-forwarded-for: 2.2.2.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sample()
			f.Set(tt.setName, tt.value)
			if got := dump(f); got != tt.want {
				t.Fatalf("after Set: %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFieldsAppend(t *testing.T) {
	var f Fields
	f.Append("A", "1")
	f.AppendBytes([]byte("b"), []byte("2"))
	name, value := []byte("C"), []byte("3")
	f.AppendRef(name, value)
	f.Append("a", "4")
	if got, want := dump(&f), "A: 1|b: 2|C: 3|a: 4"; got != want {
		t.Fatalf("fields = %q, want %q", got, want)
	}
	// AppendBytes copies; AppendRef refers.
	src := []byte("xy")
	f.AppendBytes(src, src)
	src[0] = 'z'
	if got := string(f.At(4).Name); got != "xy" {
		t.Fatalf("AppendBytes did not copy: %q", got)
	}
	name[0] = 'D'
	if got := string(f.At(2).Name); got != "D" {
		t.Fatalf("AppendRef copied: %q", got)
	}
}

func TestFieldsArenaGrowthKeepsEarlierValues(t *testing.T) {
	var f Fields
	for i := range 200 {
		f.Append(fmt.Sprintf("N%d", i), strings.Repeat("v", i))
	}
	for i := range 200 {
		fl := f.At(i)
		if string(fl.Name) != fmt.Sprintf("N%d", i) || string(fl.Value) != strings.Repeat("v", i) {
			t.Fatalf("field %d corrupted: %q: %q", i, fl.Name, fl.Value)
		}
	}
}

func TestFieldsRemove(t *testing.T) {
	tests := []struct {
		name string
		n    int
		want string
	}{
		{"x-forwarded-for", 2, "Host: example.com|accept: */*"},
		{"HOST", 1, "X-Forwarded-For: 1.1.1.1|accept: */*|x-forwarded-for: 2.2.2.2"},
		{"missing", 0, "Host: example.com|X-Forwarded-For: 1.1.1.1|accept: */*|x-forwarded-for: 2.2.2.2"},
		{"ACCEPT", 1, "Host: example.com|X-Forwarded-For: 1.1.1.1|x-forwarded-for: 2.2.2.2"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := sample()
			if n := f.Remove(tt.name); n != tt.n {
				t.Errorf("Remove = %d, want %d", n, tt.n)
			}
			if got := dump(f); got != tt.want {
				t.Errorf("after Remove: %q, want %q", got, tt.want)
			}
		})
	}
}

func TestFieldsRemoveFunc(t *testing.T) {
	f := sample()
	n := f.RemoveFunc(func(fl Field) bool { return bytes.Contains(fl.Value, []byte(".")) })
	if n != 3 || dump(f) != "accept: */*" {
		t.Fatalf("RemoveFunc = %d, fields %q", n, dump(f))
	}
	if n := f.RemoveFunc(func(Field) bool { return false }); n != 0 || dump(f) != "accept: */*" {
		t.Fatalf("RemoveFunc of nothing = %d, fields %q", n, dump(f))
	}
}

func TestFieldsResetAndReuse(t *testing.T) {
	f := sample()
	f.Reset()
	if f.Len() != 0 || f.Has("host") {
		t.Fatalf("Reset left fields: %q", dump(f))
	}
	f.Append("K", "v")
	if dump(f) != "K: v" {
		t.Fatalf("after reuse: %q", dump(f))
	}
}

func TestFieldsCopyFromIsIndependent(t *testing.T) {
	buf := []byte("NameValue")
	var src Fields
	src.AppendRef(buf[:4], buf[4:])
	var dst Fields
	dst.Append("Old", "x")
	dst.CopyFrom(&src)
	copy(buf, "XXXXXXXXX")
	src.Reset()
	if got := dump(&dst); got != "Name: Value" {
		t.Fatalf("CopyFrom = %q, want %q", got, "Name: Value")
	}
}

func TestVisitLower(t *testing.T) {
	var f Fields
	long := "X-" + strings.Repeat("Long", 20)
	f.Append("Content-Type", "text/html")
	f.Append("x-already-lower", "1")
	f.Append(long, "2")
	var got []string
	f.VisitLower(func(name, value []byte) {
		got = append(got, string(name)+"="+string(value))
	})
	want := []string{"content-type=text/html", "x-already-lower=1", strings.ToLower(long) + "=2"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("VisitLower = %q, want %q", got, want)
	}
	if string(f.At(0).Name) != "Content-Type" || string(f.At(2).Name) != long {
		t.Fatalf("VisitLower changed stored names: %q", dump(&f))
	}
}

func TestHasToken(t *testing.T) {
	var f Fields
	f.Append("Connection", "keep-alive, Upgrade")
	f.Append("connection", " foo ,\tCLOSE")
	f.Append("Transfer-Encoding", "gzip,chunked")
	tests := []struct {
		name, token string
		want        bool
	}{
		{"Connection", "close", true},
		{"Connection", "upgrade", true},
		{"connection", "keep-alive", true},
		{"Connection", "foo", true},
		{"Connection", "keep", false},
		{"Transfer-Encoding", "chunked", true},
		{"Transfer-Encoding", "gzip", true},
		{"Transfer-Encoding", "deflate", false},
		{"Upgrade", "websocket", false},
	}
	for _, tt := range tests {
		t.Run(tt.name+"/"+tt.token, func(t *testing.T) {
			if got := f.HasToken(tt.name, tt.token); got != tt.want {
				t.Fatalf("HasToken(%q, %q) = %v, want %v", tt.name, tt.token, got, tt.want)
			}
		})
	}
}

func TestListHasTokenAndTrimOWS(t *testing.T) {
	tests := []struct {
		list, token string
		want        bool
	}{
		{"", "a", false},
		{"a", "a", true},
		{" a ", "A", true},
		{"b,,a", "a", true},
		{"ab", "a", false},
		{"a b", "a", false},
	}
	for _, tt := range tests {
		if got := ListHasToken([]byte(tt.list), tt.token); got != tt.want {
			t.Errorf("ListHasToken(%q, %q) = %v, want %v", tt.list, tt.token, got, tt.want)
		}
	}
	trims := map[string]string{"": "", " \t": "", " a b\t": "a b", "x": "x"}
	for in, want := range trims {
		if got := string(TrimOWS([]byte(in))); got != want {
			t.Errorf("TrimOWS(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestEqualFold(t *testing.T) {
	tests := []struct {
		b, s string
		want bool
	}{
		{"Content-Length", "content-length", true},
		{"CONTENT-LENGTH", "Content-Length", true},
		{"content-lengtH", "content-length", true},
		{"Content-Lengt", "content-length", false},
		{"[", "{", false}, // differ by 0x20 but are not letters
		{"@", "`", false},
		{"\xc0", "\xe0", false},
	}
	for _, tt := range tests {
		if got := EqualFold([]byte(tt.b), tt.s); got != tt.want {
			t.Errorf("EqualFold(%q, %q) = %v, want %v", tt.b, tt.s, got, tt.want)
		}
	}
}

func BenchmarkFieldsGet(b *testing.B) {
	var f Fields
	for _, n := range []string{"Host", "User-Agent", "Accept", "Accept-Language", "Accept-Encoding",
		"Referer", "Cookie", "Connection", "Upgrade-Insecure-Requests", "Cache-Control"} {
		f.Append(n, "value")
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := f.Get("cache-control"); !ok {
			b.Fatal("missing")
		}
	}
}

func BenchmarkVisitLower(b *testing.B) {
	f := sample()
	b.ReportAllocs()
	for b.Loop() {
		f.VisitLower(func(name, value []byte) {})
	}
}

func BenchmarkFieldsAppendH1(b *testing.B) {
	f := sample()
	buf := make([]byte, 0, 512)
	b.ReportAllocs()
	for b.Loop() {
		buf = f.AppendH1(buf[:0])
	}
}

func TestVisitLowerConcurrent(t *testing.T) {
	f := sample()
	want := "host,x-forwarded-for,accept,x-forwarded-for"
	errs := make(chan string, 4)
	for range 4 {
		go func() {
			for range 200 {
				var names []string
				f.VisitLower(func(name, _ []byte) { names = append(names, string(name)) })
				if got := strings.Join(names, ","); got != want {
					errs <- got
					return
				}
			}
			errs <- ""
		}()
	}
	for range 4 {
		if got := <-errs; got != "" {
			t.Fatalf("VisitLower names %q, want %q", got, want)
		}
	}
}

// TestFieldsRemoveMask compares RemoveMask with RemoveFunc over the same fields: every mask of
// a few fields, bits beyond the last field, and heads longer than the mask's 64 fields, whose
// later fields it cannot name and keeps.
func TestFieldsRemoveMask(t *testing.T) {
	build := func(n int) *Fields {
		var f Fields
		for i := range n {
			f.Append(fmt.Sprintf("X-%d", i), fmt.Sprint(i))
		}
		return &f
	}
	check := func(n int, mask uint64) {
		t.Helper()
		got, want := build(n), build(n)
		i := 0
		wn := want.RemoveFunc(func(Field) bool {
			drop := i < 64 && mask&(1<<uint(i)) != 0
			i++
			return drop
		})
		if gn := got.RemoveMask(mask); gn != wn || dump(got) != dump(want) {
			t.Fatalf("%d fields, mask %#x: removed %d, %q; want %d, %q", n, mask, gn, dump(got), wn, dump(want))
		}
		// A field appended afterwards comes last, after the ones kept.
		got.Append("Y", "y")
		after := "Y: y"
		if d := dump(want); d != "" {
			after = d + "|Y: y"
		}
		if dump(got) != after {
			t.Fatalf("append after RemoveMask: %q, want %q", dump(got), after)
		}
	}
	for n := 0; n <= 5; n++ {
		for mask := uint64(0); mask < 1<<7; mask++ {
			check(n, mask)
		}
	}
	for _, mask := range []uint64{0, 1, 1 << 63, 1<<63 | 1, ^uint64(0), 0x5555555555555555} {
		check(64, mask)
		check(70, mask)
	}
}

// TestConnectionTokens checks the one-pass classification against ListHasToken.
func TestConnectionTokens(t *testing.T) {
	for _, v := range []string{"", ",", " , ,", "close", "Close", " keep-alive ", "upgrade",
		"close, X-Foo", "X-Foo", "keep-alive,Upgrade", "closed", "keep-alive2", "a,,b, close",
		"\tUPGRADE\t,\tKEEP-ALIVE", "close,close", "x y"} {
		got := ConnectionTokens([]byte(v))
		want := 0
		others := false
		for _, item := range strings.Split(v, ",") {
			item = strings.Trim(item, " \t")
			if item == "" {
				continue
			}
			if !strings.EqualFold(item, "close") && !strings.EqualFold(item, "keep-alive") && !strings.EqualFold(item, "upgrade") {
				others = true
			}
		}
		for tok, bit := range map[string]int{"close": TokenClose, "keep-alive": TokenKeepAlive, "upgrade": TokenUpgrade} {
			if ListHasToken([]byte(v), tok) {
				want |= bit
			}
		}
		if others {
			want |= TokenOther
		}
		if got != want {
			t.Errorf("ConnectionTokens(%q) = %04b, want %04b", v, got, want)
		}
	}
}
