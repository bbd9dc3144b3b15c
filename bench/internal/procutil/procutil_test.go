package procutil

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestParseStat(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    Stat
		wantErr bool
	}{
		{name: "plain", in: "1234 (nginx) S 1200 1234 1234 0 -1 4194624 300 0 0 0 150 25 0 0 20 0 1 0 100 1000 200",
			want: Stat{PPID: 1200, Ticks: 175}},
		{name: "name with spaces and parens", in: "77 (a (b) c) R 5 77 77 0 -1 0 0 0 0 0 7 3 0 0 20 0 1 0",
			want: Stat{PPID: 5, Ticks: 10}},
		{name: "truncated", in: "77 (x) R 5 77 77 0", wantErr: true},
		{name: "no name", in: "77 x R 5", wantErr: true},
		{name: "bad number", in: "1 (x) S 0 1 1 0 -1 0 0 0 0 0 u 1 0 0 20 0 1 0", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseStat([]byte(tt.in))
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want error %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatusField(t *testing.T) {
	status := "Name:\tnginx\nVmPeak:\t  20000 kB\nVmHWM:\t   18532 kB\nVmRSS:\t   17000 kB\n"
	tests := []struct {
		field   string
		want    int64
		wantErr bool
	}{
		{"VmHWM", 18532, false},
		{"VmRSS", 17000, false},
		{"VmSwap", 0, true},
		{"Name", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.field, func(t *testing.T) {
			got, err := StatusField(strings.NewReader(status), tt.field)
			if (err != nil) != tt.wantErr || got != tt.want {
				t.Errorf("StatusField(%s) = %d, %v; want %d, error %v", tt.field, got, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestStartWaitStop starts a shell that exits early and one that runs, checks the exit is seen
// by WaitListening and the process accounting of the running one, and stops it.
func TestStartWaitStop(t *testing.T) {
	log := filepath.Join(t.TempDir(), "out.log")
	quick, err := Start("quick", "", nil, log, "sh", "-c", "echo quick $X; exit 4")
	if err != nil {
		t.Fatal(err)
	}
	addr, err := FreeAddr()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := WaitListening(ctx, quick, addr); err == nil || !strings.Contains(err.Error(), "quick exited") {
		t.Fatalf("WaitListening = %v, want the exit", err)
	}
	if quick.Err() == nil {
		t.Fatal("Err is nil after exit 4")
	}

	slow, err := Start("slow", "", []string{"X=from-env"}, log, "sh", "-c", "echo slow $X; exec sleep 30")
	if err != nil {
		t.Fatal(err)
	}
	if slow.Exited() || slow.Err() != nil {
		t.Fatal("slow exited at once")
	}
	if n := OpenFDs(slow.PID()); n == 0 {
		t.Error("OpenFDs = 0 for a running process")
	}
	if kb := StatusKB(slow.PID(), "VmRSS"); kb <= 0 {
		t.Errorf("StatusKB(VmRSS) = %d", kb)
	}
	if tr := Tree(os.Getpid()); len(tr) < 2 {
		t.Errorf("Tree of the test process = %v, want it and its children", tr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if err := WaitListening(ctx, slow, addr); err != nil {
		t.Fatal(err)
	}
	began := time.Now()
	slow.Stop()
	if !slow.Exited() || time.Since(began) > StopGrace {
		t.Fatalf("Stop: exited %v after %s", slow.Exited(), time.Since(began))
	}
	b, err := os.ReadFile(log)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), "quick") || !strings.Contains(string(b), "slow from-env") {
		t.Fatalf("log %q lacks the outputs", b)
	}
}

func TestLoadAvg(t *testing.T) {
	if f := strings.Fields(LoadAvg()); len(f) != 3 {
		t.Fatalf("LoadAvg = %q", LoadAvg())
	}
}

func FuzzParseStat(f *testing.F) {
	f.Add([]byte("1234 (nginx) S 1200 1234 1234 0 -1 4194624 300 0 0 0 150 25 0 0 20 0 1 0"))
	f.Add([]byte("1 ()) S"))
	f.Fuzz(func(t *testing.T, b []byte) {
		_, _ = ParseStat(b)
	})
}

func TestProcessCPU(t *testing.T) {
	before, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for x, began := 0, time.Now(); time.Since(began) < 100*time.Millisecond; x++ {
		_ = x * x
	}
	after, err := ProcessCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after <= before {
		t.Fatalf("ProcessCPU did not grow over 100 ms of work: %s then %s", before, after)
	}
	if all := CPUTime(os.Getpid()); all < after {
		t.Fatalf("CPUTime of the tree %s < ProcessCPU %s", all, after)
	}
	if _, err := ProcessCPU(-1); err == nil {
		t.Fatal("ProcessCPU(-1) succeeded")
	}
}
