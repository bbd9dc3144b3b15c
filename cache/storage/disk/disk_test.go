package disk_test

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/internal/storagetest"
	"github.com/pingora-go/pingora/cache/storage/disk"
)

func open(t *testing.T, dir string, maxBytes int64) *disk.Storage {
	t.Helper()
	s, err := disk.Open(disk.Config{Dir: dir, MaxBytes: maxBytes, Shards: 1})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, maxBytes int64, fillTimeout time.Duration) cache.Storage {
		s, err := disk.Open(disk.Config{Dir: t.TempDir(), MaxBytes: maxBytes, FillTimeout: fillTimeout, Shards: 1})
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

// objectFiles lists the entry files under dir.
func objectFiles(t *testing.T, dir string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(filepath.Join(dir, "objects"), func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// TestRestart checks that entries, their metas, tags and variants survive reopening, and that
// junk in the directory is cleaned up.
func TestRestart(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	body := storagetest.Body("persist", 10000)
	m := storagetest.Meta("tag1")
	m.Header.Append("X-Meta", "kept")
	storagetest.Put(t, s, storagetest.Key("a"), m, body)
	v := storagetest.Key("a")
	v.Variance[3] = 9
	storagetest.Put(t, s, v, storagetest.Meta(), []byte("variant"))
	ok, err := s.UpdateMeta(context.Background(), storagetest.Key("a"), m.Clone())
	if !ok || err != nil {
		t.Fatal(ok, err)
	}

	// Junk a crash or an operator could leave: a temporary file, a file with a bad name, a
	// truncated entry.
	if err := os.WriteFile(filepath.Join(dir, "tmp", "w-123"), []byte("half"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "objects", "zz-not-a-key"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	tk := storagetest.Key("truncated")
	storagetest.Put(t, s, tk, storagetest.Meta(), storagetest.Body("t", 5000))
	name := tk.String()
	tpath := filepath.Join(dir, "objects", name[:2], name)
	fi, err := os.Stat(tpath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(tpath, fi.Size()-3); err != nil {
		t.Fatal(err)
	}

	s2 := open(t, dir, 1<<20)
	got, b, err := storagetest.Get(t, s2, storagetest.Key("a"))
	if err != nil || got == nil || !bytes.Equal(b, body) || got.Header.Value("X-Meta") != "kept" || got.BodySize != int64(len(body)) {
		t.Fatalf("after restart: %v %v", got, err)
	}
	if _, b, _ := storagetest.Get(t, s2, v); string(b) != "variant" {
		t.Fatalf("variant after restart: %q", b)
	}
	if m, _, _ := storagetest.Get(t, s2, tk); m != nil {
		t.Fatal("a truncated file was served")
	}
	if n, _ := s2.PurgeTag(context.Background(), "tag1"); n != 1 {
		t.Fatal("tags not rebuilt")
	}
	if ok, _ := s2.Purge(context.Background(), storagetest.Key("a")); !ok {
		t.Fatal("variants not rebuilt")
	}
	if files := objectFiles(t, dir); len(files) != 0 {
		t.Fatalf("files left: %v", files)
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

// TestRestartOverLimit checks that a smaller limit on reopening evicts down to it.
func TestRestartOverLimit(t *testing.T) {
	dir := t.TempDir()
	s := open(t, dir, 1<<20)
	for i := 0; i < 10; i++ {
		storagetest.Put(t, s, storagetest.Key(fmt.Sprint(i)), storagetest.Meta(), storagetest.Body("x", 10000))
	}
	s2 := open(t, dir, 35000)
	u := s2.Usage()
	if u.Bytes > 35000 || u.Items != 3 {
		t.Fatalf("usage %+v", u)
	}
	if files := objectFiles(t, dir); int64(len(files)) != u.Items {
		t.Fatalf("%d files for %d entries", len(files), u.Items)
	}
}

const crashEnv = "PINGORA_CACHE_CRASH_CHILD"

// TestCrashChild is the child process of TestCrashMidWrite: it writes entries into the
// directory named by the environment, reporting each finished one, and either stops mid-write
// and waits to be killed, or keeps writing until it is.
func TestCrashChild(t *testing.T) {
	dir := os.Getenv(crashEnv)
	if dir == "" {
		t.Skip("child process of TestCrashMidWrite")
	}
	mode := os.Getenv(crashEnv + "_MODE")
	s, err := disk.Open(disk.Config{Dir: dir, MaxBytes: 1 << 30})
	if err != nil {
		fmt.Println("error", err)
		os.Exit(1)
	}
	ctx := context.Background()
	for i := 0; ; i++ {
		name := fmt.Sprint("obj", i)
		body := storagetest.Body(name, 20000+i*37)
		w, err := s.Create(ctx, storagetest.Key(name), storagetest.Meta())
		if err != nil {
			fmt.Println("error", err)
			os.Exit(1)
		}
		half := len(body) / 2
		if err := w.Write(ctx, body[:half]); err != nil {
			os.Exit(1)
		}
		if mode == "stop" && i == 3 {
			fmt.Println("midwrite", name)
			time.Sleep(time.Minute)
			os.Exit(1)
		}
		if err := w.Write(ctx, body[half:]); err != nil {
			os.Exit(1)
		}
		if _, err := w.Finish(ctx); err != nil {
			os.Exit(1)
		}
		fmt.Println("finished", name, len(body))
		if i%5 == 0 {
			// Meta updates rewrite files: crash during those too.
			m := storagetest.Meta()
			m.Header.Append("X-Update", strconv.Itoa(i))
			if _, err := s.UpdateMeta(ctx, storagetest.Key(name), m); err != nil {
				os.Exit(1)
			}
		}
	}
}

// TestCrashMidWrite kills a process writing to the disk storage (a re-exec of this test binary)
// and reopens the directory: no partial entry may be visible, every visible entry must be whole,
// every finished one must be there, and the index must match the files.
func TestCrashMidWrite(t *testing.T) {
	for _, tc := range []struct {
		mode  string
		delay time.Duration
	}{{"stop", 0}, {"run", 30 * time.Millisecond}, {"run", 77 * time.Millisecond}, {"run", 150 * time.Millisecond}} {
		t.Run(fmt.Sprint(tc.mode, tc.delay), func(t *testing.T) {
			dir := t.TempDir()
			cmd := exec.Command(os.Args[0], "-test.run=^TestCrashChild$", "-test.v")
			cmd.Env = append(os.Environ(), crashEnv+"="+dir, crashEnv+"_MODE="+tc.mode)
			out, err := cmd.StdoutPipe()
			if err != nil {
				t.Fatal(err)
			}
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			finished := map[string]int{}
			lines := make(chan string)
			go func() {
				sc := bufio.NewScanner(out)
				for sc.Scan() {
					lines <- sc.Text()
				}
				close(lines)
			}()
			var timer <-chan time.Time
			if tc.delay > 0 {
				timer = time.After(tc.delay)
			}
			deadline := time.After(20 * time.Second)
			midwrite := ""
		read:
			for {
				select {
				case l, ok := <-lines:
					if !ok {
						t.Fatal("child ended early")
					}
					f := strings.Fields(l)
					switch {
					case len(f) == 3 && f[0] == "finished":
						n, _ := strconv.Atoi(f[2])
						finished[f[1]] = n
					case len(f) == 2 && f[0] == "midwrite":
						midwrite = f[1]
						break read
					case len(f) > 0 && f[0] == "error":
						t.Fatal(l)
					}
				case <-timer:
					break read
				case <-deadline:
					t.Fatal("child too slow")
				}
			}
			if err := cmd.Process.Kill(); err != nil {
				t.Fatal(err)
			}
			_ = cmd.Wait()
			for l := range lines {
				// Lines written before the kill are finished entries too.
				if f := strings.Fields(l); len(f) == 3 && f[0] == "finished" {
					n, _ := strconv.Atoi(f[2])
					finished[f[1]] = n
				}
			}

			s := open(t, dir, 1<<30)
			if midwrite != "" {
				if m, _, _ := storagetest.Get(t, s, storagetest.Key(midwrite)); m != nil {
					t.Fatalf("the entry being written when the process died is visible")
				}
			}
			for name, n := range finished {
				m, b, err := storagetest.Get(t, s, storagetest.Key(name))
				if err != nil || m == nil || !bytes.Equal(b, storagetest.Body(name, n)) {
					t.Fatalf("finished entry %s: %v %v", name, m != nil, err)
				}
			}
			// Entries beyond the reported ones (finished just before the kill) must be whole.
			visible := 0
			for i := 0; i < len(finished)+5; i++ {
				name := fmt.Sprint("obj", i)
				m, b, err := storagetest.Get(t, s, storagetest.Key(name))
				if m == nil {
					continue
				}
				visible++
				if err != nil || !bytes.Equal(b, storagetest.Body(name, 20000+i*37)) {
					t.Fatalf("torn entry %s: %d bytes, %v", name, len(b), err)
				}
			}
			files := objectFiles(t, dir)
			if int64(len(files)) != s.Usage().Items || visible != len(files) {
				t.Fatalf("%d files, %d indexed, %d visible", len(files), s.Usage().Items, visible)
			}
			if tmp, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(tmp) != 0 {
				t.Fatalf("temporary files survived the restart: %d", len(tmp))
			}
			t.Logf("%d finished before the kill, %d visible after", len(finished), visible)
		})
	}
}

// BenchmarkLookupRead is a disk hit: index lookup, open, and reading the body.
func BenchmarkLookupRead(b *testing.B) {
	for _, size := range []int{1 << 10, 64 << 10, 1 << 20} {
		b.Run(fmt.Sprint(size>>10, "KiB"), func(b *testing.B) {
			s, err := disk.Open(disk.Config{Dir: b.TempDir(), MaxBytes: 64 << 20})
			if err != nil {
				b.Fatal(err)
			}
			k := storagetest.Key("bench")
			storagetest.Put(b, s, k, storagetest.Meta(), storagetest.Body("bench", size))
			ctx := context.Background()
			buf := make([]byte, 64<<10)
			b.ReportAllocs()
			b.SetBytes(int64(size))
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_, r, err := s.Lookup(ctx, k)
				if err != nil {
					b.Fatal(err)
				}
				for {
					_, err := r.Read(ctx, buf)
					if err != nil {
						break
					}
				}
				r.Close()
			}
		})
	}
}
