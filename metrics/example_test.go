package metrics_test

import (
	"log"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/metrics"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

// A proxy with the built-in metrics, a metric of the program's own, and the /metrics service
// on its own address.
func ExampleNewProxy() {
	reg := metrics.NewRegistry()
	m, err := metrics.NewProxy(reg)
	if err != nil {
		log.Fatal(err)
	}
	logins := prometheus.NewCounter(prometheus.CounterOpts{Name: "myapp_logins_total", Help: "Logins seen."})
	reg.MustRegister(logins)

	app, err := pingora.NewReverseProxyApp("127.0.0.1:9000")
	if err != nil {
		log.Fatal(err)
	}
	p := proxy.New(app, proxy.Options{Observers: []proxy.Observer{m}})
	if err := metrics.WatchConnector(reg, p.Connector()); err != nil {
		log.Fatal(err)
	}
	proxySvc := server.NewListeningService("proxy", m.CountConns(p))
	proxySvc.AddTCP("127.0.0.1:6188")
	metricsSvc := metrics.NewService(reg)
	metricsSvc.AddTCP("127.0.0.1:6192")

	srv := server.New(server.Options{})
	srv.AddService(proxySvc)
	srv.AddService(metricsSvc)
	// srv.Run(context.Background()) serves until a signal.

	// Output:
}
