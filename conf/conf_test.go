package conf

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestFromYAML(t *testing.T) {
	def := Default()
	cases := []struct {
		name string
		in   string
		want func(c *ServerConf)
	}{
		{"empty", "", func(*ServerConf) {}},
		{"only version", "version: 1\n", func(*ServerConf) {}},
		{"null value keeps default", "grace_period_seconds:\n", func(*ServerConf) {}},
		{"reference sample", `---
version: 1
threads: 2
pid_file: /run/pingora.pid
upgrade_sock: /tmp/pingora_upgrade.sock
user: root
group: root
daemon: true
error_log: /tmp/pingora_err.log
grace_period_seconds: 60
graceful_shutdown_timeout_seconds: 10
upstream_keepalive_pool_size: 256
max_retries: 3
client_bind_to_ipv4: [127.0.0.2]
client_bind_to_ipv6: ["::1"]
max_blocking_threads: 4
work_stealing: false
`, func(c *ServerConf) {
			c.Threads = 2
			c.PidFile = "/run/pingora.pid"
			c.User, c.Group = "root", "root"
			c.Daemon = true
			c.ErrorLog = "/tmp/pingora_err.log"
			c.GracePeriodSeconds = 60
			c.GracefulShutdownTimeoutSeconds = 10
			c.UpstreamKeepalivePoolSize = 256
			c.MaxRetries = 3
			c.ClientBindToIPv4 = []string{"127.0.0.2"}
			c.ClientBindToIPv6 = []string{"::1"}
			n := 4
			c.MaxBlockingThreads = &n
			c.WorkStealing = false
		}},
		{"unknown keys kept aside", "version: 1\nmy_app:\n  routes: 3\nother: x\n", func(c *ServerConf) {
			c.Unknown = []UnknownKey{{"my_app", 2}, {"other", 4}}
		}},
		{"log settings", "error_log_level: debug\nerror_log_format: json\n", func(c *ServerConf) {
			c.ErrorLogLevel, c.ErrorLogFormat = "debug", "json"
		}},
		{"accept protections", "max_downstream_connections: 10000\naccept_max_backoff_ms: 250\n", func(c *ServerConf) {
			c.MaxDownstreamConnections, c.AcceptMaxBackoffMs = 10000, 250
		}},
		{"no connection limit", "max_downstream_connections: -1\n", func(c *ServerConf) {
			c.MaxDownstreamConnections = -1
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := FromYAML([]byte(tc.in))
			if err != nil {
				t.Fatal(err)
			}
			want := *def
			want.MaxBlockingThreads = nil
			tc.want(&want)
			got.lines = nil
			if !reflect.DeepEqual(*got, want) {
				t.Errorf("got  %+v\nwant %+v", *got, want)
			}
		})
	}
}

func TestFromYAMLErrors(t *testing.T) {
	cases := []struct {
		name, in string
		line     int
		key      string
		msg      string
	}{
		{"string for int", "version: 1\nthreads: many\n", 2, "threads", `want an integer, got "many"`},
		{"float for int", "max_retries: 1.5\n", 1, "max_retries", "want an integer"},
		{"string for bool", "daemon: maybe\n", 1, "daemon", "want true or false"},
		{"list for string", "\n\npid_file: [a, b]\n", 3, "pid_file", "want a string, got a list"},
		{"map for list", "client_bind_to_ipv4: {a: 1}\n", 1, "client_bind_to_ipv4", "want a list of strings"},
		{"negative", "grace_period_seconds: -1\n", 1, "grace_period_seconds", "must not be negative"},
		{"zero blocking threads", "a: 1\nmax_blocking_threads: 0\n", 2, "max_blocking_threads", "greater than 0"},
		{"zero ready timeout", "daemon_ready_timeout_seconds: 0\n", 1, "daemon_ready_timeout_seconds", "greater than 0"},
		{"bad version", "version: 2\n", 1, "version", "unsupported version 2"},
		{"bad ipv4", "client_bind_to_ipv4: [\"::1\"]\n", 1, "client_bind_to_ipv4", "not an IPv4"},
		{"bad ipv6", "client_bind_to_ipv6: [1.2.3.4]\n", 1, "client_bind_to_ipv6", "not an IPv6"},
		{"no such user", "user: no-such-user-pingora-go\n", 1, "user", "unknown user"},
		{"no such group", "group: no-such-group-pingora-go\n", 1, "group", "unknown group"},
		{"unreadable ca", "ca_file: /nonexistent/ca.pem\n", 1, "ca_file", "no such file"},
		{"bad level", "error_log_level: loud\n", 1, "error_log_level", "want debug"},
		{"bad format", "error_log_format: xml\n", 1, "error_log_format", "want text or json"},
		{"duplicate", "threads: 1\nthreads: 2\n", 2, "threads", "defined twice (first on line 1)"},
		{"connection limit below -1", "max_downstream_connections: -2\n", 1, "max_downstream_connections", "-1 (no limit), got -2"},
		{"negative backoff", "accept_max_backoff_ms: -5\n", 1, "accept_max_backoff_ms", "must not be negative"},
		{"float connection limit", "max_downstream_connections: 1.5\n", 1, "max_downstream_connections", "want an integer"},
		{"empty pid file", "pid_file: \"\"\n", 1, "pid_file", "must not be empty"},
		{"not a mapping", "- a\n- b\n", 1, "", "must be a mapping"},
		{"syntax", "threads: 1\n  bad: [\n", 0, "", "line"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := FromYAML([]byte(tc.in))
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *conf.Error", err)
			}
			if ce.Line != tc.line || ce.Key != tc.key || !strings.Contains(ce.Error(), tc.msg) {
				t.Errorf("got line %d key %q %q; want line %d key %q containing %q", ce.Line, ce.Key, ce.Error(), tc.line, tc.key, tc.msg)
			}
		})
	}
}

func TestLoadNamesFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "bad.yaml")
	if err := os.WriteFile(p, []byte("version: 1\nthreads: x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := Load(p)
	if err == nil || !strings.HasPrefix(err.Error(), "conf: "+p+":2: threads: ") {
		t.Fatalf("Load error = %v, want it to start with the file and line", err)
	}
	if _, err := Load(filepath.Join(t.TempDir(), "missing.yaml")); err == nil {
		t.Fatal("Load of a missing file succeeded")
	}
}

func TestToYAMLRoundTrip(t *testing.T) {
	c := Default()
	c.Threads = 3
	c.ClientBindToIPv4 = []string{"10.0.0.1"}
	out, err := c.ToYAML()
	if err != nil {
		t.Fatal(err)
	}
	back, err := FromYAML(out)
	if err != nil {
		t.Fatal(err)
	}
	back.lines = nil
	if !reflect.DeepEqual(back, c) {
		t.Errorf("round trip changed the configuration:\n%s", out)
	}
}

func TestParseArgs(t *testing.T) {
	cases := []struct {
		args []string
		want Opt
	}{
		{nil, Opt{}},
		{[]string{"-d", "-u", "-t", "-c", "x.yaml"}, Opt{Daemon: true, Upgrade: true, Test: true, Conf: "x.yaml"}},
		{[]string{"--daemon", "--upgrade", "--test", "--conf=y.yaml"}, Opt{Daemon: true, Upgrade: true, Test: true, Conf: "y.yaml"}},
		{[]string{"-dt", "--nocapture"}, Opt{Daemon: true, Test: true}},
		{[]string{"-h"}, Opt{Help: true}},
	}
	for _, tc := range cases {
		got, err := ParseArgs(tc.args)
		if err != nil {
			t.Fatalf("%v: %v", tc.args, err)
		}
		if got != tc.want {
			t.Errorf("%v: got %+v, want %+v", tc.args, got, tc.want)
		}
	}
	if _, err := ParseArgs([]string{"--bogus"}); err == nil {
		t.Error("unknown flag accepted")
	}
}

func TestOptLoad(t *testing.T) {
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("version: 1\ndaemon: false\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	c, err := Opt{Conf: p, Daemon: true}.Load()
	if err != nil || !c.Daemon {
		t.Fatalf("-d did not force daemon: %+v, %v", c, err)
	}
	c, err = Opt{}.Load()
	if err != nil || c.Daemon || c.GracePeriodSeconds != DefaultGracePeriodSeconds {
		t.Fatalf("defaults: %+v, %v", c, err)
	}
}

func FuzzFromYAML(f *testing.F) {
	f.Add([]byte("version: 1\nthreads: 2\n"))
	f.Add([]byte("client_bind_to_ipv4: [1.2.3.4]\nmax_blocking_threads: 3\n"))
	f.Add([]byte("a: [\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := FromYAML(data)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *conf.Error", err)
			}
			return
		}
		if err := c.Validate(); err != nil {
			t.Fatalf("accepted configuration fails Validate: %v", err)
		}
	})
}

// referenceKeys is every key of the reference's ServerConf (reference A.4) with its default
// when absent, as ServerConf::new() gives it; nil for an unset optional key.
var referenceKeys = map[string]any{
	"version":                              1,
	"daemon":                               false,
	"error_log":                            "",
	"pid_file":                             "/tmp/pingora.pid",
	"upgrade_sock":                         "/tmp/pingora_upgrade.sock",
	"user":                                 "",
	"group":                                "",
	"working_directory":                    "",
	"threads":                              0, // Go's default GOMAXPROCS: see docs/user_guide/conf.md
	"listener_tasks_per_fd":                1,
	"work_stealing":                        true,
	"ca_file":                              "",
	"s2n_config_cache_size":                10,
	"grace_period_seconds":                 300,
	"graceful_shutdown_timeout_seconds":    5,
	"client_bind_to_ipv4":                  []string(nil),
	"client_bind_to_ipv6":                  []string(nil),
	"upstream_keepalive_pool_size":         128,
	"upstream_connect_offload_threadpools": 0,
	"upstream_connect_offload_thread_per_pool": 0,
	"upstream_debug_ssl_keylog":                false,
	"max_retries":                              16,
	"upgrade_sock_connect_accept_max_retries":  5,
	"max_blocking_threads":                     (*int)(nil),
	"blocking_threads_ttl_seconds":             0,
	"daemon_wait_for_ready":                    false,
	"daemon_ready_timeout_seconds":             600,
	"daemon_notify_timeout_seconds":            60,
}

// TestReferenceKeys checks every key of the reference: each is a field of ServerConf with the
// reference's default, and a file setting all of them is read without an unknown key.
func TestReferenceKeys(t *testing.T) {
	fields := fieldIndex()
	def := reflect.ValueOf(Default()).Elem()
	for key, want := range referenceKeys {
		i, ok := fields[key]
		if !ok {
			t.Errorf("reference key %s is not a field of ServerConf", key)
			continue
		}
		if got := def.Field(i).Interface(); !reflect.DeepEqual(got, want) {
			t.Errorf("default of %s = %#v, want %#v", key, got, want)
		}
	}
	ca := filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca, []byte("-----BEGIN CERTIFICATE-----\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	full := `---
version: 1
daemon: true
error_log: /var/log/pingora/error.log
pid_file: /run/pingora.pid
upgrade_sock: /run/pingora_upgrade.sock
user: root
group: root
working_directory: /
threads: 4
listener_tasks_per_fd: 2
work_stealing: false
ca_file: ` + ca + `
s2n_config_cache_size: 0
grace_period_seconds: 60
graceful_shutdown_timeout_seconds: 10
client_bind_to_ipv4: [127.0.0.1]
client_bind_to_ipv6: ["::1"]
upstream_keepalive_pool_size: 512
upstream_connect_offload_threadpools: 2
upstream_connect_offload_thread_per_pool: 4
upstream_debug_ssl_keylog: true
max_retries: 3
upgrade_sock_connect_accept_max_retries: 7
max_blocking_threads: 64
blocking_threads_ttl_seconds: 30
daemon_wait_for_ready: true
daemon_ready_timeout_seconds: 120
daemon_notify_timeout_seconds: 30
`
	c, err := FromYAML([]byte(full))
	if err != nil {
		t.Fatal(err)
	}
	if len(c.Unknown) != 0 {
		t.Errorf("reference keys reported unknown: %v", c.Unknown)
	}
	v := reflect.ValueOf(c).Elem()
	for key := range referenceKeys {
		// version has one valid value besides 0, its default.
		if i, ok := fields[key]; ok && key != "version" && reflect.DeepEqual(v.Field(i).Interface(), def.Field(i).Interface()) {
			t.Errorf("%s kept its default; the file sets it", key)
		}
		if c.Line(key) == 0 {
			t.Errorf("no line recorded for %s", key)
		}
	}
}
