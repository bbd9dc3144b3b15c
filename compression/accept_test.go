package compression

import (
	"testing"

	"github.com/pingora-go/pingora/header"
)

func acceptOf(values ...string) Accept {
	var f header.Fields
	for _, v := range values {
		f.Append("Accept-Encoding", v)
	}
	return ParseAccept(&f)
}

func TestNegotiate(t *testing.T) {
	prefs := []Coding{Zstd, Brotli, Gzip}
	cases := []struct {
		name   string
		values []string
		prefs  []Coding
		want   Coding
	}{
		{"no field", nil, prefs, Identity},
		{"empty field", []string{""}, prefs, Identity},
		{"browser list, server order wins", []string{"gzip, deflate, br, zstd"}, prefs, Zstd},
		{"gzip only", []string{"gzip"}, prefs, Gzip},
		{"x-gzip alias", []string{"x-gzip"}, prefs, Gzip},
		{"case", []string{"GZip, BR"}, prefs, Brotli},
		{"br refused", []string{"br;q=0, gzip"}, prefs, Gzip},
		{"higher q wins over server order", []string{"zstd;q=0.5, gzip;q=0.8"}, prefs, Gzip},
		{"tie goes to server order", []string{"gzip;q=0.5, br;q=0.5"}, prefs, Brotli},
		{"star", []string{"*;q=0.5"}, prefs, Zstd},
		{"star with refusals", []string{"*;q=0.5, zstd;q=0, br;q=0"}, prefs, Gzip},
		{"star refused", []string{"*;q=0"}, prefs, Identity},
		{"identity refused", []string{"identity;q=0, gzip"}, prefs, Gzip},
		{"identity preferred explicitly", []string{"gzip;q=0.5, identity"}, prefs, Identity},
		{"identity equal to coding", []string{"gzip, identity"}, prefs, Gzip},
		{"implicit identity does not beat a low q", []string{"gzip;q=0.1"}, prefs, Gzip},
		{"unknown codings", []string{"compress, deflate"}, prefs, Identity},
		{"several lines", []string{"deflate", "br"}, prefs, Brotli},
		{"first entry counts", []string{"gzip;q=0, gzip"}, prefs, Identity},
		{"bad q skipped", []string{"zstd;q=2, br;q=abc, gzip;q=0.3"}, prefs, Gzip},
		{"spaces", []string{" gzip ; q=0.9 ,  br ;q=0.8 "}, prefs, Gzip},
		{"other parameters", []string{"br;level=3;q=0.2, gzip;q=0.1"}, prefs, Brotli},
		{"server prefers gzip", []string{"zstd, br, gzip"}, []Coding{Gzip, Brotli}, Gzip},
		{"q=1.000", []string{"zstd;q=0.999, gzip;q=1.000"}, prefs, Gzip},
		{"q=0.000", []string{"zstd;q=0.000, gzip;q=0.001"}, prefs, Gzip},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if got := acceptOf(tc.values...).Negotiate(tc.prefs); got != tc.want {
				t.Errorf("Negotiate(%q) = %v, want %v", tc.values, got, tc.want)
			}
		})
	}
}

func TestAcceptQ(t *testing.T) {
	cases := []struct {
		value string
		c     Coding
		want  int
	}{
		{"gzip;q=0.5", Gzip, 500},
		{"gzip;q=0.5", Identity, 1000},
		{"gzip;q=0.5", Brotli, 0},
		{"*;q=0.3", Brotli, 300},
		{"*;q=0.3", Identity, 300},
		{"identity;q=0", Identity, 0},
		{"*;q=0, identity", Identity, 1000},
		{"br;q=0.25", Brotli, 250},
		{"br;q=1.", Brotli, 1000},
		{"br;q=1.001", Brotli, 0},
		{"br;q=0.1234", Brotli, 0},
	}
	for _, tc := range cases {
		if got := acceptOf(tc.value).Q(tc.c); got != tc.want {
			t.Errorf("Q(%v) in %q = %d, want %d", tc.c, tc.value, got, tc.want)
		}
	}
	if acceptOf().Present() || !acceptOf("").Present() {
		t.Error("Present is wrong")
	}
}

func TestParseCoding(t *testing.T) {
	cases := []struct {
		token string
		want  Coding
		ok    bool
	}{
		{"gzip", Gzip, true}, {"X-GZIP", Gzip, true}, {"br", Brotli, true}, {"zstd", Zstd, true},
		{"identity", Identity, true}, {"deflate", Identity, false}, {"", Identity, false},
	}
	for _, tc := range cases {
		c, ok := ParseCoding([]byte(tc.token))
		if c != tc.want || ok != tc.ok {
			t.Errorf("ParseCoding(%q) = %v, %v; want %v, %v", tc.token, c, ok, tc.want, tc.ok)
		}
		if ok && tc.token == tc.want.String() && c.String() != tc.token {
			t.Errorf("String of %v", c)
		}
	}
}

func FuzzParseAccept(f *testing.F) {
	for _, s := range []string{"gzip, br;q=0.5", "*;q=0", "identity;q=0, zstd;q=1.000", ";;,,q=", "br;q=0.1234"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		a := acceptOf(v)
		got := a.Negotiate(DefaultCodings)
		for c := Identity; c < numCodings; c++ {
			if q := a.Q(c); q < 0 || q > 1000 {
				t.Fatalf("Q(%v) = %d out of range for %q", c, q, v)
			}
		}
		if got != Identity && !a.Accepts(got) {
			t.Fatalf("negotiated %v, which %q does not accept", got, v)
		}
	})
}
