package h2

import (
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/net/http2"

	"github.com/pingora-go/pingora/header"
)

// echo answers with the request's method, target and fields in x- fields, its body as the
// body, and its trailers, renamed echo-<name>, as trailers. x-status picks the status.
func echo(s *ServerStream) {
	var body []byte
	for {
		p, err := s.ReadBody()
		body = append(body, p...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return
		}
	}
	status := 200
	if v, ok := s.Req.Get("x-status"); ok {
		status, _ = strconv.Atoi(string(v))
	}
	resp := header.NewResponse(status)
	resp.Append("x-method", string(s.Req.Method()))
	resp.Append("x-target", string(s.Req.Target()))
	var names []string
	for _, f := range s.Req.All() {
		names = append(names, string(f.Name)+"="+string(f.Value))
	}
	resp.Append("x-fields", strings.Join(names, ";"))
	resp.Append("Connection", "keep-alive")
	if err := s.WriteResponseHeader(resp); err != nil {
		return
	}
	if len(body) > 0 {
		if err := s.WriteBody(body); err != nil {
			return
		}
	}
	var tr header.Fields
	for _, f := range s.Trailers().All() {
		tr.AppendBytes(append([]byte("echo-"), f.Name...), f.Value)
	}
	s.FinishResponse(&tr)
}

type exchange struct {
	status   int
	resp     header.ResponseHeader
	body     []byte
	trailers header.Fields
}

// exchangeOn sends req with the body pieces and trailers on a new stream of cc.
func exchangeOn(t *testing.T, cc *ClientConn, req *header.RequestHeader, body []string, trailers *header.Fields) (*exchange, error) {
	t.Helper()
	s, err := cc.NewStream(context.Background())
	if err != nil {
		return nil, err
	}
	defer s.Close()
	end := body == nil && trailers == nil
	if err := s.WriteRequestHeader(req, end); err != nil {
		return nil, err
	}
	if !end {
		for _, p := range body {
			if err := s.WriteBody([]byte(p)); err != nil {
				return nil, err
			}
		}
		if err := s.FinishRequest(trailers); err != nil {
			return nil, err
		}
	}
	if err := s.ReadResponseHeader(); err != nil {
		return nil, err
	}
	x := &exchange{status: s.Resp.Status}
	x.resp.CopyFrom(&s.Resp)
	for {
		p, err := s.ReadBody()
		x.body = append(x.body, p...)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	x.trailers.CopyFrom(s.Trailers())
	return x, nil
}

func fields(kv ...string) *header.Fields {
	var f header.Fields
	for i := 0; i+1 < len(kv); i += 2 {
		f.Append(kv[i], kv[i+1])
	}
	return &f
}

func TestRoundTrip(t *testing.T) {
	srvTLS, cliTLS := testTLS(t)
	big := strings.Repeat("0123456789abcdef", 20000)
	cases := []struct {
		name      string
		method    string
		target    string
		fields    []string
		body      []string
		trailers  *header.Fields
		wantBody  string
		wantField string // a field the server must have seen, "name=value"
		noField   string // a field name the server must not have seen
		wantTrail string // a response trailer, "name=value"
	}{
		{name: "get", method: "GET", target: "/a?b=c", fields: []string{"Host", "example.com", "Accept", "*/*"},
			wantField: "host=example.com", noField: "connection"},
		{name: "connection fields dropped", method: "GET", target: "/",
			fields:    []string{"Host", "h", "Connection", "keep-alive, x-hop", "X-Hop", "1", "Keep-Alive", "5", "TE", "trailers", "Upgrade", "foo"},
			wantField: "te=trailers", noField: "x-hop"},
		{name: "duplicated port trimmed", method: "GET", target: "/", fields: []string{"Host", "a.test:1:2"},
			wantField: "host=a.test:1"},
		{name: "absolute form", method: "GET", target: "http://abs.test:8080/p?q", wantField: "host=abs.test:8080"},
		{name: "post with length", method: "POST", target: "/up", fields: []string{"Host", "h", "Content-Length", "5"},
			body: []string{"he", "llo"}, wantBody: "hello", wantField: "content-length=5"},
		{name: "post streamed", method: "POST", target: "/up", fields: []string{"Host", "h"},
			body: []string{"a", "b", "c"}, wantBody: "abc"},
		{name: "big body", method: "PUT", target: "/big", fields: []string{"Host", "h"},
			body: []string{big[:100000], big[100000:]}, wantBody: big},
		{name: "request trailers", method: "POST", target: "/t", fields: []string{"Host", "h", "Trailer", "X-Sum"},
			body: []string{"data"}, trailers: fields("X-Sum", "42"), wantBody: "data", wantTrail: "echo-x-sum=42"},
		{name: "trailers without body", method: "POST", target: "/t", fields: []string{"Host", "h", "Trailer", "grpc-status"},
			body: []string{}, trailers: fields("grpc-status", "0"), wantTrail: "echo-grpc-status=0"},
		{name: "no content", method: "DELETE", target: "/x", fields: []string{"Host", "h", "X-Status", "204"}},
	}
	for _, secure := range []bool{false, true} {
		var sTLS, cTLS *tls.Config
		if secure {
			sTLS, cTLS = srvTLS, cliTLS
		}
		addr := serve(t, nil, sTLS, nil, echo)
		cc := dial(t, addr, cTLS, nil)
		for _, tc := range cases {
			t.Run(tc.name+"/tls="+strconv.FormatBool(secure), func(t *testing.T) {
				req := header.NewRequest(tc.method, tc.target)
				for i := 0; i+1 < len(tc.fields); i += 2 {
					req.Append(tc.fields[i], tc.fields[i+1])
				}
				x, err := exchangeOn(t, cc, req, tc.body, tc.trailers)
				if err != nil {
					t.Fatal(err)
				}
				wantStatus := 200
				if v, ok := req.Get("X-Status"); ok {
					wantStatus, _ = strconv.Atoi(string(v))
				}
				if x.status != wantStatus || x.resp.Version != header.HTTP2 {
					t.Fatalf("status %d version %v", x.status, x.resp.Version)
				}
				if string(x.body) != tc.wantBody {
					t.Fatalf("body %d bytes, want %d", len(x.body), len(tc.wantBody))
				}
				if got := x.resp.Value("x-method"); got != tc.method {
					t.Errorf("method %q", got)
				}
				seen := ";" + x.resp.Value("x-fields") + ";"
				if tc.wantField != "" && !strings.Contains(seen, ";"+tc.wantField+";") {
					t.Errorf("server saw %s, want %s", seen, tc.wantField)
				}
				if tc.noField != "" && strings.Contains(seen, ";"+tc.noField+"=") {
					t.Errorf("server saw %s", seen)
				}
				if x.resp.Has("connection") {
					t.Errorf("response kept a connection field")
				}
				if tc.wantTrail != "" {
					name, value, _ := strings.Cut(tc.wantTrail, "=")
					if got := x.trailers.Value(name); got != value {
						t.Errorf("trailer %s = %q, want %q (all: %v)", name, got, value, x.trailers.All())
					}
				}
			})
		}
		if n := cc.ActiveStreams(); n != 0 {
			t.Errorf("%d streams still active", n)
		}
	}
}

// TestClientAgainstXNetServer checks the client against x/net's own HTTP/2 server.
func TestClientAgainstXNetServer(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	srv := &http2.Server{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go srv.ServeConn(c, &http2.ServeConnOpts{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				body, _ := io.ReadAll(r.Body)
				w.Header().Set("X-Authority", r.Host)
				w.Header().Set("X-Path", r.RequestURI)
				w.Header().Set("X-Trailer-In", r.Trailer.Get("X-Check"))
				w.Header().Set("X-UA", strconv.Itoa(len(r.Header["User-Agent"])))
				w.Header().Set("Trailer", "Grpc-Status")
				w.WriteHeader(201)
				w.Write(bytes.ToUpper(body))
				w.Header().Set("Grpc-Status", "0")
				w.Header().Set(http.TrailerPrefix+"Grpc-Message", "ok")
			})})
		}
	}()
	cc := dial(t, ln.Addr().String(), nil, nil)
	req := header.NewRequest("POST", "/svc/Method")
	req.Append("Host", "upstream.test")
	req.Append("Trailer", "X-Check")
	req.Append("Transfer-Encoding", "chunked")
	x, err := exchangeOn(t, cc, req, []string{"ping"}, fields("X-Check", "yes"))
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"status", strconv.Itoa(x.status), "201"},
		{"body", string(x.body), "PING"},
		{"authority", x.resp.Value("x-authority"), "upstream.test"},
		{"path", x.resp.Value("x-path"), "/svc/Method"},
		{"request trailer", x.resp.Value("x-trailer-in"), "yes"},
		{"no default user agent", x.resp.Value("x-ua"), "0"},
		{"declared trailer", x.trailers.Value("grpc-status"), "0"},
		{"undeclared trailer", x.trailers.Value("grpc-message"), "ok"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
}

// TestServerAgainstXNetClient checks the server against x/net's own HTTP/2 client.
func TestServerAgainstXNetClient(t *testing.T) {
	addr := serve(t, nil, nil, nil, echo)
	tr := &http2.Transport{AllowHTTP: true, DialTLSContext: func(ctx context.Context, network, addr string, _ *tls.Config) (net.Conn, error) {
		var d net.Dialer
		return d.DialContext(ctx, network, addr)
	}}
	defer tr.CloseIdleConnections()
	req, _ := http.NewRequest("PUT", "http://"+addr+"/x?y", strings.NewReader("body"))
	req.Trailer = http.Header{"X-T": nil}
	req.Header.Set("X-Status", "202")
	req.Trailer.Set("X-T", "v")
	res, err := tr.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	body, err := io.ReadAll(res.Body)
	res.Body.Close()
	if err != nil {
		t.Fatal(err)
	}
	if res.StatusCode != 202 || string(body) != "body" || res.Header.Get("X-Target") != "/x?y" {
		t.Fatalf("%d %q %v", res.StatusCode, body, res.Header)
	}
	if got := res.Trailer.Get("Echo-X-T"); got != "v" {
		t.Fatalf("trailer %q (%v)", got, res.Trailer)
	}
}

func TestWriteResponseHeaderErrors(t *testing.T) {
	got := make(chan []error, 1)
	addr := serve(t, nil, nil, nil, func(s *ServerStream) {
		var errs []error
		errs = append(errs, s.WriteBody([]byte("x")))
		errs = append(errs, s.WriteResponseHeader(header.NewResponse(101)))
		errs = append(errs, s.WriteResponseHeader(header.NewResponse(103)))
		errs = append(errs, s.WriteResponseHeader(header.NewResponse(200)))
		errs = append(errs, s.WriteResponseHeader(header.NewResponse(200)))
		errs = append(errs, s.FinishResponse(nil))
		got <- errs
	})
	cc := dial(t, addr, nil, nil)
	if _, err := exchangeOn(t, cc, header.NewRequest("GET", "/"), nil, nil); err != nil {
		t.Fatal(err)
	}
	errs := <-got
	want := []bool{true, true, false, false, true, false}
	for i, e := range errs {
		if (e != nil) != want[i] {
			t.Errorf("step %d: error %v", i, e)
		}
	}
	if !errors.Is(errs[4], ErrHeadAlreadySent) {
		t.Errorf("second head: %v", errs[4])
	}
}
