package ops

import (
	"bytes"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/pingora-go/pingora/internal/testbin"
)

func TestConfigurationTest(t *testing.T) {
	bin := testbin.Binary(t)
	cases := []struct {
		name    string
		conf    string // "" runs -t without -c
		ok      bool
		outputs []string // substrings of stdout+stderr
	}{
		{"defaults", "", true, []string{"configuration (defaults) test is successful"}},
		{"good file", "version: 1\nthreads: 2\ngrace_period_seconds: 30\n", true, []string{"test is successful"}},
		{"unknown key warns with its line", "version: 1\n\nmy_setting: 3\n", true, []string{"key=my_setting", "line=3", "test is successful"}},
		{"wrong type", "version: 1\nthreads: two\n", false, []string{"pingora.yaml:2: threads: want an integer"}},
		{"invalid value", "version: 1\ndaemon: false\nmax_blocking_threads: 0\n", false, []string{":3: max_blocking_threads: must be greater than 0"}},
		{"syntax error", "version: 1\nthreads: [1\n", false, []string{"line"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"-t"}
			if tc.conf != "" {
				args = append(args, "-c", writeConf(t, t.TempDir(), tc.conf))
			}
			var out bytes.Buffer
			cmd := exec.Command(bin, args...)
			cmd.Stdout, cmd.Stderr = &out, &out
			err := cmd.Run()
			if (err == nil) != tc.ok {
				t.Fatalf("exit error %v, want ok=%v; output:\n%s", err, tc.ok, out.String())
			}
			for _, s := range tc.outputs {
				if !strings.Contains(out.String(), s) {
					t.Errorf("output lacks %q:\n%s", s, out.String())
				}
			}
		})
	}
	t.Run("missing file", func(t *testing.T) {
		out, err := exec.Command(bin, "-t", "-c", filepath.Join(t.TempDir(), "none.yaml")).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "no such file") {
			t.Fatalf("err %v, output %s", err, out)
		}
	})
}

// Quick-mode flags are refused beside a file of listeners and services, and the file-only
// flags without one, instead of being ignored.
func TestFlagsThatDoNotApply(t *testing.T) {
	bin := testbin.Binary(t)
	gw := writeConf(t, t.TempDir(), "listeners: [{address: 127.0.0.1:1}]\nservices:\n  web:\n    routes: [{respond: {body: x}}]\n")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"-t", "-c", gw, "--cache-memory", "1GiB"}, "the cache flags cannot be combined"},
		{[]string{"-t", "-c", gw, "--proxy-protocol"}, "--proxy-protocol cannot be combined"},
		{[]string{"-t", "-c", gw, "--upstream-sni", "x"}, "the TLS flags cannot be combined"},
		{[]string{"-t", "--watch-config", "1s"}, "need a -c file of listeners and services"},
		{[]string{"-t", "--reload-upgrade"}, "need a -c file of listeners and services"},
	} {
		out, err := exec.Command(bin, tc.args...).CombinedOutput()
		if err == nil || !strings.Contains(string(out), tc.want) {
			t.Errorf("pingora %v: %v\n%s", tc.args, err, out)
		}
	}
}
