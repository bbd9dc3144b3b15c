package gateway

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkRoute finds the last of ten routes (hosts, prefixes, a regex, methods, a header).
func BenchmarkRoute(b *testing.B) {
	var sb strings.Builder
	sb.WriteString("listeners: [{address: 127.0.0.1:1}]\nservices:\n  s:\n    routes:\n")
	for i := range 9 {
		fmt.Fprintf(&sb, "      - {match: {hosts: [h%d.example.com, \"*.w%d.example.com\"], path_prefix: /p%d/, methods: [GET]}, respond: {}}\n", i, i, i)
	}
	sb.WriteString("      - {match: {hosts: [\"*.example.com\"], path_regex: \"^/api/v[0-9]+/\", headers: [{name: X-Env, value: prod}]}, respond: {}}\n")
	c, err := Parse([]byte(sb.String()), "")
	if err != nil {
		b.Fatal(err)
	}
	st, err := (&Gateway{pools: map[string]*pool{}}).build(c)
	if err != nil {
		b.Fatal(err)
	}
	r := req("GET", "/api/v2/users?id=1", "www.example.com", "X-Env", "prod")
	b.ReportAllocs()
	for b.Loop() {
		if st.route("127.0.0.1:1", r) == nil {
			b.Fatal("no route")
		}
	}
}
