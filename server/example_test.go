package server_test

import (
	"context"
	"fmt"
	"log"
	"log/slog"
	"time"

	"github.com/pingora-go/pingora/conf"
	"github.com/pingora-go/pingora/server"
)

// A server built from the configuration file and flags of the reference, with a background
// service beside the listening ones.
func ExampleNew() {
	opt, err := conf.ParseArgs([]string{"--conf", "testdata/pingora.yaml"})
	if err != nil {
		log.Fatal(err)
	}
	c, err := opt.Load()
	if err != nil {
		log.Fatal(err)
	}
	logger, logFile, err := server.NewLogger(c)
	if err != nil {
		log.Fatal(err)
	}
	o := server.Options{Conf: c, Upgrade: opt.Upgrade, Daemon: opt.Daemon, Logger: logger}
	if logFile != nil {
		o.Reopeners = append(o.Reopeners, logFile) // reopened on SIGUSR1
	}
	srv := server.New(o)
	srv.AddService(server.NewBackgroundService("refresh", func(ctx context.Context) {
		t := time.NewTicker(time.Minute)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				slog.Info("refreshing")
			}
		}
	}))
	fmt.Println("grace period:", c.GracePeriodSeconds, "s; upgrade socket:", c.UpgradeSock)
	// srv.Run(context.Background()) serves until SIGTERM, SIGINT or SIGQUIT.

	// Output: grace period: 30 s; upgrade socket: /tmp/example_upgrade.sock
}
