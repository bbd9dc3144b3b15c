// Command pingora runs a pingora-go reverse proxy.
//
// With -c and a configuration file that has listeners and services, it runs the proxy the
// file describes: listeners with TLS and HTTP/2, routes matched by host, path, method and
// header, upstream pools with load balancing and health checks, redirects, static responses
// and files, and per-route policies (package gateway; docs/user_guide/binary.md is the
// reference). SIGHUP reloads the file; -t checks it, reporting every problem with its line;
// --dump-config prints it with the defaults filled in.
//
// With no arguments it runs an embedded demo: a small origin server inside the same process
// and a proxy in front of it on 127.0.0.1:6188, so that `curl localhost:6188/` answers on a
// fresh machine. With --listen and --upstream it proxies to real servers:
//
//	pingora --listen 127.0.0.1:8080 --upstream 127.0.0.1:9000 --upstream 127.0.0.1:9001
//
// TLS: --tls-cert and --tls-key (repeat the pair for several certificates chosen by SNI)
// terminate TLS on the listener, --tls-client-ca requires client certificates signed by the
// CAs of a PEM file; --upstream-tls speaks TLS to the upstreams, verifying their certificate
// for --upstream-sni (default: the upstream's host) against --upstream-ca (default: ca_file of
// the configuration, else the system roots). Certificate files are reloaded when they change
// and on SIGHUP.
//
// The server flags of the reference combine with these: -c/--conf names the YAML server
// configuration, -d/--daemon runs in the background, -u/--upgrade takes the listening sockets
// over from a running instance, -t/--test checks the configuration and exits.
//
// Signals: SIGTERM graceful shutdown, SIGINT fast shutdown, SIGQUIT hand the sockets to a new
// instance started with -u and drain, SIGUSR1 reopen the log files, SIGHUP reload the TLS
// certificates (and the configuration file of a -c proxy).
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/pflag"

	"github.com/pingora-go/pingora"
	"github.com/pingora-go/pingora/accesslog"
	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/storage/disk"
	"github.com/pingora-go/pingora/cache/storage/memory"
	"github.com/pingora-go/pingora/compression"
	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/connector"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/metrics"
	"github.com/pingora-go/pingora/protocols/proxyproto"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/server"
	"github.com/pingora-go/pingora/upstream"
)

// DemoListen is where the embedded demo proxy listens.
const DemoListen = "127.0.0.1:6188"

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "pingora:", err)
		os.Exit(1)
	}
}

// flags are the command line: the server options of the reference and the quick-mode proxy.
type flags struct {
	opt           conf.Opt
	listen        string
	upstreams     []string
	metrics       string
	accessLog     string
	compress      bool
	tls           tlsFlags
	h2c           bool
	proxyProtocol bool
	upstreamH2    bool
	dump          bool
	watch         time.Duration
	reloadUpgrade bool

	// cacheMemory, cacheDir and cacheDisk turn the HTTP cache on (see newCache).
	cacheMemory, cacheDir, cacheDisk string
}

func parseFlags(args []string, out io.Writer) (*flags, *pflag.FlagSet, error) {
	f := &flags{}
	fs := pflag.NewFlagSet("pingora", pflag.ContinueOnError)
	fs.SetOutput(out)
	f.opt.AddFlags(fs)
	fs.StringVar(&f.listen, "listen", "", "address to accept HTTP on: host:port or unix:/path (default "+DemoListen+" in demo mode)")
	fs.StringArrayVar(&f.upstreams, "upstream", nil, "upstream server host:port; repeat for round robin over several")
	fs.StringVar(&f.metrics, "metrics", "", "address to serve Prometheus metrics on, host:port")
	fs.StringVar(&f.accessLog, "access-log", "", "file to append the access log to (JSON lines); - for stderr")
	fs.BoolVar(&f.compress, "compress", false, "compress responses (zstd, br, gzip by the client's Accept-Encoding) and decompress codings the client does not accept")
	fs.BoolVar(&f.proxyProtocol, "proxy-protocol", false, "require a PROXY protocol header (v1 or v2, from a load balancer) at the start of every connection on --listen; requests see the client address it carries")
	fs.BoolVar(&f.h2c, "h2c", false, "also accept cleartext HTTP/2 with prior knowledge on --listen (TLS listeners offer h2 by ALPN always)")
	fs.BoolVar(&f.upstreamH2, "upstream-h2", false, "speak HTTP/2 to the upstreams: cleartext with prior knowledge, or with --upstream-tls by ALPN, falling back to HTTP/1.1 when the upstream does not choose h2")
	fs.StringArrayVar(&f.tls.certs, "tls-cert", nil, "PEM certificate chain to terminate TLS with; repeat with --tls-key for several, chosen by SNI (the first is the default)")
	fs.StringArrayVar(&f.tls.keys, "tls-key", nil, "PEM private key of the --tls-cert at the same position")
	fs.StringVar(&f.tls.clientCA, "tls-client-ca", "", "PEM CA bundle: require client certificates signed by it (mutual TLS)")
	fs.BoolVar(&f.tls.upstreamTLS, "upstream-tls", false, "speak TLS to the upstreams, verifying their certificates")
	fs.StringVar(&f.tls.upstreamSNI, "upstream-sni", "", "server name to send to and verify for the upstreams (default: the upstream's host)")
	fs.StringVar(&f.tls.upstreamCA, "upstream-ca", "", "PEM CA bundle verifying the upstreams (default: ca_file, else the system roots)")
	fs.StringVar(&f.cacheMemory, "cache-memory", "", "cache every cacheable response (RFC 9111) in memory, up to SIZE bytes (suffixes k, M, G, KiB, MiB, GiB)")
	fs.StringVar(&f.cacheDir, "cache-dir", "", "cache every cacheable response on disk in DIR (with --cache-disk); kept across restarts")
	fs.StringVar(&f.cacheDisk, "cache-disk", "", "the size bound of --cache-dir (default 1GiB)")
	fs.BoolVar(&f.reloadUpgrade, "reload-upgrade", false, "with a -c file of listeners and services: when a reload changes listeners, access_log or metrics, start a new process on the new file and hand it the listening sockets (always on in daemon mode)")
	fs.DurationVar(&f.watch, "watch-config", 0, "with a -c file of listeners and services: look at the file this often (e.g. 2s) and reload it when it changed, besides on SIGHUP")
	fs.BoolVar(&f.dump, "dump-config", false, "print the effective configuration of -c, every default filled in, and exit")
	fs.Usage = func() {
		fmt.Fprintf(out, "Usage: pingora [flags]\n\nWith no flags, runs a demo proxy on %s in front of an embedded origin.\n\nFlags:\n%s", DemoListen, fs.FlagUsages())
	}
	err := fs.Parse(args)
	if err == nil && fs.NArg() > 0 {
		err = fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	return f, fs, err
}

func run(args []string, stdout io.Writer) error {
	f, fs, err := parseFlags(args, stdout)
	if errors.Is(err, pflag.ErrHelp) {
		return nil
	}
	if err != nil {
		return err
	}
	if f.opt.Help {
		fs.Usage()
		return nil
	}
	c, err := f.opt.Load()
	if err != nil {
		return err
	}
	if f.opt.Conf != "" {
		gc, err := loadGateway(f.opt.Conf)
		if err != nil {
			return err
		}
		if gc != nil {
			return runGateway(f, c, gc, stdout)
		}
	}
	if f.watch != 0 || f.reloadUpgrade {
		return fmt.Errorf("--watch-config and --reload-upgrade need a -c file of listeners and services")
	}
	if f.dump {
		out, err := c.ToYAML()
		if err != nil {
			return err
		}
		_, err = stdout.Write(out)
		return err
	}
	listen := f.listen
	if listen == "" && len(f.upstreams) > 0 {
		return fmt.Errorf("--listen is required with --upstream")
	}
	if listen == "" {
		listen = DemoListen
	}
	addr, err := listeners.ParseAddress(listen)
	if err != nil {
		return err
	}
	if f.metrics != "" {
		if _, err := listeners.ParseAddress(f.metrics); err != nil {
			return err
		}
	}
	if err := f.tls.check(); err != nil {
		return err
	}
	if len(f.tls.certs) > 0 && addr.Network != "tcp" {
		return fmt.Errorf("--tls-cert needs a TCP --listen address")
	}
	if f.opt.Test {
		c.WarnUnknown(slog.New(slog.NewTextHandler(os.Stderr, nil)), f.opt.Conf)
		fmt.Fprintf(stdout, "pingora: configuration %s test is successful\n", confName(f.opt.Conf))
		return nil
	}

	logger, sopts, err := serverSetup(f, c)
	if err != nil {
		return err
	}
	var svcs []server.Service
	if opensServices(f, c) {
		if svcs, err = services(f, c, addr, logger, &sopts); err != nil {
			return err
		}
	}
	srv := server.New(sopts)
	for _, svc := range svcs {
		srv.AddService(svc)
	}
	return srv.Run(context.Background())
}

// serverSetup opens the error log the configuration names, makes it the default logger, warns
// of unknown keys, and returns the server's options.
func serverSetup(f *flags, c *conf.ServerConf) (*slog.Logger, server.Options, error) {
	logger, logFile, err := server.NewLogger(c)
	if err != nil {
		return nil, server.Options{}, err
	}
	slog.SetDefault(logger)
	c.WarnUnknown(logger, f.opt.Conf)
	sopts := server.Options{Conf: c, Upgrade: f.opt.Upgrade, Daemon: f.opt.Daemon, Logger: logger}
	if logFile != nil {
		sopts.Reopeners = append(sopts.Reopeners, logFile)
	}
	return logger, sopts, nil
}

// opensServices reports whether this process serves: a daemon's first process only starts
// its background copy, and opens nothing.
func opensServices(f *flags, c *conf.ServerConf) bool {
	return !(c.Daemon || f.opt.Daemon) || server.IsDaemonChild()
}

func confName(path string) string {
	if path == "" {
		return "(defaults)"
	}
	return path
}

// services builds the proxy service (and the metrics service when asked); log files it opens
// are added to sopts.Reopeners.
func services(f *flags, c *conf.ServerConf, addr listeners.Address, logger *slog.Logger, sopts *server.Options) ([]server.Service, error) {
	upstreams := f.upstreams
	if len(upstreams) == 0 {
		origin, err := startDemoOrigin()
		if err != nil {
			return nil, err
		}
		logger.Info("demo mode: proxying to the embedded origin", "listen", addr.String(), "origin", origin.Addr().String())
		upstreams = []string{origin.Addr().String()}
	}
	rp, err := pingora.NewReverseProxyApp(upstreams...)
	if err != nil {
		return nil, err
	}
	var app proxy.ProxyHTTP[pingora.Attempt] = rp
	if f.tls.upstreamTLS {
		if app, err = newTLSReverseProxy(rp, upstreams, f.tls.upstreamSNI, f.tls.upstreamCA); err != nil {
			return nil, err
		}
	}
	if f.upstreamH2 {
		alpn := upstream.H2
		if f.tls.upstreamTLS {
			alpn = upstream.H2H1
		}
		for _, p := range rp.Peers() {
			p.Options.ALPN = alpn
		}
		if t, ok := app.(*tlsReverseProxy); ok {
			for _, p := range t.peers {
				p.Options.ALPN = alpn
			}
		}
	}
	settings, err := f.tls.listenTLS(logger)
	if err != nil {
		return nil, err
	}
	conn, err := newConnector(c, sopts)
	if err != nil {
		return nil, err
	}
	popts := proxy.Options{MaxRetries: c.MaxRetries, Connector: conn, Logger: logger, H2C: f.h2c}
	if popts.Cache, err = newCache(f); err != nil {
		return nil, err
	}
	popts.H2.EnableConnectProtocol = true // WebSocket over HTTP/2
	if f.compress {
		popts.Modules = append(popts.Modules, proxy.NewCompression(compression.Options{}))
	}
	if f.accessLog != "" {
		w := io.Writer(os.Stderr)
		if f.accessLog != "-" {
			lf, err := server.OpenLogFile(f.accessLog)
			if err != nil {
				return nil, err
			}
			sopts.Reopeners = append(sopts.Reopeners, lf)
			w = lf
		}
		popts.Observers = append(popts.Observers, accesslog.New(slog.New(slog.NewJSONHandler(w, nil))))
	}
	var out []server.Service
	var serverApp server.App
	if f.metrics != "" {
		reg := metrics.NewRegistry()
		pm, err := metrics.NewProxy(reg)
		if err != nil {
			return nil, err
		}
		if err := metrics.WatchConnector(reg, conn); err != nil {
			return nil, err
		}
		popts.Observers = append(popts.Observers, pm)
		if popts.Cache != nil {
			if err := metrics.WatchCache(reg, "default", popts.Cache); err != nil {
				return nil, err
			}
		}
		serverApp = pm.CountConns(proxy.New(app, popts))
		msvc := metrics.NewService(reg)
		maddr, _ := listeners.ParseAddress(f.metrics)
		addAddress(msvc, maddr)
		out = append(out, msvc)
	} else {
		serverApp = proxy.New(app, popts)
	}
	psvc := server.NewListeningService("pingora-go reverse proxy", serverApp)
	lo := server.ListenOptions{TLS: settings}
	if f.proxyProtocol {
		lo.ProxyProtocol = &proxyproto.Options{}
	}
	psvc.Add(addr, lo)
	return append([]server.Service{psvc}, out...), nil
}

func addAddress(svc *server.ListeningService, a listeners.Address) {
	if a.Network == "unix" {
		svc.AddUDS(a.Addr, 0)
	} else {
		svc.AddTCP(a.Addr)
	}
}

// newConnector builds the upstream connector from the configuration; a key log file it opens
// is added to sopts.Reopeners.
func newConnector(c *conf.ServerConf, sopts *server.Options) (*connector.Connector, error) {
	o, err := connector.OptionsFromConf(c)
	if err != nil {
		return nil, err
	}
	if path := os.Getenv("SSLKEYLOGFILE"); c.UpstreamDebugSSLKeylog && path != "" {
		lf, err := server.OpenLogFile(path)
		if err != nil {
			return nil, err
		}
		sopts.Reopeners = append(sopts.Reopeners, lf)
		o.KeyLogWriter = lf
	}
	return connector.New(o), nil
}

// newCache returns the HTTP cache the quick-mode flags ask for, or nil: in memory with
// --cache-memory, on disk with --cache-dir (bounded by --cache-disk, default 1 GiB).
func newCache(f *flags) (*cache.Cache, error) {
	var st cache.Storage
	switch {
	case f.cacheMemory != "" && f.cacheDir != "":
		return nil, fmt.Errorf("--cache-memory and --cache-dir are exclusive")
	case f.cacheDisk != "" && f.cacheDir == "":
		return nil, fmt.Errorf("--cache-disk needs --cache-dir")
	case f.cacheMemory != "":
		n, err := parseSize(f.cacheMemory)
		if err != nil {
			return nil, fmt.Errorf("--cache-memory: %w", err)
		}
		st = memory.New(memory.Config{MaxBytes: n})
	case f.cacheDir != "":
		n := int64(1 << 30)
		if f.cacheDisk != "" {
			var err error
			if n, err = parseSize(f.cacheDisk); err != nil {
				return nil, fmt.Errorf("--cache-disk: %w", err)
			}
		}
		ds, err := disk.Open(disk.Config{Dir: f.cacheDir, MaxBytes: n})
		if err != nil {
			return nil, err
		}
		st = ds
	default:
		return nil, nil
	}
	return cache.New(cache.Config{Storage: st})
}

// parseSize parses a byte count with an optional decimal (k, M, G, T) or binary (KiB, MiB, GiB,
// TiB) suffix, case-insensitive, e.g. "512MiB" or "2g".
func parseSize(s string) (int64, error) {
	num := strings.TrimRightFunc(s, func(r rune) bool { return r < '0' || r > '9' })
	unit := strings.ToLower(strings.TrimSpace(s[len(num):]))
	n, err := strconv.ParseInt(num, 10, 64)
	if err != nil || n <= 0 {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	mult := map[string]int64{"": 1, "b": 1, "k": 1e3, "kb": 1e3, "m": 1e6, "mb": 1e6, "g": 1e9, "gb": 1e9, "t": 1e12, "tb": 1e12,
		"kib": 1 << 10, "mib": 1 << 20, "gib": 1 << 30, "tib": 1 << 40}[unit]
	if mult == 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("invalid size %q", s)
	}
	return n * mult, nil
}
