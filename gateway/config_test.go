package gateway

import (
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

const minimal = `version: 1
listeners:
  - address: 127.0.0.1:8080
upstreams:
  app:
    backends: [127.0.0.1:9000]
services:
  web:
    routes:
      - upstream: app
`

func TestParseDefaults(t *testing.T) {
	c, err := Parse([]byte(minimal), "gw.yaml")
	if err != nil {
		t.Fatal(err)
	}
	l := c.Listeners[0]
	if l.Service != "web" || l.H2 != nil || l.H2C {
		t.Errorf("listener %+v", l)
	}
	u := c.Upstreams["app"]
	if u.Algorithm != "round_robin" || u.Backends[0].Weight != 1 || *u.Retries != DefaultRetries ||
		u.ConnectTimeout.D() != DefaultConnectTimeout || u.ReadTimeout.D() != DefaultReadTimeout {
		t.Errorf("upstream defaults %+v", u)
	}
	r := c.Services["web"].Routes[0]
	if r.Name != "#0" || !*r.WebSocket.Allow || !*r.AccessLog || *r.Compression.Enabled {
		t.Errorf("route defaults %+v", r)
	}
	out, err := c.YAML()
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"connect_timeout: 5s", "algorithm: round_robin", "retries: 2", "name: '#0'", "allow: true"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("dump lacks %q:\n%s", want, out)
		}
	}
	// The dump is itself a valid configuration that reads back the same.
	c2, err := Parse(out, "")
	if err != nil {
		t.Fatalf("dump does not parse: %v\n%s", err, out)
	}
	out2, _ := c2.YAML()
	if string(out2) != string(out) {
		t.Errorf("dump changed on a second round:\n%s\n---\n%s", out, out2)
	}
}

func TestParseShortForms(t *testing.T) {
	c, err := Parse([]byte(`
listeners:
  - address: 127.0.0.1:8443
    tls:
      certificates: [{cert: c.pem, key: k.pem}]
upstreams:
  app:
    backends: [127.0.0.1:9000, {address: 127.0.0.1:9001, weight: 3}]
    algorithm: consistent_hash
    health_check: {type: http}
    connect_timeout: 250ms
services:
  web:
    routes:
      - match: {hosts: example.com, methods: GET}
        upstream: app
`), "")
	if err != nil {
		t.Fatal(err)
	}
	u := c.Upstreams["app"]
	if len(u.Backends) != 2 || u.Backends[1].Weight != 3 || u.HashKey != "client_ip" {
		t.Errorf("backends %+v hash %q", u.Backends, u.HashKey)
	}
	if u.ConnectTimeout.D() != 250*time.Millisecond || u.HealthCheck.Path != "/" || u.HealthCheck.Status != 200 {
		t.Errorf("upstream %+v check %+v", u, u.HealthCheck)
	}
	m := c.Services["web"].Routes[0].Match
	if len(m.Hosts) != 1 || m.Hosts[0] != "example.com" || m.Methods[0] != "GET" {
		t.Errorf("match %+v", m)
	}
	if l := c.Listeners[0]; l.H2 == nil || !*l.H2 || l.TLS.MinVersion != "1.2" {
		t.Errorf("TLS listener %+v", l)
	}
}

// TestParseErrors checks that each problem is reported with the line of its key.
func TestParseErrors(t *testing.T) {
	cases := []struct {
		name, file string
		want       []string
	}{
		{"syntax", "listeners: [\n", []string{"line"}},
		{"unknown nested key", "listeners:\n  - address: 127.0.0.1:1\n    adress: x\nservices: {s: {}}\n",
			[]string{"x.yaml:3: listeners[0].adress: unknown key; the keys here are address, h2, h2c, proxy_protocol, service, tls"}},
		{"wrong type", "listeners:\n  - address: 127.0.0.1:1\n    h2c: maybe\nservices: {s: {}}\n",
			[]string{`x.yaml:3: listeners[0].h2c: want true or false, not "maybe"`}},
		{"trailing comment", minimal + "    # \n", nil},
		{"duration", strings.Replace(minimal, "backends: [127.0.0.1:9000]", "backends: [127.0.0.1:9000]\n    read_timeout: 5", 1),
			[]string{"x.yaml:7: upstreams.app.read_timeout: want a duration such as 5s"}},
		{"bad regex", strings.Replace(minimal, "      - upstream: app", "      - upstream: app\n        match: {path_regex: \"([a-z\"}", 1),
			[]string{"x.yaml:11: services.web.routes[0].match.path_regex: error parsing regexp"}},
		{"unknown upstream", strings.Replace(minimal, "- upstream: app", "- upstream: ap", 1),
			[]string{`x.yaml:10: services.web.routes[0].upstream: no upstream named "ap"`}},
		{"two actions", strings.Replace(minimal, "- upstream: app", "- upstream: app\n        respond: {body: x}", 1),
			[]string{"x.yaml:10: services.web.routes[0]: exactly one of upstream, redirect, respond and files"}},
		{"no listener", "services: {s: {routes: [{respond: {}}]}}\n", []string{"listeners: at least one listener is required"}},
		{"bad address", strings.Replace(minimal, "127.0.0.1:8080", "nowhere", 1), []string{"x.yaml:3: listeners[0].address: want host:port"}},
		{"several errors in file order", "listeners:\n  - address: 127.0.0.1:1\n    service: nope\nupstreams:\n  a: {backends: [127.0.0.1:2], algorithm: fastest}\nservices: {s: {}}\n",
			[]string{"x.yaml:3: listeners[0].service: no service named \"nope\"", "x.yaml:5: upstreams.a.algorithm: want one of"}},
		{"hash key without hashing", strings.Replace(minimal, "backends: [127.0.0.1:9000]", "backends: [127.0.0.1:9000]\n    hash_key: path", 1),
			[]string{"x.yaml:7: upstreams.app.hash_key: only consistent_hash and maglev"}},
		{"tls verify of an IP", strings.Replace(minimal, "backends: [127.0.0.1:9000]", "backends: [127.0.0.1:9000]\n    tls: {}", 1),
			[]string{"upstreams.app.backends[0]: verifying the certificate of an IP address"}},
		{"redirect variable", strings.Replace(minimal, "- upstream: app", "- redirect: {location: \"https://$hots/\"}", 1),
			[]string{"x.yaml:10: services.web.routes[0].redirect.location: unknown variable $hots"}},
		{"password hash", strings.Replace(minimal, "- upstream: app", "- upstream: app\n        basic_auth: {users: {bob: secret}}", 1),
			[]string{"x.yaml:11: services.web.routes[0].basic_auth.users.bob: want a bcrypt hash"}},
		{"cidr", strings.Replace(minimal, "- upstream: app", "- upstream: app\n        allow: [10.0.0.0/33]", 1),
			[]string{"x.yaml:11: services.web.routes[0].allow[0]: want an IP address or CIDR"}},
		{"h2c on tls", "listeners:\n  - address: 127.0.0.1:1\n    h2c: true\n    tls: {certificates: [{cert: a, key: b}]}\nservices: {s: {}}\n",
			[]string{"x.yaml:3: listeners[0].h2c: h2c is cleartext HTTP/2"}},
		{"key twice", "listeners:\n  - address: 127.0.0.1:1\n    address: 127.0.0.1:2\nservices: {s: {}}\n",
			[]string{"x.yaml:3: listeners[0].address: key given twice"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse([]byte(tc.file), "x.yaml")
			if tc.want == nil {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error lacks %q:\n%v", w, err)
				}
			}
			if tc.name == "several errors in file order" {
				es, _ := asErrors(err)
				if len(es) != 2 || es[0].Line > es[1].Line {
					t.Errorf("errors %v", es)
				}
			}
		})
	}
}

func TestHas(t *testing.T) {
	for in, want := range map[string]bool{
		"version: 1\nthreads: 2\n":    false,
		"version: 1\nlisteners: []\n": true,
		"services: {}\n":              true,
		"":                            false,
		"- a\n":                       false,
	} {
		if got := Has([]byte(in)); got != want {
			t.Errorf("Has(%q) = %v", in, got)
		}
	}
}

// TestKeysAreConfigFields keeps Keys and the Config fields in step.
func TestKeysAreConfigFields(t *testing.T) {
	out, err := yaml.Marshal(&Config{Upstreams: map[string]*Upstream{"a": {}}, AccessLog: &AccessLog{}, Metrics: &Metrics{},
		Caches: map[string]*Cache{"c": {}}, Redis: &Redis{}})
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(out, &m); err != nil {
		t.Fatal(err)
	}
	if len(m) != len(Keys) {
		t.Fatalf("Config has %d keys, Keys %d: %v", len(m), len(Keys), m)
	}
	for _, k := range Keys {
		if _, ok := m[k]; !ok {
			t.Errorf("Keys has %q, Config not", k)
		}
	}
}
