package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/pingora-go/pingora/protocols/ws"
)

// webSocketCollector exports the counts of a ws.Stats, read at each scrape.
type webSocketCollector struct {
	stats                    *ws.Stats
	active, sessions         *prometheus.Desc
	messages, bytes, dropped *prometheus.Desc
}

// WatchWebSocket registers, on reg, the metrics of the WebSocket sessions counted in stats
// (nil for ws.DefaultStats, where the proxy counts unless WebSocketOptions names other
// Stats): sessions open now and in all, and messages, bytes and dropped messages per
// direction ("client" for client to server, "server" for server to client).
func WatchWebSocket(reg prometheus.Registerer, stats *ws.Stats) error {
	if stats == nil {
		stats = ws.DefaultStats
	}
	dir := []string{"direction"}
	return reg.Register(&webSocketCollector{
		stats: stats,
		active: prometheus.NewDesc(namespace+"_websocket_sessions_active",
			"WebSocket sessions being relayed now.", nil, nil),
		sessions: prometheus.NewDesc(namespace+"_websocket_sessions_total",
			"WebSocket sessions relayed, by mode: \"raw\" bytes or \"filtered\" message by message.", []string{"mode"}, nil),
		messages: prometheus.NewDesc(namespace+"_websocket_messages_total",
			"WebSocket data messages read, by the side that sent them (filtered sessions only).", dir, nil),
		bytes: prometheus.NewDesc(namespace+"_websocket_received_bytes_total",
			"Bytes read from each side of WebSocket sessions after the handshake, frame heads included.", dir, nil),
		dropped: prometheus.NewDesc(namespace+"_websocket_dropped_messages_total",
			"WebSocket messages a filter dropped, by the side that sent them.", dir, nil),
	})
}

func (c *webSocketCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.active, c.sessions, c.messages, c.bytes, c.dropped} {
		ch <- d
	}
}

func (c *webSocketCollector) Collect(ch chan<- prometheus.Metric) {
	s := c.stats.Snapshot()
	ch <- prometheus.MustNewConstMetric(c.active, prometheus.GaugeValue, float64(s.Active))
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.CounterValue, float64(s.Sessions-s.Filtered), "raw")
	ch <- prometheus.MustNewConstMetric(c.sessions, prometheus.CounterValue, float64(s.Filtered), "filtered")
	for d, label := range [2]string{ws.FromClient: "client", ws.FromServer: "server"} {
		ch <- prometheus.MustNewConstMetric(c.messages, prometheus.CounterValue, float64(s.Messages[d]), label)
		ch <- prometheus.MustNewConstMetric(c.bytes, prometheus.CounterValue, float64(s.Bytes[d]), label)
		ch <- prometheus.MustNewConstMetric(c.dropped, prometheus.CounterValue, float64(s.Dropped[d]), label)
	}
}
