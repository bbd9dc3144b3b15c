package main

import (
	"context"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// serveHTTPUtil runs Go's httputil.ReverseProxy on listen in front of upstream until SIGTERM
// or SIGINT. The Transport is tuned the way a Go proxy in production would be: a large idle
// pool per host (so no connection churn under load), no transparent gzip, HTTP/1.1 only.
func serveHTTPUtil(listen, upstream string) error {
	target := &url.URL{Scheme: "http", Host: upstream}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        4096,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     300 * time.Second,
		DisableCompression:  true,
	}
	rp := &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(target)
			r.Out.Host = r.In.Host
		},
		Transport: tr,
		ErrorLog:  log.New(os.Stderr, "httputil: ", log.LstdFlags),
	}
	srv := &http.Server{
		Addr:              listen,
		Handler:           rp,
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       300 * time.Second,
		ErrorLog:          log.New(io.Discard, "", 0),
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	errc := make(chan error, 1)
	go func() { errc <- srv.ListenAndServe() }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
		sctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
		return nil
	}
}
