// Package nginxtest runs real nginx processes as peers in the project's tests and
// benchmarks: it finds the binary and writes a configuration for one foreground process whose
// pid file, logs and temporary files all stay under a directory of the caller.
package nginxtest

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
)

// ErrNotInstalled is returned by Find when there is no nginx binary.
var ErrNotInstalled = errors.New("nginx is not installed (Debian: apt-get install nginx-light)")

// Find returns the path of the nginx binary: from PATH, else from /usr/sbin or
// /usr/local/sbin, which a non-root PATH often lacks.
func Find() (string, error) {
	if p, err := exec.LookPath("nginx"); err == nil {
		return p, nil
	}
	for _, p := range []string{"/usr/sbin/nginx", "/usr/local/sbin/nginx"} {
		if _, err := os.Stat(p); err == nil {
			return p, nil
		}
	}
	return "", ErrNotInstalled
}

// Conf returns the configuration of one nginx process in the foreground (no master, one
// worker with workerConns connections, no access log) keeping everything it writes under
// prefix, with http inside the http block (server blocks and http-level directives).
func Conf(prefix string, workerConns int, http string) string {
	return fmt.Sprintf(`daemon off;
master_process off;
worker_processes 1;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections %[2]d; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
%[3]s
}
`, prefix, workerConns, http)
}

// Command writes conf to prefix/nginx.conf and returns the command that runs bin on it; the
// caller starts it and stops it.
func Command(bin, prefix, conf string) (*exec.Cmd, error) {
	path := filepath.Join(prefix, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, err
	}
	return exec.Command(bin, "-p", prefix, "-c", path), nil
}
