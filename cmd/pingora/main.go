// Command pingora runs a pingora-go reverse proxy.
//
// With no arguments it runs an embedded demo: a small origin server inside the same process
// and a proxy in front of it on 127.0.0.1:6188, so that `curl localhost:6188/` answers on a
// fresh machine. With --listen and --upstream it proxies to real servers:
//
//	pingora --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000 --upstream 127.0.0.1:9001
//
// It serves until SIGTERM (graceful shutdown) or SIGINT (fast shutdown).
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"

	"github.com/spf13/pflag"

	"github.com/pingora-go/pingora"
)

// DemoListen is where the embedded demo proxy listens.
const DemoListen = "127.0.0.1:6188"

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "pingora:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	fs := pflag.NewFlagSet("pingora", pflag.ContinueOnError)
	listen := fs.String("listen", "", "address to accept HTTP on, host:port (default "+DemoListen+" in demo mode)")
	upstreams := fs.StringArray("upstream", nil, "upstream server host:port; repeat for round robin over several")
	if err := fs.Parse(args); err != nil {
		return err
	}
	logger := slog.New(slog.NewTextHandler(os.Stderr, nil))
	slog.SetDefault(logger)
	if len(*upstreams) == 0 {
		if *listen == "" {
			*listen = DemoListen
		}
		origin, err := startDemoOrigin()
		if err != nil {
			return err
		}
		defer origin.Close()
		logger.Info("demo mode: proxying to the embedded origin", "listen", *listen, "origin", origin.Addr().String())
		*upstreams = []string{origin.Addr().String()}
	}
	if *listen == "" {
		return fmt.Errorf("--listen is required with --upstream")
	}
	srv, err := pingora.NewReverseProxy(*listen, *upstreams...)
	if err != nil {
		return err
	}
	return srv.Run(context.Background())
}
