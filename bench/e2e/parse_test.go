package main

import (
	"strings"
	"testing"
	"time"
)

const wrkSample = `Running 10s test @ http://127.0.0.1:8080/1k
  1 threads and 50 connections
  Thread Stats   Avg      Stdev     Max   +/- Stdev
    Latency     3.61ms    1.12ms  31.20ms   91.10%
    Req/Sec    14.02k   612.47    15.01k    80.00%
  Latency Distribution
     50%    3.42ms
     75%    3.80ms
     90%    4.40ms
     99%    8.12ms
  139511 requests in 10.00s, 162.56MB read
Requests/sec:  13949.13
Transfer/sec:     16.25MB
`

func TestParseWrk(t *testing.T) {
	tests := []struct {
		name    string
		out     string
		want    wrkResult
		wantErr bool
	}{
		{name: "clean", out: wrkSample, want: wrkResult{requests: 139511, rps: 13949.13, p50: 3420 * time.Microsecond, p99: 8120 * time.Microsecond}},
		{
			name: "errors",
			out: strings.Replace(wrkSample, "Requests/sec:",
				"  Socket errors: connect 1, read 2, write 3, timeout 4\n  Non-2xx or 3xx responses: 10\nRequests/sec:", 1),
			want: wrkResult{requests: 139511, rps: 13949.13, p50: 3420 * time.Microsecond, p99: 8120 * time.Microsecond, errors: 20},
		},
		{name: "microseconds and seconds", out: strings.NewReplacer("3.42ms", "812.00us", "8.12ms", "1.50s").Replace(wrkSample),
			want: wrkResult{requests: 139511, rps: 13949.13, p50: 812 * time.Microsecond, p99: 1500 * time.Millisecond}},
		{name: "no latency distribution", out: strings.Replace(wrkSample, "99%", "98%", 1), wantErr: true},
		{name: "no requests/sec", out: strings.Replace(wrkSample, "Requests/sec:", "Requests:", 1), wantErr: true},
		{name: "bad number", out: strings.Replace(wrkSample, "13949.13", "lots", 1), wantErr: true},
		{name: "empty", out: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseWrk(tt.out)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if err == nil && got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestParseWrkDuration(t *testing.T) {
	tests := []struct {
		in      string
		want    time.Duration
		wantErr bool
	}{
		{"812.00us", 812 * time.Microsecond, false},
		{"1.25ms", 1250 * time.Microsecond, false},
		{"2.01s", 2010 * time.Millisecond, false},
		{"1.00m", time.Minute, false},
		{"12", 0, true},
		{"ms", 0, true},
		{"-1ms", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			got, err := parseWrkDuration(tt.in)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("parseWrkDuration(%q) = %v, %v; want %v, error %v", tt.in, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestMedian(t *testing.T) {
	tests := []struct {
		in   []float64
		want float64
	}{
		{nil, 0},
		{[]float64{3}, 3},
		{[]float64{9, 1, 5}, 5},
		{[]float64{4, 1, 3, 2}, 2.5},
	}
	for _, tt := range tests {
		if got := median(tt.in); got != tt.want {
			t.Errorf("median(%v) = %v, want %v", tt.in, got, tt.want)
		}
	}
}

func FuzzParseWrk(f *testing.F) {
	f.Add(wrkSample)
	f.Add("  Socket errors: connect 1, read x\n")
	f.Fuzz(func(t *testing.T, out string) {
		r, err := parseWrk(out)
		if err == nil && (r.p50 < 0 || r.p99 < 0) {
			t.Errorf("negative latency from %q: %+v", out, r)
		}
	})
}

func TestPairedRatio(t *testing.T) {
	ours := []run{{cpuPerReq: 30}, {cpuPerReq: 20}, {cpuPerReq: 44}}
	nginx := []run{{cpuPerReq: 30}, {cpuPerReq: 25}, {cpuPerReq: 40}}
	if r, ok := pairedRatio(ours, nginx); !ok || r != 1 {
		t.Errorf("pairedRatio = %v, %v; want the median of 1, 0.8 and 1.1: 1", r, ok)
	}
	if _, ok := pairedRatio(ours, nginx[:2]); ok {
		t.Error("rounds missing on one side still gave a ratio")
	}
}
