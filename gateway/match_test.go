package gateway

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"testing"

	"golang.org/x/crypto/bcrypt"

	"github.com/pingora-go/pingora/header"
)

func req(method, target, host string, fields ...string) *header.RequestHeader {
	r := header.NewRequest(method, target)
	if host != "" {
		r.Append("Host", host)
	}
	for i := 0; i+1 < len(fields); i += 2 {
		r.Append(fields[i], fields[i+1])
	}
	return r
}

func TestMatch(t *testing.T) {
	cases := []struct {
		name  string
		m     Match
		r     *header.RequestHeader
		match bool
	}{
		{"empty matches all", Match{}, req("GET", "/x", "a"), true},
		{"exact host", Match{Hosts: []string{"Example.com"}}, req("GET", "/", "example.COM:8080"), true},
		{"exact host trailing dot", Match{Hosts: []string{"example.com"}}, req("GET", "/", "example.com."), true},
		{"other host", Match{Hosts: []string{"example.com"}}, req("GET", "/", "www.example.com"), false},
		{"wildcard", Match{Hosts: []string{"*.example.com"}}, req("GET", "/", "a.b.example.com"), true},
		{"wildcard not apex", Match{Hosts: []string{"*.example.com"}}, req("GET", "/", "example.com"), false},
		{"wildcard not suffix of label", Match{Hosts: []string{"*.example.com"}}, req("GET", "/", "badexample.com"), false},
		{"ipv6 host", Match{Hosts: []string{"[::1]"}}, req("GET", "/", "[::1]:80"), true},
		{"exact path", Match{Path: "/a"}, req("GET", "/a?x=1", "h"), true},
		{"exact path longer", Match{Path: "/a"}, req("GET", "/ab", "h"), false},
		{"prefix", Match{PathPrefix: "/api/"}, req("GET", "/api/v1", "h"), true},
		{"prefix no", Match{PathPrefix: "/api/"}, req("GET", "/apix", "h"), false},
		{"regex", Match{PathRegex: `^/v[0-9]+/`}, req("GET", "/v2/users", "h"), true},
		{"regex no", Match{PathRegex: `^/v[0-9]+/`}, req("GET", "/vx/users", "h"), false},
		{"method", Match{Methods: []string{"POST", "PUT"}}, req("PUT", "/", "h"), true},
		{"method case-sensitive", Match{Methods: []string{"POST"}}, req("post", "/", "h"), false},
		{"header present", Match{Headers: []HeaderMatch{{Name: "x-canary"}}}, req("GET", "/", "h", "X-Canary", "1"), true},
		{"header absent", Match{Headers: []HeaderMatch{{Name: "x-canary"}}}, req("GET", "/", "h"), false},
		{"header value second field", Match{Headers: []HeaderMatch{{Name: "X-Env", Value: "prod"}}}, req("GET", "/", "h", "X-Env", "dev", "x-env", "prod"), true},
		{"header value no", Match{Headers: []HeaderMatch{{Name: "X-Env", Value: "prod"}}}, req("GET", "/", "h", "X-Env", "production"), false},
		{"header regex", Match{Headers: []HeaderMatch{{Name: "User-Agent", Regex: "(?i)curl"}}}, req("GET", "/", "h", "User-Agent", "Curl/8"), true},
		{"all conditions", Match{Hosts: []string{"h"}, PathPrefix: "/a", Methods: []string{"GET"}}, req("POST", "/a", "h"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := newMatcher(&tc.m)
			if got := m.match(tc.r, hostOnly(tc.r.Host())); got != tc.match {
				t.Errorf("match = %v, want %v", got, tc.match)
			}
		})
	}
}

// TestFirstMatchWins checks that routes are tried in file order.
func TestFirstMatchWins(t *testing.T) {
	c, err := Parse([]byte(`
listeners: [{address: 127.0.0.1:1}]
services:
  s:
    routes:
      - {name: api, match: {path_prefix: /api/}, respond: {body: api}}
      - {name: v1, match: {path_prefix: /api/v1/}, respond: {body: v1}}
      - {name: rest, respond: {body: rest}}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	g := &Gateway{pools: map[string]*pool{}}
	st, err := g.build(c)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]string{"/api/v1/x": "api", "/api/": "api", "/": "rest", "/apiv1": "rest"} {
		r := st.route("127.0.0.1:1", req("GET", path, "h"))
		if r == nil || r.name != want {
			t.Errorf("%s went to %v, want %s", path, r, want)
		}
	}
	if st.route("127.0.0.1:2", req("GET", "/", "h")) != nil {
		t.Error("a listener without a service matched")
	}
}

func TestRewrite(t *testing.T) {
	cases := []struct {
		rw     Rewrite
		in     string
		result string
	}{
		{Rewrite{Prefix: "/api/", Replacement: "/"}, "/api/users?x=1", "/users?x=1"},
		{Rewrite{Prefix: "/api", Replacement: ""}, "/api", "/"},
		{Rewrite{Prefix: "/api/", Replacement: "/v2/"}, "/other", "/other"},
		{Rewrite{Regex: `^/u/([0-9]+)$`, Replacement: "/users?id=$1"}, "/u/42", "/users?id=42"},
		{Rewrite{Regex: `^/old/(?P<rest>.*)`, Replacement: "/new/${rest}"}, "/old/a/b?q", "/new/a/b?q"},
		{Rewrite{Regex: `x`, Replacement: "y"}, "/axbx", "/aybx"},
	}
	for _, tc := range cases {
		r := req("GET", tc.in, "h")
		newRewriter(&tc.rw).apply(r)
		if got := string(r.Target()); got != tc.result {
			t.Errorf("%+v on %s: %s, want %s", tc.rw, tc.in, got, tc.result)
		}
	}
}

func TestHostOnly(t *testing.T) {
	for in, want := range map[string]string{
		"Example.COM:443": "example.com", "example.com.": "example.com", "[::1]:8080": "[::1]",
		"10.0.0.1": "10.0.0.1", "": "", "a:b:c": "a:b:c",
	} {
		if got := string(hostOnly([]byte(in))); got != want {
			t.Errorf("hostOnly(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestTemplate(t *testing.T) {
	for in, ok := range map[string]bool{
		"https://$host$path$is_query$query": true, "${host}x": true, "costs $5 or $$": true, "$nope": false, "${host": false, "end$": true,
	} {
		_, err := parseTemplate(in)
		if (err == nil) != ok {
			t.Errorf("parseTemplate(%q): %v", in, err)
		}
	}
	tp := mustTemplate("costs $5 or $$x")
	if !tp.plain || tp.String() != "costs $5 or $x" {
		t.Errorf("plain template %q", tp.String())
	}
}

func TestCIDRs(t *testing.T) {
	c := newCIDRs([]string{"10.0.0.0/8", "::1"}, []string{"10.1.0.0/16"})
	for ip, want := range map[string]bool{"10.2.3.4": true, "10.1.2.3": false, "192.168.0.1": false, "::1": true} {
		if got := c.admits(netip.MustParseAddr(ip), true); got != want {
			t.Errorf("%s: %v", ip, got)
		}
	}
	if c.admits(netip.Addr{}, false) {
		t.Error("a client without an address passed an allow list")
	}
	if !newCIDRs(nil, []string{"10.0.0.0/8"}).admits(netip.Addr{}, false) {
		t.Error("a client without an address failed a deny list")
	}
}

func basic(user, pass string) *header.RequestHeader {
	return req("GET", "/", "h", "Authorization", "Basic "+base64.StdEncoding.EncodeToString([]byte(user+":"+pass)))
}

func TestBasicAuth(t *testing.T) {
	sum := sha256.Sum256([]byte("s3cret"))
	bh, err := bcrypt.GenerateFromPassword([]byte("hunter2"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	a := newBasicAuth(&BasicAuth{Realm: "r", Users: map[string]string{"alice": "sha256:" + hex.EncodeToString(sum[:]), "bob": string(bh)}})
	cases := []struct {
		r  *header.RequestHeader
		ok bool
	}{
		{basic("alice", "s3cret"), true},
		{basic("alice", "wrong"), false},
		{basic("bob", "hunter2"), true},
		{basic("bob", "hunter2"), true}, // from the cache
		{basic("bob", "hunter3"), false},
		{basic("carol", "s3cret"), false},
		{basic("alice", ""), false},
		{req("GET", "/", "h", "Authorization", "Bearer x"), false},
		{req("GET", "/", "h", "Authorization", "basic !!!"), false},
		{req("GET", "/", "h"), false},
		{req("GET", "/", "h", "Authorization", "BASIC "+base64.StdEncoding.EncodeToString([]byte("alice:s3cret"))), true},
	}
	for i, tc := range cases {
		if got := a.check(tc.r); got != tc.ok {
			t.Errorf("case %d: %v, want %v", i, got, tc.ok)
		}
	}
	if err := checkHash(string(bh)); err != nil {
		t.Error(err)
	}
}
