package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/gateway"
	"github.com/pingora-go/pingora/server"
)

// loadGateway reads the proxy part of the configuration file at path: nil when the file has
// none of the gateway's keys (it configures the server only), an error naming the lines of
// its problems when it is invalid.
func loadGateway(path string) (*gateway.Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if !gateway.Has(data) {
		return nil, nil
	}
	gc, err := gateway.Parse(data, path)
	if err != nil {
		return nil, fmt.Errorf("configuration %s is invalid:\n%w", path, err)
	}
	return gc, nil
}

// quickFlags reports a quick-mode flag given together with a gateway configuration.
func (f *flags) quickFlags() string {
	switch {
	case f.listen != "":
		return "--listen"
	case len(f.upstreams) > 0:
		return "--upstream"
	case f.metrics != "":
		return "--metrics"
	case f.accessLog != "":
		return "--access-log"
	case f.compress:
		return "--compress"
	case f.h2c:
		return "--h2c"
	case f.upstreamH2:
		return "--upstream-h2"
	case len(f.tls.certs) > 0 || len(f.tls.keys) > 0 || f.tls.clientCA != "" || f.tls.upstreamTLS ||
		f.tls.upstreamSNI != "" || f.tls.upstreamCA != "":
		return "the TLS flags"
	case f.cacheMemory != "" || f.cacheDir != "" || f.cacheDisk != "":
		return "the cache flags"
	case f.proxyProtocol:
		return "--proxy-protocol"
	}
	return ""
}

// runGateway runs the listeners, services and routes of a configuration file (-c): the
// config-driven proxy. SIGHUP reloads the file.
func runGateway(f *flags, c *conf.ServerConf, gc *gateway.Config, stdout io.Writer) error {
	if q := f.quickFlags(); q != "" {
		return fmt.Errorf("%s cannot be combined with a configuration file that has listeners; put them in the file", q)
	}
	c.Unknown = slices.DeleteFunc(c.Unknown, func(k conf.UnknownKey) bool { return slices.Contains(gateway.Keys, k.Key) })
	if f.dump {
		out, err := c.ToYAML()
		if err != nil {
			return err
		}
		g, err := gc.YAML()
		if err != nil {
			return err
		}
		_, err = stdout.Write(append(out, g...))
		return err
	}
	if f.opt.Test {
		c.WarnUnknown(slog.New(slog.NewTextHandler(os.Stderr, nil)), f.opt.Conf)
		if err := gateway.Check(gc); err != nil {
			return fmt.Errorf("configuration %s is invalid:\n%w", f.opt.Conf, err)
		}
		fmt.Fprintf(stdout, "pingora: configuration %s test is successful\n", f.opt.Conf)
		return nil
	}

	logger, sopts, err := serverSetup(f, c)
	if err != nil {
		return err
	}
	var svcs []server.Service
	var srv *server.Server
	if opensServices(f, c) {
		conn, err := newConnector(c, &sopts)
		if err != nil {
			return err
		}
		gopts := gateway.Options{Connector: conn, MaxRetries: c.MaxRetries, Logger: logger, WatchInterval: f.watch}
		if f.reloadUpgrade || server.IsDaemonChild() {
			// A reload that changes listeners, access_log or metrics hands over to a new
			// process running the new file.
			gopts.OnFixedChange = func([]string) { srv.Upgrade() }
		}
		g, err := gateway.New(gc, gopts)
		if err != nil {
			return fmt.Errorf("configuration %s is invalid:\n%w", f.opt.Conf, err)
		}
		if svcs, err = g.Services(); err != nil {
			return err
		}
		sopts.Reopeners = append(sopts.Reopeners, g.Reopeners()...)
		logger.Info("serving the configuration", "file", f.opt.Conf, "listeners", len(gc.Listeners), "services", len(gc.Services), "upstreams", len(gc.Upstreams))
	}
	srv = server.New(sopts)
	for _, svc := range svcs {
		srv.AddService(svc)
	}
	return srv.Run(context.Background())
}
