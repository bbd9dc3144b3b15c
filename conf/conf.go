// Package conf reads the YAML server configuration and the command-line options of a
// pingora-go program, with the reference's keys, defaults and flags.
package conf

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/user"
	"reflect"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaults of the reference, for the keys whose zero value is not the default.
const (
	DefaultPidFile                   = "/tmp/pingora.pid"
	DefaultUpgradeSock               = "/tmp/pingora_upgrade.sock"
	DefaultGracePeriodSeconds        = 300
	DefaultGracefulShutdownTimeout   = 5
	DefaultUpstreamKeepalivePoolSize = 128
	DefaultMaxRetries                = 16
	DefaultUpgradeSockRetries        = 5
	DefaultDaemonReadyTimeout        = 600
	DefaultDaemonNotifyTimeout       = 60
	DefaultS2NConfigCacheSize        = 10
)

// ServerConf is the server configuration: every key of the reference's ServerConf, plus the
// error log's level and format. Zero values of optional keys mean "not set".
type ServerConf struct {
	// Version is the format version; 1 today.
	Version int `yaml:"version"`
	// Daemon runs the server in the background; the -d flag forces it on.
	Daemon bool `yaml:"daemon"`
	// ErrorLog is the file error log lines go to (appended); "" means stderr.
	ErrorLog string `yaml:"error_log"`
	// ErrorLogLevel is debug, info, warn or error; "" means info. Not a reference key.
	ErrorLogLevel string `yaml:"error_log_level"`
	// ErrorLogFormat is text or json; "" means text. Not a reference key.
	ErrorLogFormat string `yaml:"error_log_format"`
	// PidFile is where the daemon writes its process id.
	PidFile string `yaml:"pid_file"`
	// UpgradeSock is the unix socket the listening sockets are handed over on during a
	// zero-downtime upgrade; old and new process must agree on it.
	UpgradeSock string `yaml:"upgrade_sock"`
	// User and Group are the account the server switches to once its listeners are bound.
	User  string `yaml:"user"`
	Group string `yaml:"group"`
	// WorkingDirectory is the daemon's working directory.
	WorkingDirectory string `yaml:"working_directory"`
	// Threads, when set, caps the Go scheduler's parallelism (GOMAXPROCS) for the whole
	// process; 0 leaves Go's default (one per CPU).
	Threads int `yaml:"threads"`
	// ListenerTasksPerFD is the number of accept goroutines per listening socket.
	ListenerTasksPerFD int `yaml:"listener_tasks_per_fd"`
	// WorkStealing is accepted for compatibility; Go's scheduler always steals work.
	WorkStealing bool `yaml:"work_stealing"`
	// CAFile is a PEM bundle that verifies upstream certificates; "" uses the system roots.
	CAFile string `yaml:"ca_file"`
	// S2NConfigCacheSize is accepted for compatibility (s2n-tls only).
	S2NConfigCacheSize int `yaml:"s2n_config_cache_size"`
	// GracePeriodSeconds is how long a graceful shutdown lets in-flight requests run.
	GracePeriodSeconds int `yaml:"grace_period_seconds"`
	// GracefulShutdownTimeoutSeconds is how long the server waits for services to return
	// once the grace period is over and remaining work is cut.
	GracefulShutdownTimeoutSeconds int `yaml:"graceful_shutdown_timeout_seconds"`
	// ClientBindToIPv4 and ClientBindToIPv6 are source addresses for upstream connections.
	ClientBindToIPv4 []string `yaml:"client_bind_to_ipv4,omitempty"`
	ClientBindToIPv6 []string `yaml:"client_bind_to_ipv6,omitempty"`
	// UpstreamKeepalivePoolSize is the capacity of the upstream connection pool.
	UpstreamKeepalivePoolSize int `yaml:"upstream_keepalive_pool_size"`
	// UpstreamConnectOffloadThreadpools and UpstreamConnectOffloadThreadPerPool are accepted
	// for compatibility; Go dials on goroutines.
	UpstreamConnectOffloadThreadpools   int `yaml:"upstream_connect_offload_threadpools"`
	UpstreamConnectOffloadThreadPerPool int `yaml:"upstream_connect_offload_thread_per_pool"`
	// UpstreamDebugSSLKeylog writes TLS secrets to the file named by SSLKEYLOGFILE.
	UpstreamDebugSSLKeylog bool `yaml:"upstream_debug_ssl_keylog"`
	// MaxRetries caps the attempts of one request when errors are retryable.
	MaxRetries int `yaml:"max_retries"`
	// UpgradeSockConnectAcceptMaxRetries is how many one-second retries the hand-over's
	// connect (old process) and accept (new process) make.
	UpgradeSockConnectAcceptMaxRetries int `yaml:"upgrade_sock_connect_accept_max_retries"`
	// MaxBlockingThreads and BlockingThreadsTTLSeconds are accepted for compatibility;
	// 0 is rejected as in the reference.
	MaxBlockingThreads        *int `yaml:"max_blocking_threads,omitempty"`
	BlockingThreadsTTLSeconds int  `yaml:"blocking_threads_ttl_seconds"`
	// DaemonWaitForReady is accepted for compatibility: the daemon's parent always waits
	// until the child is ready.
	DaemonWaitForReady bool `yaml:"daemon_wait_for_ready"`
	// DaemonReadyTimeoutSeconds bounds how long the daemon's parent waits for the child.
	DaemonReadyTimeoutSeconds int `yaml:"daemon_ready_timeout_seconds"`
	// DaemonNotifyTimeoutSeconds is accepted for compatibility.
	DaemonNotifyTimeoutSeconds int `yaml:"daemon_notify_timeout_seconds"`

	// MaxDownstreamConnections is the most downstream connections each listening service
	// holds at once; at the maximum it stops accepting until connections close. 0 means half
	// of the file descriptor limit left after 32 for the process's own files; -1 means no
	// limit. Not a reference key.
	MaxDownstreamConnections int `yaml:"max_downstream_connections"`
	// AcceptMaxBackoffMs bounds, in milliseconds, the sleep after a failed accept (out of
	// file descriptors: EMFILE, ENFILE); 0 means 1000, the reference's sleep after EMFILE.
	// Not a reference key.
	AcceptMaxBackoffMs int `yaml:"accept_max_backoff_ms"`

	// Unknown lists the keys not described here, with their lines: the reference ignores
	// them so that users can keep their own settings in the same file.
	Unknown []UnknownKey `yaml:"-"`

	lines map[string]int // the line of every key read from a file
}

// UnknownKey is a top-level key the configuration does not know.
type UnknownKey struct {
	Key  string
	Line int
}

// Default returns the configuration of an empty file with version 1: the reference's
// ServerConf::new().
func Default() *ServerConf {
	return &ServerConf{
		Version:                            1,
		PidFile:                            DefaultPidFile,
		UpgradeSock:                        DefaultUpgradeSock,
		ListenerTasksPerFD:                 1,
		WorkStealing:                       true,
		S2NConfigCacheSize:                 DefaultS2NConfigCacheSize,
		GracePeriodSeconds:                 DefaultGracePeriodSeconds,
		GracefulShutdownTimeoutSeconds:     DefaultGracefulShutdownTimeout,
		UpstreamKeepalivePoolSize:          DefaultUpstreamKeepalivePoolSize,
		MaxRetries:                         DefaultMaxRetries,
		UpgradeSockConnectAcceptMaxRetries: DefaultUpgradeSockRetries,
		DaemonReadyTimeoutSeconds:          DefaultDaemonReadyTimeout,
		DaemonNotifyTimeoutSeconds:         DefaultDaemonNotifyTimeout,
	}
}

// Error is a problem in a configuration file, at a line (0 when it has none).
type Error struct {
	File string
	Line int
	Key  string
	Msg  string
}

// Error formats the problem as "conf: FILE:LINE: KEY: MESSAGE", leaving out what is unknown.
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString("conf: ")
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteString(":")
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d: ", e.Line)
	} else if e.File != "" {
		b.WriteString(" ")
	}
	if e.Key != "" {
		b.WriteString(e.Key)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Load reads and validates the configuration file at path.
func Load(path string) (*ServerConf, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("conf: %w", err)
	}
	c, err := FromYAML(data)
	if err != nil {
		var ce *Error
		if errors.As(err, &ce) {
			ce.File = path
		}
		return nil, err
	}
	return c, nil
}

// FromYAML parses and validates a configuration. Keys absent from data keep their defaults;
// a key given as null too. Unknown keys are listed in Unknown; wrong types and invalid values
// are an *Error naming the line.
func FromYAML(data []byte) (*ServerConf, error) {
	c := Default()
	c.lines = map[string]int{}
	var doc yaml.Node
	dec := yaml.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&doc); err != nil {
		if errors.Is(err, io.EOF) {
			return c, nil
		}
		return nil, &Error{Msg: strings.TrimPrefix(err.Error(), "yaml: ")}
	}
	root := &doc
	if root.Kind == yaml.DocumentNode && len(root.Content) == 1 {
		root = root.Content[0]
	}
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return c, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, &Error{Line: root.Line, Msg: "the configuration must be a mapping of keys to values"}
	}
	fields := fieldIndex()
	v := reflect.ValueOf(c).Elem()
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, val := root.Content[i], root.Content[i+1]
		key := k.Value
		if prev, dup := c.lines[key]; dup {
			return nil, &Error{Line: k.Line, Key: key, Msg: fmt.Sprintf("defined twice (first on line %d)", prev)}
		}
		c.lines[key] = k.Line
		idx, ok := fields[key]
		if !ok {
			c.Unknown = append(c.Unknown, UnknownKey{Key: key, Line: k.Line})
			continue
		}
		if val.Kind == yaml.ScalarNode && val.Tag == "!!null" {
			continue
		}
		f := v.Field(idx)
		nv := reflect.New(f.Type())
		if !tagFits(f.Type(), val) || val.Decode(nv.Interface()) != nil {
			return nil, &Error{Line: val.Line, Key: key, Msg: typeMsg(f.Type(), val)}
		}
		f.Set(nv.Elem())
	}
	if err := c.Validate(); err != nil {
		return nil, err
	}
	return c, nil
}

// tagFits rejects the conversions yaml.v3 allows but a configuration should not: a float
// truncated into an integer field.
func tagFits(t reflect.Type, n *yaml.Node) bool {
	if t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() == reflect.Int {
		return n.Kind == yaml.ScalarNode && n.ShortTag() == "!!int"
	}
	return true
}

// typeMsg explains what a key wants when its value has the wrong type.
func typeMsg(t reflect.Type, n *yaml.Node) string {
	want := "a value of type " + t.String()
	switch t.Kind() {
	case reflect.Bool:
		want = "true or false"
	case reflect.Int, reflect.Pointer:
		want = "an integer"
	case reflect.String:
		want = "a string"
	case reflect.Slice:
		want = "a list of strings"
	}
	got := n.Value
	switch n.Kind {
	case yaml.MappingNode:
		got = "a mapping"
	case yaml.SequenceNode:
		got = "a list"
	default:
		got = fmt.Sprintf("%q", got)
	}
	return "want " + want + ", got " + got
}

func fieldIndex() map[string]int {
	t := reflect.TypeFor[ServerConf]()
	m := make(map[string]int, t.NumField())
	for i := range t.NumField() {
		tag, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if tag != "" && tag != "-" {
			m[tag] = i
		}
	}
	return m
}

// Line returns the line key was read from, or 0 when it was not in the file.
func (c *ServerConf) Line(key string) int { return c.lines[key] }

// Validate checks values the types alone do not rule out: negative counts, addresses that are
// not IP addresses, users and groups that do not exist, a CA file that cannot be read.
func (c *ServerConf) Validate() error {
	bad := func(key, format string, args ...any) error {
		return &Error{Line: c.lines[key], Key: key, Msg: fmt.Sprintf(format, args...)}
	}
	if c.Version != 0 && c.Version != 1 {
		return bad("version", "unsupported version %d (want 1)", c.Version)
	}
	nonNeg := []struct {
		key string
		v   int
	}{
		{"threads", c.Threads},
		{"s2n_config_cache_size", c.S2NConfigCacheSize},
		{"grace_period_seconds", c.GracePeriodSeconds},
		{"graceful_shutdown_timeout_seconds", c.GracefulShutdownTimeoutSeconds},
		{"upstream_keepalive_pool_size", c.UpstreamKeepalivePoolSize},
		{"upstream_connect_offload_threadpools", c.UpstreamConnectOffloadThreadpools},
		{"upstream_connect_offload_thread_per_pool", c.UpstreamConnectOffloadThreadPerPool},
		{"max_retries", c.MaxRetries},
		{"upgrade_sock_connect_accept_max_retries", c.UpgradeSockConnectAcceptMaxRetries},
		{"blocking_threads_ttl_seconds", c.BlockingThreadsTTLSeconds},
		{"accept_max_backoff_ms", c.AcceptMaxBackoffMs},
	}
	for _, n := range nonNeg {
		if n.v < 0 {
			return bad(n.key, "must not be negative, got %d", n.v)
		}
	}
	positive := []struct {
		key string
		v   int
	}{
		{"listener_tasks_per_fd", c.ListenerTasksPerFD},
		{"daemon_ready_timeout_seconds", c.DaemonReadyTimeoutSeconds},
		{"daemon_notify_timeout_seconds", c.DaemonNotifyTimeoutSeconds},
	}
	for _, n := range positive {
		if n.v <= 0 {
			return bad(n.key, "must be greater than 0, got %d", n.v)
		}
	}
	if c.MaxDownstreamConnections < -1 {
		return bad("max_downstream_connections", "want a count, 0 (automatic) or -1 (no limit), got %d", c.MaxDownstreamConnections)
	}
	if c.MaxBlockingThreads != nil && *c.MaxBlockingThreads <= 0 {
		return bad("max_blocking_threads", "must be greater than 0, got %d", *c.MaxBlockingThreads)
	}
	if c.PidFile == "" {
		return bad("pid_file", "must not be empty")
	}
	if c.UpgradeSock == "" {
		return bad("upgrade_sock", "must not be empty")
	}
	if _, err := c.SlogLevel(); err != nil {
		return bad("error_log_level", "%v", err)
	}
	switch c.ErrorLogFormat {
	case "", "text", "json":
	default:
		return bad("error_log_format", "want text or json, got %q", c.ErrorLogFormat)
	}
	for _, s := range c.ClientBindToIPv4 {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is4() {
			return bad("client_bind_to_ipv4", "%q is not an IPv4 address", s)
		}
	}
	for _, s := range c.ClientBindToIPv6 {
		if a, err := netip.ParseAddr(s); err != nil || !a.Is6() || a.Is4In6() {
			return bad("client_bind_to_ipv6", "%q is not an IPv6 address", s)
		}
	}
	if c.User != "" {
		if _, err := user.Lookup(c.User); err != nil {
			return bad("user", "%v", err)
		}
	}
	if c.Group != "" {
		if _, err := user.LookupGroup(c.Group); err != nil {
			return bad("group", "%v", err)
		}
	}
	if c.CAFile != "" {
		if _, err := os.ReadFile(c.CAFile); err != nil {
			return bad("ca_file", "%v", err)
		}
	}
	return nil
}

// SlogLevel returns ErrorLogLevel as a slog level.
func (c *ServerConf) SlogLevel() (slog.Level, error) {
	switch strings.ToLower(c.ErrorLogLevel) {
	case "", "info":
		return slog.LevelInfo, nil
	case "debug", "trace":
		return slog.LevelDebug, nil
	case "warn", "warning":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("want debug, info, warn or error, got %q", c.ErrorLogLevel)
}

// WarnUnknown logs one warning per unknown key, naming the key and its line.
func (c *ServerConf) WarnUnknown(l *slog.Logger, file string) {
	for _, u := range c.Unknown {
		l.Warn("unknown configuration key ignored", "file", file, "line", u.Line, "key", u.Key)
	}
}

// ToYAML returns the configuration as YAML, every key written out.
func (c *ServerConf) ToYAML() ([]byte, error) { return yaml.Marshal(c) }
