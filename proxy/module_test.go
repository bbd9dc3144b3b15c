package proxy_test

import (
	"bytes"
	"io"
	"net/http"
	"sync/atomic"
	"testing"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// upperBuilder makes modules that upper-case response bodies, tag the response head and count
// the request bodies they saw.
type upperBuilder struct {
	order    int
	tag      string
	done     atomic.Int64
	reqBytes atomic.Int64
}

func (b *upperBuilder) Order() int { return b.order }
func (b *upperBuilder) NewModule(s *proxy.Session) proxy.Module {
	if bytes.HasPrefix(s.Req().Path(), []byte("/skip")) {
		return nil
	}
	return &upperModule{b: b}
}

type upperModule struct {
	proxy.ModuleDefaults
	b *upperBuilder
}

func (m *upperModule) ResponseHeaderFilter(_ *proxy.Session, resp *header.ResponseHeader, _ bool) error {
	resp.Append("X-Modules", m.b.tag)
	return nil
}

func (m *upperModule) ResponseBodyFilter(_ *proxy.Session, body *[]byte, _ bool) error {
	*body = bytes.ToUpper(*body)
	return nil
}

func (m *upperModule) RequestBodyFilter(_ *proxy.Session, body *[]byte, _ bool) error {
	m.b.reqBytes.Add(int64(len(*body)))
	return nil
}

func (m *upperModule) Done(*proxy.Session) { m.b.done.Add(1) }

func TestModulesRunInOrderOnProxiedAndLocalResponses(t *testing.T) {
	origin := startOrigin(t, echoHandler())
	first := &upperBuilder{order: 10, tag: "first"}
	second := &upperBuilder{order: -5, tag: "second"}
	app := &testApp{peers: []*upstream.Peer{mustPeer(t, origin.addr)}}
	app.requestFilter = func(s *proxy.Session) (bool, error) {
		if string(s.Req().Path()) == "/local" {
			return true, s.Respond(200, nil, []byte("local answer"))
		}
		return false, nil
	}
	addr, _ := startProxy(t, app, proxy.Options{Modules: []proxy.ModuleBuilder{second, first}})
	client := newClient()
	cases := []struct{ method, path, body, want, tags string }{
		{"POST", "/echo", "proxied body", "PROXIED BODY", "first,second"},
		{"GET", "/local", "", "LOCAL ANSWER", "first,second"},
		{"POST", "/skip", "left alone", "left alone", ""},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest(tc.method, "http://"+addr+tc.path, bytes.NewReader([]byte(tc.body)))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if string(b) != tc.want {
			t.Errorf("%s: body %q, want %q", tc.path, b, tc.want)
		}
		if got := bytes.Join(toBytes(resp.Header.Values("X-Modules")), []byte(",")); string(got) != tc.tags {
			t.Errorf("%s: modules ran as %q, want %q", tc.path, got, tc.tags)
		}
	}
	if first.done.Load() != 2 || second.done.Load() != 2 {
		t.Errorf("Done ran %d and %d times, want 2 each", first.done.Load(), second.done.Load())
	}
	if first.reqBytes.Load() != int64(len("proxied body")) {
		t.Errorf("request body filter saw %d bytes", first.reqBytes.Load())
	}
}

func toBytes(ss []string) [][]byte {
	out := make([][]byte, len(ss))
	for i, s := range ss {
		out[i] = []byte(s)
	}
	return out
}

func TestOptionsFromConf(t *testing.T) {
	c, err := conf.FromYAML([]byte("version: 1\nmax_retries: 3\nupstream_keepalive_pool_size: 9\n"))
	if err != nil {
		t.Fatal(err)
	}
	o, err := proxy.OptionsFromConf(c)
	if err != nil {
		t.Fatal(err)
	}
	if o.MaxRetries != 3 || o.Connector == nil {
		t.Fatalf("options %+v", o)
	}
	o.Connector.Close()
}
