// Command compress measures the response compression of package compression: CPU time per
// MB of input and compression ratio for each coding on a text corpus, fed in pieces the way
// the proxy feeds it (flushed after each), beside nginx's gzip filter at the same level, in
// one run.
//
// Run it from the bench module (nginx must be on the PATH for the comparison):
//
//	cd bench && go run ./compress
//
// The corpus is the Go sources of a few standard packages from GOROOT (-corpus picks a file
// instead). nginx runs as one process (master_process off) serving the corpus as a static
// file with gzip on; its CPU time comes from /proc/<pid>/stat, measured once with
// Accept-Encoding: gzip and once without, and the difference is the cost of compressing.
package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/pingora-go/pingora/bench/internal/procutil"
	"github.com/pingora-go/pingora/compression"
)

func main() {
	var (
		corpusFile = flag.String("corpus", "", "text file to compress (default: Go sources from GOROOT)")
		corpusMax  = flag.Int("corpus-size", 4<<20, "bytes of GOROOT sources in the default corpus")
		piece      = flag.Int("piece", 16<<10, "bytes per piece, each flushed (about one upstream read)")
		minCPU     = flag.Duration("min-cpu", 2*time.Second, "CPU time to spend per measurement")
		gzipLevel  = flag.Int("gzip-level", compression.DefaultGzipLevel, "gzip level, also nginx's gzip_comp_level")
		brLevel    = flag.Int("br-level", compression.DefaultBrotliLevel, "brotli quality")
		zstdLevel  = flag.Int("zstd-level", compression.DefaultZstdLevel, "zstd level")
		noNginx    = flag.Bool("no-nginx", false, "skip the nginx comparison")
	)
	flag.Parse()
	corpus, err := loadCorpus(*corpusFile, *corpusMax)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compress:", err)
		os.Exit(1)
	}
	fmt.Printf("corpus: %d bytes; pieces of %d bytes, flushed; %s, GOMAXPROCS=%d\n",
		len(corpus), *piece, runtime.Version(), runtime.GOMAXPROCS(0))
	fmt.Printf("%-22s %6s %12s %10s %10s\n", "coder", "level", "CPU ms/MB", "MB/s CPU", "ratio")
	levels := map[compression.Coding]int{compression.Gzip: *gzipLevel, compression.Brotli: *brLevel, compression.Zstd: *zstdLevel}
	for _, c := range []compression.Coding{compression.Gzip, compression.Brotli, compression.Zstd} {
		cpu, out := measureEncoder(c, levels[c], corpus, *piece, *minCPU)
		report("pingora-go "+c.String(), levels[c], cpu, len(corpus), out)
	}
	for _, c := range []compression.Coding{compression.Gzip, compression.Brotli, compression.Zstd} {
		cpu, out := measureDecoder(c, corpus, *piece, *minCPU)
		report("pingora-go decode "+c.String(), 0, cpu, len(corpus), out)
	}
	if *noNginx {
		return
	}
	cpu, out, err := measureNginx(corpus, *gzipLevel, *minCPU)
	if err != nil {
		fmt.Fprintln(os.Stderr, "compress: nginx:", err)
		os.Exit(1)
	}
	report("nginx gzip", *gzipLevel, cpu, len(corpus), out)
}

// report prints one line: CPU per MB of uncompressed data (what goes in when compressing,
// what comes out when decompressing) and the ratio.
func report(name string, level int, cpuPerRound time.Duration, plain, coded int) {
	mb := float64(plain) / 1e6
	ms := float64(cpuPerRound) / float64(time.Millisecond) / mb
	lv := "-"
	if level > 0 {
		lv = strconv.Itoa(level)
	}
	fmt.Printf("%-22s %6s %12.2f %10.1f %10.2f\n", name, lv, ms, 1000/ms, float64(plain)/float64(coded))
}

// loadCorpus reads file, or gathers Go sources from GOROOT up to max bytes.
func loadCorpus(file string, max int) ([]byte, error) {
	if file != "" {
		return os.ReadFile(file)
	}
	var b bytes.Buffer
	for _, dir := range []string{"net/http", "encoding/json", "go/types", "runtime"} {
		names, err := filepath.Glob(filepath.Join(runtime.GOROOT(), "src", dir, "*.go"))
		if err != nil {
			return nil, err
		}
		for _, n := range names {
			data, err := os.ReadFile(n)
			if err != nil {
				return nil, err
			}
			b.Write(data)
			if b.Len() >= max {
				return b.Bytes()[:max], nil
			}
		}
	}
	if b.Len() == 0 {
		return nil, errors.New("no Go sources under GOROOT; pass -corpus")
	}
	return b.Bytes(), nil
}

// cpuTime returns the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// repeat runs round until it has used at least minCPU, and returns the CPU time per round.
func repeat(minCPU time.Duration, round func()) time.Duration {
	round() // warm the pools
	runtime.GC()
	start, rounds := cpuTime(), 0
	for cpuTime()-start < minCPU {
		round()
		rounds++
	}
	return (cpuTime() - start) / time.Duration(rounds)
}

func pieces(b []byte, size int) [][]byte {
	var out [][]byte
	for len(b) > 0 {
		n := min(size, len(b))
		out = append(out, b[:n])
		b = b[n:]
	}
	return out
}

func measureEncoder(c compression.Coding, level int, corpus []byte, piece int, minCPU time.Duration) (time.Duration, int) {
	ps := pieces(corpus, piece)
	var buf []byte
	total := 0
	cpu := repeat(minCPU, func() {
		e := compression.NewEncoder(c, level)
		total = 0
		for i, p := range ps {
			buf, _ = e.Encode(buf[:0], p, i == len(ps)-1)
			total += len(buf)
		}
		e.Release()
	})
	return cpu, total
}

func measureDecoder(c compression.Coding, corpus []byte, piece int, minCPU time.Duration) (time.Duration, int) {
	var coded []byte
	e := compression.NewEncoder(c, 0)
	plain := pieces(corpus, piece)
	for i, p := range plain {
		coded, _ = e.Encode(coded, p, i == len(plain)-1)
	}
	e.Release()
	ps := pieces(coded, piece)
	var buf []byte
	cpu := repeat(minCPU, func() {
		d := compression.NewDecoder(c, int64(len(corpus)))
		for i, p := range ps {
			var err error
			if buf, err = d.Decode(buf[:0], p, i == len(ps)-1); err != nil {
				panic(err)
			}
		}
		d.Release()
	})
	return cpu, len(coded)
}

// measureNginx serves corpus from nginx with gzip at level and returns nginx's CPU time per
// compressed response, beyond that of serving it uncompressed, and the compressed size.
func measureNginx(corpus []byte, level int, minCPU time.Duration) (time.Duration, int, error) {
	if _, err := exec.LookPath("nginx"); err != nil {
		return 0, 0, fmt.Errorf("not on the PATH (use -no-nginx): %w", err)
	}
	dir, err := os.MkdirTemp("", "compress-bench")
	if err != nil {
		return 0, 0, err
	}
	defer os.RemoveAll(dir)
	if err := os.WriteFile(filepath.Join(dir, "corpus.txt"), corpus, 0o644); err != nil {
		return 0, 0, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	addr := ln.Addr().String()
	ln.Close()
	var temps strings.Builder
	for _, t := range []string{"client_body", "proxy", "fastcgi", "uwsgi", "scgi"} {
		fmt.Fprintf(&temps, "    %s_temp_path %s;\n", t, filepath.Join(dir, t))
	}
	conf := fmt.Sprintf(`daemon off;
master_process off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 64; }
http {
    access_log off;
%[2]s    keepalive_requests 100000000;
    gzip on;
    gzip_comp_level %[3]d;
    gzip_min_length 0;
    gzip_types text/plain;
    types { text/plain txt; }
    server {
        listen %[4]s;
        location / { root %[1]s; }
    }
}
`, dir, temps.String(), level, addr)
	confPath := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(confPath, []byte(conf), 0o644); err != nil {
		return 0, 0, err
	}
	cmd := exec.Command("nginx", "-e", filepath.Join(dir, "error.log"), "-p", dir, "-c", confPath)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return 0, 0, err
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()
	url := "http://" + addr + "/corpus.txt"
	client := &http.Client{Transport: &http.Transport{DisableCompression: true}, Timeout: time.Minute}
	if err := waitUp(client, url); err != nil {
		return 0, 0, err
	}
	fetch := func(gzip bool) (int, error) {
		req, _ := http.NewRequestWithContext(context.Background(), "GET", url, nil)
		if gzip {
			req.Header.Set("Accept-Encoding", "gzip")
		}
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		n, err := io.Copy(io.Discard, resp.Body)
		if gzip && resp.Header.Get("Content-Encoding") != "gzip" {
			return 0, errors.New("nginx did not compress")
		}
		return int(n), err
	}
	size, err := fetch(true)
	if err != nil {
		return 0, 0, err
	}
	perGzip, err := nginxCPU(cmd.Process.Pid, minCPU, func() error { _, err := fetch(true); return err })
	if err != nil {
		return 0, 0, err
	}
	perPlain, err := nginxCPU(cmd.Process.Pid, minCPU/4, func() error { _, err := fetch(false); return err })
	if err != nil {
		return 0, 0, err
	}
	return perGzip - perPlain, size, nil
}

func waitUp(client *http.Client, url string) error {
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// nginxCPU runs fetch until nginx (pid) has used minCPU, and returns its CPU time per fetch.
func nginxCPU(pid int, minCPU time.Duration, fetch func() error) (time.Duration, error) {
	start, err := procutil.ProcessCPU(pid)
	if err != nil {
		return 0, err
	}
	n := 0
	wallStart := time.Now()
	for {
		if err := fetch(); err != nil {
			return 0, err
		}
		n++
		now, err := procutil.ProcessCPU(pid)
		if err != nil {
			return 0, err
		}
		if now-start >= minCPU || (time.Since(wallStart) > 4*minCPU && n >= 20) {
			return (now - start) / time.Duration(n), nil
		}
	}
}
