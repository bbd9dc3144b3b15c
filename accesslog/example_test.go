package accesslog_test

import (
	"log"
	"log/slog"
	"os"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/accesslog"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
)

// An access log of JSON lines to a file that logrotate can rotate (SIGUSR1 reopens it).
func ExampleNew() {
	f, err := server.OpenLogFile(os.DevNull)
	if err != nil {
		log.Fatal(err)
	}
	access := accesslog.New(slog.New(slog.NewJSONHandler(f, nil)))
	app, err := pingora.NewReverseProxyApp("127.0.0.1:9000")
	if err != nil {
		log.Fatal(err)
	}
	svc := proxy.NewService("proxy", app, proxy.Options{Observers: []proxy.Observer{access}})
	svc.AddTCP("127.0.0.1:6188")
	srv := server.New(server.Options{Reopeners: []server.Reopener{f}})
	srv.AddService(svc)
	// srv.Run(context.Background())

	// Output:
}
