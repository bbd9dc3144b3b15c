package cache

import (
	"reflect"
	"slices"
	"testing"

	"github.com/pingora-go/pingora/header"
)

// TestCacheControlParse covers the directive syntax of RFC 9111 §5.2 and §1.2.2: tokens and
// quoted strings, several lines, case, junk, duplicates and overflow.
func TestCacheControlParse(t *testing.T) {
	type want struct {
		maxAge, sMaxAge, maxStale, minFresh, swr, sie int64
		maxStaleAny, noCache, noStore, onlyIfCached   bool
		mustRevalidate, proxyRevalidate, public       bool
		private, mustUnderstand, immutable            bool
		noCacheFields, privateFields                  []string
	}
	none := want{maxAge: -1, sMaxAge: -1, maxStale: -1, minFresh: -1, swr: -1, sie: -1}
	with := func(f func(*want)) want { w := none; f(&w); return w }
	tests := []struct {
		name  string
		lines []string
		want  want
	}{
		{"absent", nil, none},
		{"max-age", []string{"Cache-Control: max-age=60"}, with(func(w *want) { w.maxAge = 60 })},
		{"case-insensitive names §5.2", []string{"Cache-Control: MAX-AGE=60, Public"}, with(func(w *want) { w.maxAge = 60; w.public = true })},
		{"quoted delta §5.2", []string{`Cache-Control: max-age="60"`}, with(func(w *want) { w.maxAge = 60 })},
		{"several lines combine", []string{"Cache-Control: public", "Cache-Control: s-maxage=10"}, with(func(w *want) { w.public = true; w.sMaxAge = 10 })},
		{"whitespace", []string{"Cache-Control:  no-cache ,  no-store ,max-age = 5"}, with(func(w *want) { w.noCache = true; w.noStore = true; w.maxAge = 5 })},
		{"invalid max-age is stale §4.2.1", []string{"Cache-Control: max-age=abc"}, with(func(w *want) { w.maxAge = 0 })},
		{"negative max-age is stale", []string{"Cache-Control: max-age=-1"}, with(func(w *want) { w.maxAge = 0 })},
		{"empty max-age is stale", []string{"Cache-Control: max-age="}, with(func(w *want) { w.maxAge = 0 })},
		{"duplicate equal max-age", []string{"Cache-Control: max-age=5, max-age=5"}, with(func(w *want) { w.maxAge = 5 })},
		{"conflicting max-age is stale §4.2.1", []string{"Cache-Control: max-age=5", "Cache-Control: max-age=500"}, with(func(w *want) { w.maxAge = 0 })},
		{"conflict stays stale", []string{"Cache-Control: max-age=5, max-age=6, max-age=5"}, with(func(w *want) { w.maxAge = 0 })},
		{"overflow clamps to 2^31 §1.2.2", []string{"Cache-Control: max-age=99999999999999999999999"}, with(func(w *want) { w.maxAge = MaxDeltaSeconds })},
		{"max-stale without value §5.2.1.2", []string{"Cache-Control: max-stale"}, with(func(w *want) { w.maxStaleAny = true })},
		{"max-stale with value", []string{"Cache-Control: max-stale=30"}, with(func(w *want) { w.maxStale = 30 })},
		{"malformed max-stale ignored", []string{"Cache-Control: max-stale=x"}, none},
		{"min-fresh §5.2.1.3", []string{"Cache-Control: min-fresh=20"}, with(func(w *want) { w.minFresh = 20 })},
		{"only-if-cached §5.2.1.7", []string{"Cache-Control: only-if-cached"}, with(func(w *want) { w.onlyIfCached = true })},
		{"revalidate directives §5.2.2.2 §5.2.2.8", []string{"Cache-Control: must-revalidate, proxy-revalidate"}, with(func(w *want) { w.mustRevalidate = true; w.proxyRevalidate = true })},
		{"must-understand §5.2.2.3", []string{"Cache-Control: must-understand, no-store"}, with(func(w *want) { w.mustUnderstand = true; w.noStore = true })},
		{"qualified no-cache §5.2.2.4", []string{`Cache-Control: no-cache="Set-Cookie, X-Foo"`}, with(func(w *want) { w.noCacheFields = []string{"set-cookie", "x-foo"} })},
		{"qualified private §5.2.2.7", []string{`Cache-Control: private="Authorization-Info"`}, with(func(w *want) { w.privateFields = []string{"authorization-info"} })},
		{"unqualified private", []string{"Cache-Control: private"}, with(func(w *want) { w.private = true })},
		{"empty qualified private is private", []string{`Cache-Control: private=""`}, with(func(w *want) { w.private = true })},
		{"junk in qualified private is private", []string{`Cache-Control: private="a b"`}, with(func(w *want) { w.private = true })},
		{"quoted comma is not a separator", []string{`Cache-Control: no-cache="a,b", max-age=3`}, with(func(w *want) { w.noCacheFields = []string{"a", "b"}; w.maxAge = 3 })},
		{"unknown extensions ignored §5.2.3", []string{`Cache-Control: community="UCI", foo, bar=baz, max-age=7`}, with(func(w *want) { w.maxAge = 7 })},
		{"extension with quoted comma", []string{`Cache-Control: ext="a, max-age=1", public`}, with(func(w *want) { w.public = true })},
		{"unbalanced quote stops parsing", []string{`Cache-Control: public, ext="abc, no-store`}, with(func(w *want) { w.public = true })},
		{"stale windows RFC 5861", []string{"Cache-Control: stale-while-revalidate=30, stale-if-error=600"}, with(func(w *want) { w.swr = 30; w.sie = 600 })},
		{"immutable RFC 8246", []string{"Cache-Control: immutable"}, with(func(w *want) { w.immutable = true })},
		{"empty members", []string{"Cache-Control: ,, ,public,,"}, with(func(w *want) { w.public = true })},
		{"junk after quoted value", []string{`Cache-Control: max-age="5"junk, no-store`}, with(func(w *want) { w.maxAge = 5; w.noStore = true })},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var f header.Fields
			addFields(&f, tt.lines)
			cc := ParseCacheControl(&f)
			got := want{cc.MaxAge, cc.SMaxAge, cc.MaxStale, cc.MinFresh, cc.StaleWhileRevalidate, cc.StaleIfError,
				cc.MaxStaleAny, cc.NoCache, cc.NoStore, cc.OnlyIfCached, cc.MustRevalidate, cc.ProxyRevalidate,
				cc.Public, cc.Private, cc.MustUnderstand, cc.Immutable, cc.NoCacheFields, cc.PrivateFields}
			if !equalWant(got.noCacheFields, tt.want.noCacheFields) || !equalWant(got.privateFields, tt.want.privateFields) {
				t.Fatalf("field lists: got %q %q, want %q %q", got.noCacheFields, got.privateFields, tt.want.noCacheFields, tt.want.privateFields)
			}
			got.noCacheFields, got.privateFields = nil, nil
			w := tt.want
			w.noCacheFields, w.privateFields = nil, nil
			if !reflect.DeepEqual(got, w) {
				t.Fatalf("got  %+v\nwant %+v", got, w)
			}
			if cc.Present != (len(tt.lines) > 0) {
				t.Fatalf("Present = %v", cc.Present)
			}
		})
	}
}

func equalWant(a, b []string) bool { return slices.Equal(a, b) }

// TestPragmaNoCache covers RFC 9111 §5.4: Pragma: no-cache counts only without Cache-Control.
func TestPragmaNoCache(t *testing.T) {
	if cc := ParseRequestCacheControl(reqOf("GET", "/", "Pragma: no-cache")); !cc.NoCache {
		t.Fatal("Pragma: no-cache without Cache-Control must mean no-cache")
	}
	if cc := ParseRequestCacheControl(reqOf("GET", "/", "Pragma: foo, No-Cache")); !cc.NoCache {
		t.Fatal("Pragma token list, case-insensitive")
	}
	if cc := ParseRequestCacheControl(reqOf("GET", "/", "Pragma: no-cache", "Cache-Control: max-age=5")); cc.NoCache {
		t.Fatal("Cache-Control present: Pragma must be ignored")
	}
}

func FuzzCacheControl(f *testing.F) {
	for _, s := range []string{"max-age=5", `no-cache="a, b", private`, `x="\"", max-stale`, "s-maxage=99999999999999999999", `a="`, ",,=,", "max-age=1, max-age=2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var h header.Fields
		h.Append("Cache-Control", v)
		cc := ParseCacheControl(&h)
		for _, d := range []int64{cc.MaxAge, cc.SMaxAge, cc.MaxStale, cc.MinFresh, cc.StaleWhileRevalidate, cc.StaleIfError} {
			if d < -1 || d > MaxDeltaSeconds {
				t.Fatalf("delta out of range: %d", d)
			}
		}
		if len(cc.NoCacheFields) > maxFieldList || len(cc.PrivateFields) > maxFieldList {
			t.Fatal("field list over the limit")
		}
		for _, n := range append(cc.NoCacheFields, cc.PrivateFields...) {
			if !isToken([]byte(n)) {
				t.Fatalf("non-token field name %q", n)
			}
		}
		// Parsing is deterministic and independent of splitting into lines at a top-level
		// comma that the parser itself found.
		if again := ParseCacheControl(&h); again.MaxAge != cc.MaxAge || again.NoStore != cc.NoStore {
			t.Fatal("not deterministic")
		}
	})
}
