package proxy

import (
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/header"
)

// TestIsHopByHop checks the one-pass test against the list of RFC 9110 §7.6.1: every listed name
// in any case, Connection and Upgrade kept when a protocol switch is forwarded, and no other
// name, including ones of the same lengths.
func TestIsHopByHop(t *testing.T) {
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade"} {
		for _, spelled := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if !isHopByHop([]byte(spelled), false) {
				t.Errorf("%q is not hop-by-hop", spelled)
			}
			kept := name == "Connection" || name == "Upgrade"
			if isHopByHop([]byte(spelled), true) == kept {
				t.Errorf("%q with keepUpgrade: hop-by-hop %v", spelled, !kept)
			}
		}
	}
	for _, name := range []string{"", "T", "TEE", "Accept-", "Content-Ty", "Proxy-Connectio", "X-Forwarded-Proto", "Host", "Trailer", "Keep-Alivex"} {
		if isHopByHop([]byte(name), false) {
			t.Errorf("%q taken for hop-by-hop", name)
		}
	}
}

// TestStripHopByHop: the listed fields go, and so do those a Connection field names, from any
// of several Connection fields and before or after them, in any case; Host and Content-Length
// stay though named; with keepUpgrade, Connection and Upgrade stay, even when named together
// with a field that goes. The other fields keep their order.
func TestStripHopByHop(t *testing.T) {
	for _, tc := range []struct {
		in          string
		keepUpgrade bool
		want        string
	}{
		{"Host: a|X: 1", false, "Host: a|X: 1"},
		{"Host: a|Connection: keep-alive|Keep-Alive: 5|X: 1|TE: trailers|Transfer-Encoding: chunked|Proxy-Connection: x|Upgrade: y", false, "Host: a|X: 1"},
		{"X-A: 1|Host: a|Connection: close, x-a|Connection: X-B|X-B: 2|x-c: 3", false, "Host: a|x-c: 3"},
		{"X-1: 1|X-2: 2|X-3: 3|X-4: 4|X-5: 5|Connection: x-1|Connection: x-2|Connection: x-3|Connection: x-4|Connection: x-5|Y: 6", false, "Y: 6"},
		{"Host: a|Content-Length: 5|Connection: Host, Content-Length, X|X: 1", false, "Host: a|Content-Length: 5"},
		{"Connection: Upgrade, X-Settings|Upgrade: websocket|X-Settings: s|Y: 1", true, "Connection: Upgrade, X-Settings|Upgrade: websocket|Y: 1"},
		{"Connection: Upgrade|Upgrade: websocket|Keep-Alive: 1", true, "Connection: Upgrade|Upgrade: websocket"},
	} {
		var f header.Fields
		for _, line := range strings.Split(tc.in, "|") {
			name, value, _ := strings.Cut(line, ": ")
			f.Append(name, value)
		}
		stripHopByHop(&f, tc.keepUpgrade)
		var got []string
		for _, fl := range f.All() {
			got = append(got, string(fl.Name)+": "+string(fl.Value))
		}
		if g := strings.Join(got, "|"); g != tc.want {
			t.Errorf("%q (keepUpgrade %v): got %q, want %q", tc.in, tc.keepUpgrade, g, tc.want)
		}
	}
}

// refStripHopByHop is the rule of stripHopByHop written plainly, one decision per field with
// no shortcuts, to compare the optimized pass with.
func refStripHopByHop(f *header.Fields, keepUpgrade bool) {
	var named []string
	for _, fl := range f.All() {
		if strings.EqualFold(string(fl.Name), "Connection") {
			for _, t := range strings.Split(string(fl.Value), ",") {
				t = strings.Trim(t, " \t")
				switch strings.ToLower(t) {
				case "", "close", "keep-alive", "upgrade":
				default:
					named = append(named, t)
				}
			}
		}
	}
	f.RemoveFunc(func(fl header.Field) bool {
		name := strings.ToLower(string(fl.Name))
		switch name {
		case "te", "keep-alive", "proxy-connection", "transfer-encoding":
			return true
		case "connection", "upgrade":
			return !keepUpgrade
		case "host", "content-length":
			return false
		}
		for _, n := range named {
			if strings.EqualFold(n, name) {
				return true
			}
		}
		return false
	})
}

// TestStripHopByHopRandom compares stripHopByHop with refStripHopByHop on random heads, up to
// 80 fields (past the 64 fields the first pass decides with a mask), made of listed names,
// names a Connection field names, and others.
func TestStripHopByHopRandom(t *testing.T) {
	names := []string{"Host", "Content-Length", "Connection", "connection", "Keep-Alive", "TE", "te",
		"Transfer-Encoding", "Upgrade", "Proxy-Connection", "X-A", "x-b", "X-Forwarded-For", "Date", "Server"}
	values := []string{"1", "close", "keep-alive", "Upgrade", "x-a", "close, X-B", "keep-alive, x-a, upgrade", " , ", "Host, Content-Length"}
	rng := rand.New(rand.NewPCG(1, 2))
	for iter := range 3000 {
		n := rng.IntN(12)
		if iter%10 == 0 {
			n = 60 + rng.IntN(20)
		}
		var in strings.Builder
		var a, b header.Fields
		for range n {
			name, value := names[rng.IntN(len(names))], values[rng.IntN(len(values))]
			a.Append(name, value)
			b.Append(name, value)
			in.WriteString(name + ": " + value + "|")
		}
		keep := rng.IntN(4) == 0
		stripHopByHop(&a, keep)
		refStripHopByHop(&b, keep)
		if got, want := fieldsString(&a), fieldsString(&b); got != want {
			t.Fatalf("%q (keepUpgrade %v):\n got %q\nwant %q", in.String(), keep, got, want)
		}
	}
}

func fieldsString(f *header.Fields) string {
	var parts []string
	for _, fl := range f.All() {
		parts = append(parts, string(fl.Name)+": "+string(fl.Value))
	}
	return strings.Join(parts, "|")
}
