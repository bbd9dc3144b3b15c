package main

import (
	"bufio"
	"strings"
	"testing"
	"time"
)

const h2loadOK = `starting benchmark...
spawning thread #0: 10 total client(s). 1000 total requests
Application protocol: h2c
progress: 100% done

finished in 133.46ms, 7492.88 req/s, 7.58MB/s
requests: 1000 total, 1000 started, 1000 done, 1000 succeeded, 0 failed, 0 errored, 0 timeout
status codes: 1000 2xx, 0 3xx, 0 4xx, 0 5xx
traffic: 1.01MB (1060688) total, 8.87KB (9078) headers (space savings 95.30%), 1000.00KB (1024000) data
                     min         max         mean         sd        +/- sd
time for request:      545us     27.64ms     12.52ms      7.03ms    68.70%
time for connect:      320us      1.12ms       680us       258us    60.00%
time to 1st byte:    27.97ms     28.84ms     28.43ms       255us    60.00%
req/s           :     752.29      815.21      770.93       21.08    80.00%
`

const h2loadFailed = `finished in 2.52s, 3937.81 req/s, 3.98MB/s
requests: 10000 total, 9910 started, 9910 done, 9909 succeeded, 91 failed, 90 errored, 0 timeout
status codes: 9909 2xx, 0 3xx, 0 4xx, 1 5xx
                     min         max         mean         sd        +/- sd
time for request:     3.57ms       1.23s    214.84ms    154.79ms    75.97%
`

func TestParseH2load(t *testing.T) {
	cases := []struct {
		name string
		out  string
		want h2loadResult
	}{
		{"ok", h2loadOK, h2loadResult{requests: 1000, rps: 1000 / 0.13346, meanMs: 12.52, elapsed: 133460 * time.Microsecond}},
		// h2load's 91 failed are the 90 errored and the 5xx.
		{"failures", h2loadFailed, h2loadResult{requests: 9909, failed: 91, rps: 9909 / 2.52, meanMs: 214.84, elapsed: 2520 * time.Millisecond}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := parseH2load([]byte(tc.out))
			if err != nil {
				t.Fatal(err)
			}
			if got.requests != tc.want.requests || got.failed != tc.want.failed || got.elapsed != tc.want.elapsed ||
				!near(got.rps, tc.want.rps) || !near(got.meanMs, tc.want.meanMs) {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
	if _, err := parseH2load([]byte("starting benchmark...\n")); err == nil {
		t.Fatal("an output without a report parsed")
	}
}

func near(a, b float64) bool { return a > b*0.999 && a < b*1.001 }

func TestCountTCP(t *testing.T) {
	table := `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0 100 0 0 10 0
   1: 0100007F:8C45 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 201 1 0 20 4 30 10 -1
   2: 0100007F:8C46 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 202 1 0 20 4 30 10 -1
   3: 0100007F:8C47 0100007F:1F91 06 00000000:00000000 03:00000134 00000000     0        0 0 3 0
   4: 0100007F:8C48 0100007F:1F92 01 00000000:00000000 00:00000000 00000000     0        0 203 1 0 20 4 30 10 -1
   5: 0100007F:8C49 0100007F:1F91 01 00000000:00000000 00:00000000 00000000     0        0 204 1 0 20 4 30 10 -1
`
	// 127.0.0.1:8081 is 0100007F:1F91; inode 204 belongs to another process.
	n, err := countTCP(bufio.NewScanner(strings.NewReader(table)), "0100007F:1F91",
		map[string]bool{"201": true, "202": true, "203": true})
	if err != nil || n != 2 {
		t.Fatalf("counted %d, %v; want 2", n, err)
	}
}
