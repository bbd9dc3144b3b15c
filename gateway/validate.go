package gateway

import (
	"encoding/hex"
	"net"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/pingora-go/pingora/lb"
	"github.com/pingora-go/pingora/listeners"
	"github.com/pingora-go/pingora/protocols/proxyproto"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/ratelimit"
)

// Defaults of the file's keys.
const (
	DefaultConnectTimeout = 5 * time.Second
	DefaultReadTimeout    = 60 * time.Second
	DefaultWriteTimeout   = 60 * time.Second
	DefaultIdleTimeout    = 60 * time.Second
	DefaultRetries        = 2
	DefaultIndex          = "index.html"
	DefaultRealm          = "restricted"
	DefaultRateWindow     = time.Second
	DefaultHealthInterval = lb.DefaultHealthInterval
	DefaultCheckTimeout   = lb.DefaultCheckTimeout
	DefaultRedirectStatus = 302
)

// Algorithms are the values of an upstream's algorithm, each with the lb algorithm it
// names.
var Algorithms = map[string]lb.Algorithm{
	"round_robin":          lb.RoundRobin,
	"weighted_round_robin": lb.SmoothWeightedRoundRobin,
	"random":               lb.WeightedRandom,
	"least_inflight":       lb.LeastInFlight,
	"consistent_hash":      lb.Ketama,
	"maglev":               lb.Maglev,
}

// hashed reports whether algorithm uses the request's key.
func hashed(algorithm string) bool {
	return algorithm == "consistent_hash" || algorithm == "maglev"
}

// validator collects the problems of a configuration.
type validator struct {
	c    *Config
	errs Errors
}

func (v *validator) fail(path, format string, args ...any) {
	v.errs = append(v.errs, v.c.errAt(path, format, args...))
}

// validate fills in the defaults and checks what the types do not: required keys, values in
// range, names that refer to something, expressions that compile. Files (certificates,
// directories) are checked when the configuration is built.
func (c *Config) validate() error {
	v := &validator{c: c}
	if len(c.Listeners) == 0 {
		v.fail("listeners", "at least one listener is required")
	}
	if len(c.Services) == 0 {
		v.fail("services", "at least one service is required")
	}
	seen := map[string]int{}
	for i := range c.Listeners {
		v.listener(&c.Listeners[i], "listeners["+itoa(i)+"]", seen)
	}
	for _, name := range sortedNames(c.Services) {
		s := c.Services[name]
		p := "services." + name
		if s == nil {
			c.Services[name] = &Service{}
			continue
		}
		for i, r := range s.Routes {
			rp := p + ".routes[" + itoa(i) + "]"
			if r == nil {
				v.fail(rp, "empty route; write {} to match every request")
				continue
			}
			v.route(r, i, rp)
		}
	}
	for _, name := range sortedNames(c.Upstreams) {
		u := c.Upstreams[name]
		if u == nil {
			u = &Upstream{}
			c.Upstreams[name] = u
		}
		v.upstream(u, "upstreams."+name)
	}
	for _, name := range sortedNames(c.Caches) {
		v.cache(c.Caches[name], "caches."+name)
	}
	if r := c.Redis; r != nil {
		if r.Address == "" {
			v.fail("redis.address", "an address is required")
		} else if _, err := listeners.ParseAddress(r.Address); err != nil {
			v.fail("redis.address", "want host:port or unix:/path")
		}
		if r.Password != "" && r.PasswordFile != "" {
			v.fail("redis.password_file", "give password or password_file, not both")
		}
		if r.DB < 0 {
			v.fail("redis.db", "want a database number that is not negative")
		}
		if r.Timeout == 0 {
			r.Timeout = Duration(ratelimit.DefaultRedisTimeout)
		}
		if r.Prefix == "" {
			r.Prefix = DefaultRedisPrefix
		}
	}
	if c.AccessLog != nil && c.AccessLog.Path == "" {
		v.fail("access_log.path", "a file path, or - for standard error, is required")
	}
	if c.Metrics != nil {
		if _, _, err := net.SplitHostPort(c.Metrics.Address); err != nil {
			v.fail("metrics.address", "want host:port")
		}
	}
	slices.SortStableFunc(v.errs, func(a, b *Error) int { return a.Line - b.Line })
	if len(v.errs) > 0 {
		return v.errs
	}
	return nil
}

func (v *validator) listener(l *Listener, p string, seen map[string]int) {
	a, err := listeners.ParseAddress(l.Address)
	if err != nil || l.Address == "" {
		v.fail(p+".address", "want host:port or unix:/path")
	} else {
		if j, dup := seen[a.String()]; dup {
			v.fail(p+".address", "the address of listeners[%d] too", j)
		}
		seen[a.String()] = len(seen)
	}
	if l.Service == "" {
		if len(v.c.Services) == 1 {
			for name := range v.c.Services {
				l.Service = name
			}
		} else if len(v.c.Services) > 1 {
			v.fail(p, "service is required when there are several services")
		}
	} else if _, ok := v.c.Services[l.Service]; !ok {
		v.fail(p+".service", "no service named %q", l.Service)
	}
	if l.TLS != nil {
		if err == nil && a.Network != "tcp" {
			v.fail(p+".tls", "TLS needs a TCP address")
		}
		if len(l.TLS.Certificates) == 0 {
			v.fail(p+".tls.certificates", "at least one certificate is required")
		}
		for i, cf := range l.TLS.Certificates {
			cp := p + ".tls.certificates[" + itoa(i) + "]"
			if cf.Cert == "" || cf.Key == "" {
				v.fail(cp, "cert and key are required")
			}
		}
		switch l.TLS.MinVersion {
		case "":
			l.TLS.MinVersion = "1.2"
		case "1.2", "1.3":
		default:
			v.fail(p+".tls.min_version", "want 1.2 or 1.3")
		}
		if l.H2 == nil {
			l.H2 = ptr(true)
		}
		if l.H2C {
			v.fail(p+".h2c", "h2c is cleartext HTTP/2; on a TLS listener use h2")
		}
	} else if l.H2 != nil && *l.H2 {
		v.fail(p+".h2", "h2 is offered through TLS; on a plain listener use h2c")
	}
	if pp := l.ProxyProtocol; pp != nil {
		if pp.Enabled == nil {
			pp.Enabled = ptr(true)
		}
		for i, f := range pp.From {
			if _, err := parsePrefix(f); err != nil {
				v.fail(p+".proxy_protocol.from["+itoa(i)+"]", "want a CIDR or an IP address")
			}
		}
		if pp.Timeout == 0 {
			pp.Timeout = Duration(proxyproto.DefaultTimeout)
		}
	}
}

// mediaTypeRE is a media type or a range of them: "text/html", "text/*", "*/*".
var mediaTypeRE = regexp.MustCompile(`^([!#$%&'*+.^_|~0-9A-Za-z-]+|\*)/([!#$%&'*+.^_|~0-9A-Za-z-]+|\*)$`)

// methodRE is an RFC 9110 token.
var methodRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

func (v *validator) route(r *Route, i int, p string) {
	if r.Name == "" {
		r.Name = "#" + itoa(i)
	}
	m := &r.Match
	for j, h := range m.Hosts {
		if !validHostPattern(h) {
			v.fail(p+".match.hosts["+itoa(j)+"]", "want a host name, or *. and a domain")
		}
	}
	if m.Path != "" && !strings.HasPrefix(m.Path, "/") {
		v.fail(p+".match.path", "a path starts with /")
	}
	if m.PathPrefix != "" && !strings.HasPrefix(m.PathPrefix, "/") {
		v.fail(p+".match.path_prefix", "a path starts with /")
	}
	if m.PathRegex != "" {
		if _, err := regexp.Compile(m.PathRegex); err != nil {
			v.fail(p+".match.path_regex", "%v", err)
		}
	}
	for j, meth := range m.Methods {
		if !methodRE.MatchString(meth) {
			v.fail(p+".match.methods["+itoa(j)+"]", "want a method such as GET")
		}
	}
	for j, h := range m.Headers {
		hp := p + ".match.headers[" + itoa(j) + "]"
		if !methodRE.MatchString(h.Name) {
			v.fail(hp+".name", "want a header field name")
		}
		if h.Value != "" && h.Regex != "" {
			v.fail(hp, "value and regex exclude each other")
		}
		if h.Regex != "" {
			if _, err := regexp.Compile(h.Regex); err != nil {
				v.fail(hp+".regex", "%v", err)
			}
		}
	}

	actions := 0
	for _, set := range []bool{r.Upstream != "", r.Redirect != nil, r.Respond != nil, r.Files != nil} {
		if set {
			actions++
		}
	}
	if actions != 1 {
		v.fail(p, "exactly one of upstream, redirect, respond and files is required")
	}
	if r.Upstream != "" {
		if _, ok := v.c.Upstreams[r.Upstream]; !ok {
			v.fail(p+".upstream", "no upstream named %q", r.Upstream)
		}
	}
	if r.Cache != "" {
		if _, ok := v.c.Caches[r.Cache]; !ok {
			v.fail(p+".cache", "no cache named %q", r.Cache)
		} else if r.Upstream == "" {
			v.fail(p+".cache", "only a route to an upstream caches")
		}
	}
	if rd := r.Redirect; rd != nil {
		if rd.Status == 0 {
			rd.Status = DefaultRedirectStatus
		}
		if !slices.Contains([]int{301, 302, 303, 307, 308}, rd.Status) {
			v.fail(p+".redirect.status", "want 301, 302, 303, 307 or 308")
		}
		if rd.Location == "" {
			v.fail(p+".redirect.location", "a location is required")
		} else if _, err := parseTemplate(rd.Location); err != nil {
			v.fail(p+".redirect.location", "%v", err)
		}
	}
	if rs := r.Respond; rs != nil {
		if rs.Status == 0 {
			rs.Status = 200
		}
		if rs.Status < 200 || rs.Status > 599 || rs.Status == 101 {
			v.fail(p+".respond.status", "want a final status, 200 to 599")
		}
		if _, err := parseTemplate(rs.Body); err != nil {
			v.fail(p+".respond.body", "%v", err)
		}
		v.fieldNames(rs.Headers, p+".respond.headers")
	}
	if f := r.Files; f != nil {
		if f.Root == "" {
			v.fail(p+".files.root", "a directory is required")
		}
		if f.Index == "" {
			f.Index = DefaultIndex
		}
		if strings.ContainsAny(f.Index, "/\\") || f.Index == "." || f.Index == ".." {
			v.fail(p+".files.index", "want a file name")
		}
	}
	for j, s := range r.Allow {
		if _, err := parsePrefix(s); err != nil {
			v.fail(p+".allow["+itoa(j)+"]", "want an IP address or CIDR range such as 10.0.0.0/8")
		}
	}
	for j, s := range r.Deny {
		if _, err := parsePrefix(s); err != nil {
			v.fail(p+".deny["+itoa(j)+"]", "want an IP address or CIDR range such as 10.0.0.0/8")
		}
	}
	if a := r.BasicAuth; a != nil {
		if a.Realm == "" {
			a.Realm = DefaultRealm
		}
		if strings.ContainsAny(a.Realm, "\"\\\r\n") {
			v.fail(p+".basic_auth.realm", "quotes, backslashes and line breaks are not allowed")
		}
		if len(a.Users) == 0 {
			v.fail(p+".basic_auth.users", "at least one user is required")
		}
		for _, u := range sortedNames(a.Users) {
			up := p + ".basic_auth.users." + u
			if strings.Contains(u, ":") {
				v.fail(up, "a user name cannot hold a colon")
			}
			if err := checkHash(a.Users[u]); err != nil {
				v.fail(up, "%v", err)
			}
		}
	}
	if rl := r.RateLimit; rl != nil {
		if rl.Requests <= 0 {
			v.fail(p+".rate_limit.requests", "want a number of requests above 0")
		}
		if rl.Window == 0 {
			rl.Window = Duration(DefaultRateWindow)
		}
		if rl.Key == "" {
			rl.Key = "client_ip"
		}
		if rl.Key != "client_ip" && headerKey(rl.Key) == "" {
			v.fail(p+".rate_limit.key", "want client_ip or header:NAME")
		}
		switch rl.Scope {
		case "":
			rl.Scope = "local"
		case "local":
		case "cluster":
			if v.c.Redis == nil {
				v.fail(p+".rate_limit.scope", "scope cluster needs the top-level redis")
			}
		default:
			v.fail(p+".rate_limit.scope", "want local or cluster")
		}
		if rl.Burst < 0 {
			v.fail(p+".rate_limit.burst", "want a burst that is not negative")
		}
		switch rl.OnRedisError {
		case "":
			if rl.Scope == "cluster" {
				rl.OnRedisError = "open"
			}
		case "open", "closed", "local":
		default:
			v.fail(p+".rate_limit.on_redis_error", "want open, closed or local")
		}
		if rl.Scope == "cluster" && rl.Window.D() < time.Millisecond {
			v.fail(p+".rate_limit.window", "a window of scope cluster is at least 1ms")
		}
	}
	if rw := r.Rewrite; rw != nil {
		if (rw.Prefix == "") == (rw.Regex == "") {
			v.fail(p+".rewrite", "exactly one of prefix and regex is required")
		}
		if rw.Prefix != "" && !strings.HasPrefix(rw.Prefix, "/") {
			v.fail(p+".rewrite.prefix", "a path starts with /")
		}
		if rw.Regex != "" {
			if _, err := regexp.Compile(rw.Regex); err != nil {
				v.fail(p+".rewrite.regex", "%v", err)
			}
		}
	}
	v.edits(r.RequestHeaders, p+".request_headers")
	v.edits(r.ResponseHeaders, p+".response_headers")
	if r.Compression == nil {
		r.Compression = &Compression{Enabled: ptr(false)}
	}
	r.Compression.validate(v, p+".compression")
	if r.WebSocket == nil {
		r.WebSocket = &WebSocket{}
	}
	r.WebSocket.validate(v, p+".websocket")
	if r.AccessLog == nil {
		r.AccessLog = ptr(true)
	}
}

func (v *validator) edits(e *HeaderEdits, p string) {
	if e == nil {
		return
	}
	for j, n := range e.Remove {
		if !methodRE.MatchString(n) {
			v.fail(p+".remove["+itoa(j)+"]", "want a header field name")
		}
	}
	v.fieldNames(e.Set, p+".set")
	v.fieldNames(e.Add, p+".add")
}

// fieldNames checks the names and values of header fields.
func (v *validator) fieldNames(m map[string]string, p string) {
	for _, n := range sortedNames(m) {
		if !methodRE.MatchString(n) {
			v.fail(p+"."+n, "want a header field name")
		}
		if strings.ContainsAny(m[n], "\r\n\x00") {
			v.fail(p+"."+n, "a field value cannot hold line breaks")
		} else if _, err := parseTemplate(m[n]); err != nil {
			v.fail(p+"."+n, "%v", err)
		}
	}
}

// Defaults of Cache.
const (
	DefaultCacheDisk     = 1 << 30
	DefaultMaxObjectSize = 64 << 20
	minCacheMemory       = 1 << 20
)

func (v *validator) cache(c *Cache, p string) {
	if c == nil {
		v.fail(p, "memory or dir is required")
		return
	}
	switch {
	case (c.Memory > 0) == (c.Dir != ""):
		v.fail(p, "exactly one of memory and dir is required")
	case c.Dir != "" && c.Disk == 0:
		c.Disk = DefaultCacheDisk
	case c.Dir == "" && c.Disk != 0:
		v.fail(p+".disk", "disk bounds a cache in dir")
	case c.Memory > 0 && c.Memory < minCacheMemory:
		v.fail(p+".memory", "want at least 1MiB")
	}
	if c.MaxObjectSize == 0 {
		c.MaxObjectSize = DefaultMaxObjectSize
	}
}

func (v *validator) upstream(u *Upstream, p string) {
	if (len(u.Backends) == 0) == (u.DNS == nil) {
		v.fail(p, "exactly one of backends and dns is required")
	}
	seen := map[string]bool{}
	for i := range u.Backends {
		b := &u.Backends[i]
		bp := p + ".backends[" + itoa(i) + "]"
		if b.Weight == 0 {
			b.Weight = 1
		}
		if b.Weight < 1 || b.Weight > lb.MaxWeight {
			v.fail(bp+".weight", "want 1 to %d", lb.MaxWeight)
		}
		if _, err := lb.NewBackends(lb.Backend{Addr: b.Address}); err != nil || b.Address == "" {
			v.fail(bp, "want host:port or unix:/path")
		} else if seen[b.Address] {
			v.fail(bp, "backend given twice")
		}
		seen[b.Address] = true
	}
	if d := u.DNS; d != nil {
		if d.Name == "" {
			v.fail(p+".dns.name", "a name is required")
		}
		if !d.SRV && (d.Port < 1 || d.Port > 65535) {
			v.fail(p+".dns.port", "want a port, 1 to 65535")
		}
		switch d.Network {
		case "":
			d.Network = "ip"
		case "ip", "ip4", "ip6":
		default:
			v.fail(p+".dns.network", "want ip, ip4 or ip6")
		}
		setDefault(&d.Timeout, lb.DefaultDNSTimeout)
		setDefault(&d.MinTTL, lb.DefaultMinTTL)
		setDefault(&d.MaxTTL, lb.DefaultMaxTTL)
		if d.MinTTL > d.MaxTTL {
			v.fail(p+".dns.min_ttl", "greater than max_ttl")
		}
	}
	if u.Algorithm == "" {
		u.Algorithm = "round_robin"
	}
	if _, ok := Algorithms[u.Algorithm]; !ok {
		v.fail(p+".algorithm", "want one of %s", strings.Join(sortedNames(Algorithms), ", "))
	}
	if hashed(u.Algorithm) {
		if u.HashKey == "" {
			u.HashKey = "client_ip"
		}
		if u.HashKey != "client_ip" && u.HashKey != "path" && headerKey(u.HashKey) == "" {
			v.fail(p+".hash_key", "want client_ip, path or header:NAME")
		}
	} else if u.HashKey != "" {
		v.fail(p+".hash_key", "only consistent_hash and maglev use a hash key")
	}
	if h := u.HealthCheck; h != nil {
		switch h.Type {
		case "tcp":
			if h.Path != "" || h.Host != "" || h.Status != 0 || h.Body != "" {
				v.fail(p+".health_check", "path, host, status and body are for http checks")
			}
		case "http":
			if h.Path == "" {
				h.Path = "/"
			}
			if !strings.HasPrefix(h.Path, "/") {
				v.fail(p+".health_check.path", "a path starts with /")
			}
			if h.Status == 0 {
				h.Status = 200
			}
			if h.Status < 100 || h.Status > 599 {
				v.fail(p+".health_check.status", "want a status, 100 to 599")
			}
		default:
			v.fail(p+".health_check.type", "want tcp or http")
		}
		setDefault(&h.Interval, DefaultHealthInterval)
		setDefault(&h.Timeout, DefaultCheckTimeout)
		if h.Healthy == 0 {
			h.Healthy = 1
		}
		if h.Unhealthy == 0 {
			h.Unhealthy = 1
		}
		if h.Healthy < 1 || h.Unhealthy < 1 {
			v.fail(p+".health_check", "healthy and unhealthy are counts above 0")
		}
	}
	if t := u.TLS; t != nil {
		if t.Verify == nil {
			t.Verify = ptr(true)
		}
		if *t.Verify && t.SNI == "" {
			for i, b := range u.Backends {
				if h, _, err := net.SplitHostPort(b.Address); err != nil || validIP(h) {
					v.fail(p+".backends["+itoa(i)+"]", "verifying the certificate of an IP address or unix socket needs tls.sni (or tls.verify: false)")
				}
			}
			if u.DNS != nil && u.DNS.SRV {
				v.fail(p+".tls.sni", "verifying the certificates of SRV backends needs tls.sni (or tls.verify: false)")
			}
		}
	}
	setDefault(&u.ConnectTimeout, DefaultConnectTimeout)
	setDefault(&u.ReadTimeout, DefaultReadTimeout)
	setDefault(&u.WriteTimeout, DefaultWriteTimeout)
	setDefault(&u.IdleTimeout, DefaultIdleTimeout)
	if u.Retries == nil {
		u.Retries = ptr(DefaultRetries)
	}
	if *u.Retries < 0 || *u.Retries > proxy.DefaultMaxRetries-1 {
		v.fail(p+".retries", "want 0 to %d", proxy.DefaultMaxRetries-1)
	}
}

func setDefault(d *Duration, def time.Duration) {
	if *d == 0 {
		*d = Duration(def)
	}
}

// headerKey returns NAME of "header:NAME", or "" when k is not of that form.
func headerKey(k string) string {
	name, ok := strings.CutPrefix(k, "header:")
	if !ok || !methodRE.MatchString(name) {
		return ""
	}
	return name
}

// validHostPattern reports whether h is a host name or "*." and a host name.
func validHostPattern(h string) bool {
	h = strings.TrimPrefix(h, "*.")
	if h == "" || len(h) > 253 {
		return false
	}
	if _, err := netip.ParseAddr(strings.Trim(h, "[]")); err == nil {
		return true
	}
	for _, label := range strings.Split(strings.TrimSuffix(h, "."), ".") {
		if label == "" || len(label) > 63 {
			return false
		}
		for _, c := range label {
			if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

// validIP reports whether h is an IP address.
func validIP(h string) bool {
	_, err := netip.ParseAddr(h)
	return err == nil
}

// parsePrefix reads a CIDR range or a single address.
func parsePrefix(s string) (netip.Prefix, error) {
	if strings.Contains(s, "/") {
		p, err := netip.ParsePrefix(s)
		return p.Masked(), err
	}
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
}

// checkHash checks the form of a password hash.
func checkHash(h string) error {
	if hx, ok := strings.CutPrefix(h, "sha256:"); ok {
		if b, err := hex.DecodeString(hx); err != nil || len(b) != 32 {
			return errWant("sha256: and 64 hexadecimal digits")
		}
		return nil
	}
	if isBcrypt(h) {
		if _, err := bcryptCost(h); err != nil {
			return errWant("a bcrypt hash: " + err.Error())
		}
		return nil
	}
	return errWant("a bcrypt hash ($2y$...) or sha256:HEX")
}

func isBcrypt(h string) bool {
	return strings.HasPrefix(h, "$2a$") || strings.HasPrefix(h, "$2b$") || strings.HasPrefix(h, "$2y$")
}

// sortedNames returns the keys of m, sorted.
func sortedNames[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	return ks
}
