package ratelimit

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"

	"github.com/pingora-go/pingora/internal/testbin"
)

func TestMain(m *testing.M) { testbin.Main(m) }

const gatewayConf = `
listeners:
  - address: %s
redis:
  address: %s
  password_file: redis-password
upstreams:
  app:
    backends: [%s]
services:
  web:
    routes:
      - name: shared
        match: {path_prefix: /}
        upstream: app
        rate_limit: {requests: %d, window: 1h, key: "header:appid", scope: cluster, on_redis_error: %s}
`

// TestGatewayClusterLimitTwoProcesses: two pingora binaries run from YAML files with a rate
// limit of scope cluster share one Redis and enforce one limit. With a limit of 40 per hour
// the lease is one token, so no token is stranded: exactly 40 requests get through. Then, with
// Redis gone, on_redis_error: closed refuses every request.
func TestGatewayClusterLimitTwoProcesses(t *testing.T) {
	r := startRedis(t)
	origin := startOrigin(t)
	bin := testbin.Binary(t)
	const limit = 40
	var addrs []string
	for range 2 {
		dir := t.TempDir()
		// An empty password: the server has none, and the file is read all the same.
		if err := os.WriteFile(filepath.Join(dir, "redis-password"), []byte("\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		listen := testbin.FreeAddr(t)
		conf := filepath.Join(dir, "pingora.yaml")
		body := fmt.Sprintf(gatewayConf, listen, r.addr, origin, limit, "closed")
		if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		p := testbin.Start(t, bin, "-c", conf)
		p.WaitListening(listen)
		t.Cleanup(func() { p.Stop(syscall.SIGTERM) })
		addrs = append(addrs, listen)
	}
	ok := countOK(t, addrs, "gateway-shared", 4, 30)
	if ok != limit {
		t.Fatalf("%d requests got through two gateway processes, want %d", ok, limit)
	}
	// Another key has its own quota.
	if ok := countOK(t, addrs, "gateway-other", 1, 10); ok != 10 {
		t.Fatalf("another key: %d of 10 got through", ok)
	}
	r.kill()
	if ok := countOK(t, addrs, "gateway-fresh", 1, 6); ok != 0 {
		t.Fatalf("on_redis_error closed with Redis down: %d requests got through", ok)
	}
}
