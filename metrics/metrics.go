// Package metrics exposes Prometheus metrics: a registry with the Go runtime and process
// collectors, a service that serves it, and the proxy's built-in metrics as a proxy.Observer.
package metrics

import (
	"compress/gzip"
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

// NewRegistry returns a registry holding the Go runtime and process collectors. Users register
// their own metrics on it beside the proxy's.
func NewRegistry() *prometheus.Registry {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg
}

// ServiceName is the name of the metrics service, as in the reference.
const ServiceName = "Prometheus metric HTTP"

// NewService returns a listening service that serves g in the Prometheus text format on every
// path, gzip-compressed when the scraper accepts it (level 7, as in the reference). Add an
// address to it and add it to the server.
func NewService(g prometheus.Gatherer) *server.ListeningService {
	h := promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorHandling:       promhttp.ContinueOnError,
		MaxRequestsInFlight: 8,
		Timeout:             10 * time.Second,
	})
	return server.NewListeningService(ServiceName, server.NewHTTPApp(gzipLevel7(h)))
}

// gzipLevel7 compresses responses with gzip level 7 when the client accepts it (promhttp's own
// compression uses the default level).
func gzipLevel7(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !acceptsGzip(r) {
			h.ServeHTTP(w, r)
			return
		}
		r.Header.Del("Accept-Encoding")
		gz, _ := gzip.NewWriterLevel(w, 7)
		defer gz.Close()
		w.Header().Set("Content-Encoding", "gzip")
		w.Header().Add("Vary", "Accept-Encoding")
		h.ServeHTTP(&gzipWriter{ResponseWriter: w, w: gz}, r)
	})
}

func acceptsGzip(r *http.Request) bool {
	for _, v := range r.Header.Values("Accept-Encoding") {
		for _, t := range strings.Split(v, ",") {
			coding, _, _ := strings.Cut(t, ";")
			if strings.TrimSpace(coding) == "gzip" {
				return true
			}
		}
	}
	return false
}

type gzipWriter struct {
	http.ResponseWriter
	w *gzip.Writer
}

func (g *gzipWriter) Write(p []byte) (int, error) { return g.w.Write(p) }

// Proxy holds the proxy's built-in metrics. It is a proxy.Observer: put it in
// proxy.Options.Observers, and wrap the proxy with CountConns to count downstream connections.
// It is safe for concurrent use.
type Proxy struct {
	requests        *prometheus.CounterVec
	duration        prometheus.Histogram
	connect         *prometheus.HistogramVec
	upstreamConns   *prometheus.CounterVec
	downstreamConns prometheus.Counter
	downstreamOpen  prometheus.Gauge
	upstreamInUse   prometheus.Gauge
	bytesIn         prometheus.Counter
	bytesOut        prometheus.Counter
	retries         prometheus.Counter
	errs            *prometheus.CounterVec

	mu    sync.Mutex // guards inUse
	inUse map[*proxy.Session]int
}

var _ proxy.Observer = (*Proxy)(nil)

// Metric names of the proxy, under the namespace "pingora".
const namespace = "pingora"

// NewProxy creates the proxy metrics and registers them on reg.
func NewProxy(reg prometheus.Registerer) (*Proxy, error) {
	m := &Proxy{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "http_requests_total",
			Help: "Downstream requests finished, by method and status class (1xx..5xx, or \"none\" when no response was sent)."},
			[]string{"method", "status_class"}),
		duration: prometheus.NewHistogram(prometheus.HistogramOpts{Namespace: namespace, Name: "http_request_duration_seconds",
			Help: "Time from a request head read to its response finished.", Buckets: prometheus.DefBuckets}),
		connect: prometheus.NewHistogramVec(prometheus.HistogramOpts{Namespace: namespace, Name: "upstream_connect_duration_seconds",
			Help:    "Time to get an upstream connection, from the pool (reused=\"true\") or by dialing.",
			Buckets: []float64{.0001, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}},
			[]string{"reused"}),
		upstreamConns: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "upstream_connections_total",
			Help: "Upstream connections handed to requests: reused from the pool or new. Reuse ratio = reused / all."},
			[]string{"reused"}),
		downstreamConns: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "downstream_connections_total",
			Help: "Downstream connections accepted."}),
		downstreamOpen: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "downstream_connections_active",
			Help: "Downstream connections open now."}),
		upstreamInUse: prometheus.NewGauge(prometheus.GaugeOpts{Namespace: namespace, Name: "upstream_connections_active",
			Help: "Upstream connections held by requests in flight."}),
		bytesIn: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "downstream_received_body_bytes_total",
			Help: "Request body bytes read from clients."}),
		bytesOut: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "downstream_sent_body_bytes_total",
			Help: "Response body bytes sent to clients."}),
		retries: prometheus.NewCounter(prometheus.CounterOpts{Namespace: namespace, Name: "upstream_retries_total",
			Help: "Upstream attempts beyond the first of each request."}),
		errs: prometheus.NewCounterVec(prometheus.CounterOpts{Namespace: namespace, Name: "errors_total",
			Help: "Requests that ended with an error, by error type and source (upstream, downstream, internal)."},
			[]string{"type", "source"}),
		inUse: map[*proxy.Session]int{},
	}
	for _, c := range []prometheus.Collector{m.requests, m.duration, m.connect, m.upstreamConns, m.downstreamConns,
		m.downstreamOpen, m.upstreamInUse, m.bytesIn, m.bytesOut, m.retries, m.errs} {
		if err := reg.Register(c); err != nil {
			return nil, err
		}
	}
	return m, nil
}

// WatchConnector registers, on reg, gauges of c's pool: idle upstream connections kept.
func WatchConnector(reg prometheus.Registerer, c *connector.Connector) error {
	return reg.Register(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: namespace, Name: "upstream_connections_idle",
		Help: "Idle upstream connections kept in the pool."}, func() float64 { return float64(c.Stats().Pool.Idle) }))
}

// UpstreamConnected counts a connection handed to a request and how long getting it took.
func (m *Proxy) UpstreamConnected(s *proxy.Session, reused bool, took time.Duration) {
	r := strconv.FormatBool(reused)
	m.upstreamConns.WithLabelValues(r).Inc()
	m.connect.WithLabelValues(r).Observe(took.Seconds())
	m.mu.Lock()
	m.inUse[s]++
	m.mu.Unlock()
	m.upstreamInUse.Inc()
}

// RequestDone counts the finished request.
func (m *Proxy) RequestDone(s *proxy.Session) {
	m.mu.Lock()
	n, held := m.inUse[s]
	if held {
		delete(m.inUse, s)
	}
	m.mu.Unlock()
	if held {
		m.upstreamInUse.Sub(float64(n))
	}
	m.requests.WithLabelValues(methodLabel(s.Req().Method()), statusClass(s.ResponseStatus())).Inc()
	if !s.Timings.Start.IsZero() && !s.Timings.End.IsZero() {
		m.duration.Observe(s.Timings.End.Sub(s.Timings.Start).Seconds())
	}
	m.bytesIn.Add(float64(s.BodyBytesReceived()))
	m.bytesOut.Add(float64(s.BodyBytesSent()))
	if a := s.Attempts(); a > 1 {
		m.retries.Add(float64(a - 1))
	}
	if err := s.Err(); err != nil {
		typ, src := "unknown", "unset"
		var pe *perr.Error
		if errors.As(err, &pe) {
			typ, src = pe.Type.Name(), pe.Source.String()
		}
		m.errs.WithLabelValues(typ, src).Inc()
	}
}

// methods are the method labels kept as they are; any other method counts as "OTHER", so a
// client cannot grow the label set.
var methods = [...]string{"GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"}

func methodLabel(m []byte) string {
	for _, k := range methods {
		if string(m) == k {
			return k
		}
	}
	return "OTHER"
}

var classes = [...]string{"none", "1xx", "2xx", "3xx", "4xx", "5xx"}

func statusClass(code int) string {
	if code < 100 || code > 599 {
		return classes[0]
	}
	return classes[code/100]
}

// CountConns returns app wrapped so that downstream connections are counted: accepted in
// total and open now.
func (m *Proxy) CountConns(app server.App) server.App { return &countingApp{app: app, m: m} }

type countingApp struct {
	app server.App
	m   *Proxy
}

func (a *countingApp) ServeConn(shutdown context.Context, c net.Conn) {
	a.m.downstreamConns.Inc()
	a.m.downstreamOpen.Inc()
	defer a.m.downstreamOpen.Dec()
	a.app.ServeConn(shutdown, c)
}
