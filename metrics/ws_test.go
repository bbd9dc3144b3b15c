package metrics

import (
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/pingora-go/pingora/protocols/ws"
)

// loopback returns the two ends of a TCP connection on 127.0.0.1.
func loopback(t *testing.T) (net.Conn, net.Conn) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	a, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	b, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []net.Conn{a, b} {
		c.SetDeadline(time.Now().Add(10 * time.Second))
		t.Cleanup(func() { c.Close() })
	}
	return a, b
}

func TestWatchWebSocket(t *testing.T) {
	stats := new(ws.Stats)
	reg := prometheus.NewRegistry()
	if err := WatchWebSocket(reg, stats); err != nil {
		t.Fatal(err)
	}
	client, pc := loopback(t)
	ps, server := loopback(t)
	done := make(chan error, 1)
	go func() {
		done <- ws.Relay(ws.Endpoint{Conn: pc}, ws.Endpoint{Conn: ps}, &ws.Options{Stats: stats},
			func(m *ws.Message) (ws.Action, error) {
				if string(m.Payload) == "drop" {
					return ws.Drop, nil
				}
				return ws.Pass, nil
			})
	}()
	cw := ws.NewWriter(client, ws.ClientSide, nil)
	cw.WriteMessage(ws.OpText, []byte("drop"), false)
	cw.WriteMessage(ws.OpText, []byte("hello"), false)
	if m, err := ws.NewReader(server, ws.ServerSide, nil).ReadMessage(); err != nil || string(m.Payload) != "hello" {
		t.Fatalf("server read %v %v", m, err)
	}
	if got := gather(t, reg)["pingora_websocket_sessions_active"]; got != 1 {
		t.Fatalf("active sessions %v", got)
	}
	client.Close()
	server.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{
		"pingora_websocket_sessions_active":                            0,
		`pingora_websocket_sessions_total{mode="filtered"}`:            1,
		`pingora_websocket_sessions_total{mode="raw"}`:                 0,
		`pingora_websocket_messages_total{direction="client"}`:         2,
		`pingora_websocket_messages_total{direction="server"}`:         0,
		`pingora_websocket_dropped_messages_total{direction="client"}`: 1,
		`pingora_websocket_dropped_messages_total{direction="server"}`: 0,
		`pingora_websocket_received_bytes_total{direction="client"}`:   21,
		`pingora_websocket_received_bytes_total{direction="server"}`:   0,
	}
	got := gather(t, reg)
	for k, v := range want {
		if got[k] != v {
			t.Errorf("%s = %v, want %v", k, got[k], v)
		}
	}
	if len(got) != len(want) {
		t.Errorf("gathered %v", got)
	}
}

// gather returns the values of reg's metrics by name and labels.
func gather(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			if lp := m.GetLabel(); len(lp) > 0 {
				key += "{" + lp[0].GetName() + `="` + lp[0].GetValue() + `"}`
			}
			v := m.GetCounter().GetValue()
			if mf.GetType() == dto.MetricType_GAUGE {
				v = m.GetGauge().GetValue()
			}
			out[key] = v
		}
	}
	return out
}
