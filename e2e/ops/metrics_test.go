package ops

import (
	"fmt"
	"io"
	"net/http"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/pingora-go/pingora/internal/testbin"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// scrape fetches and parses the metrics at url.
func scrape(t *testing.T, url string) map[string]*dto.MetricFamily {
	t.Helper()
	c := &http.Client{Timeout: waitBound}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("scrape: status %d", resp.StatusCode)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parsing the scrape: %v", err)
	}
	return mfs
}

// sample returns the value of the counter or gauge name whose labels include want, summed over
// the matching series.
func sample(mfs map[string]*dto.MetricFamily, name string, want map[string]string) float64 {
	mf := mfs[name]
	if mf == nil {
		return -1
	}
	var sum float64
	for _, m := range mf.GetMetric() {
		match := true
		for k, v := range want {
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			match = match && found
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			sum += m.GetCounter().GetValue()
		case m.Gauge != nil:
			sum += m.GetGauge().GetValue()
		case m.Histogram != nil:
			sum += float64(m.GetHistogram().GetSampleCount())
		}
	}
	return sum
}

// TestMetricsCountRequests scrapes /metrics during traffic and after it, and checks that the
// counters match the requests sent.
func TestMetricsCountRequests(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	addr, maddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
	p := testbin.Start(t, bin, "--listen", addr, "--upstream", o.addr, "--metrics", maddr)
	p.WaitLog("service started", "Prometheus")
	p.WaitLog("service started", "reverse proxy")

	const workers, perWorker = 4, 30
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	tr := &http.Transport{MaxIdleConnsPerHost: workers}
	defer tr.CloseIdleConnections()
	client := &http.Client{Timeout: waitBound, Transport: tr}
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range perWorker {
				path, want := "/", 200
				if i%3 == 0 {
					path, want = "/status/404", 404
				}
				resp, err := client.Get(fmt.Sprintf("http://%s%s?w=%d&i=%d", addr, path, w, i))
				if err != nil {
					errs <- err
					return
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != want {
					errs <- fmt.Errorf("%s: status %d, want %d", path, resp.StatusCode, want)
					return
				}
			}
		}()
	}
	// A scrape in the middle of the traffic parses and already holds the process metrics.
	mid := scrape(t, "http://"+maddr+"/metrics")
	if mid["process_cpu_seconds_total"] == nil || mid["go_goroutines"] == nil {
		t.Error("process or Go runtime collectors missing")
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}

	const total = workers * perWorker
	// The proxy counts a request after its response went out: scrape until the last one is in.
	mfs := scrape(t, "http://"+maddr+"/any/path")
	for deadline := time.Now().Add(waitBound); sample(mfs, "pingora_http_request_duration_seconds", nil) < total; {
		if time.Now().After(deadline) {
			t.Fatalf("metrics count %v requests, want %d", sample(mfs, "pingora_http_request_duration_seconds", nil), total)
		}
		time.Sleep(10 * time.Millisecond)
		mfs = scrape(t, "http://"+maddr+"/any/path")
	}
	const notFound = workers * ((perWorker + 2) / 3)
	checks := []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"pingora_http_requests_total", map[string]string{"method": "GET", "status_class": "2xx"}, total - notFound},
		{"pingora_http_requests_total", map[string]string{"method": "GET", "status_class": "4xx"}, notFound},
		{"pingora_http_request_duration_seconds", nil, total},
		{"pingora_upstream_connections_total", nil, total},
		{"pingora_upstream_connect_duration_seconds", nil, total},
		{"pingora_upstream_connections_active", nil, 0},
		{"pingora_upstream_retries_total", nil, 0},
	}
	for _, c := range checks {
		if got := sample(mfs, c.name, c.labels); got != c.want {
			t.Errorf("%s%v = %v, want %v", c.name, c.labels, got, c.want)
		}
	}
	// Keep-alive: fewer connections than requests, and at least one per worker.
	if got := sample(mfs, "pingora_downstream_connections_total", nil); got < workers || got >= total {
		t.Errorf("pingora_downstream_connections_total = %v, want in [%d, %d)", got, workers, total)
	}
	if got := sample(mfs, "pingora_downstream_connections_active", nil); got < 1 || got > workers {
		t.Errorf("pingora_downstream_connections_active = %v with %d idle keep-alive clients", got, workers)
	}
	if got := sample(mfs, "pingora_upstream_connections_total", map[string]string{"reused": "true"}); got <= 0 {
		t.Errorf("no upstream connection was reused: %v", got)
	}
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(waitBound); err != nil {
		t.Fatal(err)
	}
}

// TestMetricsSurviveIdle checks that an idle keep-alive scrape connection does not hold the
// shutdown.
func TestMetricsSurviveIdle(t *testing.T) {
	bin := testbin.Binary(t)
	o := startOrigin(t)
	addr, maddr := testbin.FreeAddr(t), testbin.FreeAddr(t)
	p := testbin.Start(t, bin, "--listen", addr, "--upstream", o.addr, "--metrics", maddr)
	p.WaitLog("service started", "Prometheus")
	scrape(t, "http://"+maddr+"/")
	p.Signal(syscall.SIGTERM)
	if err := p.Wait(waitBound); err != nil {
		t.Fatal(err)
	}
}
