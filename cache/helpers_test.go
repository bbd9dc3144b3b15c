package cache

import (
	"strings"
	"time"

	"github.com/pingora-go/pingora/header"
)

// fields parses "Name: value" lines.
func addFields(f *header.Fields, lines []string) {
	for _, l := range lines {
		name, value, ok := strings.Cut(l, ":")
		if !ok {
			panic("bad field line " + l)
		}
		f.Append(name, strings.TrimSpace(value))
	}
}

func respOf(status int, lines ...string) *header.ResponseHeader {
	r := header.NewResponse(status)
	addFields(&r.Fields, lines)
	return r
}

func reqOf(method, target string, lines ...string) *header.RequestHeader {
	r := header.NewRequest(method, target)
	addFields(&r.Fields, lines)
	return r
}

// t0 is the tests' reference time, on a whole second.
var t0 = time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)

func httpDate(t time.Time) string { return string(AppendHTTPDate(nil, t)) }
