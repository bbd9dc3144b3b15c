package gateway

import (
	"strconv"
	"strings"
	"time"

	"github.com/pingora-go/pingora/protocols/proxyproto"
)

// Config is the proxy part of a configuration file: the top-level keys listeners, services,
// upstreams, access_log and metrics. The server keys of package conf (version, daemon,
// grace_period_seconds...) share the file and are read by conf.
type Config struct {
	// Listeners are the addresses the proxy accepts connections on.
	Listeners []Listener `yaml:"listeners" json:"listeners"`
	// Services are named lists of routes; each listener serves one service.
	Services map[string]*Service `yaml:"services" json:"services"`
	// Upstreams are named pools of backend servers that routes proxy to.
	Upstreams map[string]*Upstream `yaml:"upstreams,omitempty" json:"upstreams,omitempty"`
	// AccessLog writes one line per request of the routes whose access_log is on.
	AccessLog *AccessLog `yaml:"access_log,omitempty" json:"access_log,omitempty"`
	// Metrics serves Prometheus metrics on an address of its own.
	Metrics *Metrics `yaml:"metrics,omitempty" json:"metrics,omitempty"`
	// Caches are named HTTP caches (RFC 9111, a shared cache) that routes store responses in.
	Caches map[string]*Cache `yaml:"caches,omitempty" json:"caches,omitempty"`
	// Redis is the Redis server that rate limits of scope cluster count in, shared by every
	// instance that names it.
	Redis *Redis `yaml:"redis,omitempty" json:"redis,omitempty"`

	file  string         // the file read, for messages
	dir   string         // relative paths of the file are relative to this directory
	lines map[string]int // the line of each key path
}

// Listener is one address the proxy accepts connections on.
type Listener struct {
	// Address is "host:port" for TCP, or "unix:/path" (or an absolute path) for a unix socket.
	Address string `yaml:"address" json:"address"`
	// Service names the service whose routes answer this listener's requests; it may be left
	// out when there is only one service.
	Service string `yaml:"service" json:"service"`
	// TLS terminates TLS on the listener.
	TLS *ListenerTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// H2 offers HTTP/2 through ALPN on a TLS listener (default true).
	H2 *bool `yaml:"h2,omitempty" json:"h2,omitempty"`
	// H2C also accepts cleartext HTTP/2 with prior knowledge on a plain listener (default false).
	H2C bool `yaml:"h2c" json:"h2c"`
	// ProxyProtocol reads a PROXY protocol header (version 1 or 2) at the start of every
	// connection, as a load balancer in front sends it: true, or a mapping of settings.
	// Requests then see the client's address the header carries.
	ProxyProtocol *ProxyProtocol `yaml:"proxy_protocol,omitempty" json:"proxy_protocol,omitempty"`
}

// ProxyProtocol is how a listener accepts the PROXY protocol. It may be written as true or
// false alone.
type ProxyProtocol struct {
	// Enabled requires the header on every connection (default true when the mapping is
	// given): a connection without a valid one is closed and logged.
	Enabled *bool `yaml:"enabled,omitempty" json:"enabled,omitempty"`
	// From lists the networks (CIDR or IP) the load balancers connect from; a connection from
	// elsewhere is closed before anything is read. Empty: any address.
	From []string `yaml:"from,omitempty" json:"from,omitempty"`
	// Timeout bounds the wait for the header (default 5s).
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
}

// setScalar lets a listener's proxy_protocol be written as true or false.
func (pp *ProxyProtocol) setScalar(s string) error {
	return setSwitch(s, &pp.Enabled, "PROXY protocol settings")
}

// setSwitch reads the scalar form of a setting that is true, false or a mapping: "true" or
// "false" into *on; what names the mapping in the error.
func setSwitch(s string, on **bool, what string) error {
	switch s {
	case "true", "false":
		*on = ptr(s == "true")
		return nil
	}
	return errWant("true, false or a mapping of " + what)
}

// scalarSchemaType is the JSON Schema type of the scalar form.
func (*ProxyProtocol) scalarSchemaType() string { return "boolean" }

// options returns the listener options of pp, nil when it is off.
func (pp *ProxyProtocol) options() *proxyproto.Options {
	if pp == nil || !*pp.Enabled {
		return nil
	}
	o := &proxyproto.Options{Timeout: pp.Timeout.D()}
	for _, f := range pp.From {
		p, _ := parsePrefix(f)
		o.Allow = append(o.Allow, p)
	}
	return o
}

// ListenerTLS is the TLS of a listener: its certificates, chosen by SNI, and client
// certificates.
type ListenerTLS struct {
	// Certificates are served by the SNI name they hold (exactly, or through a wildcard); the
	// first one is served to clients whose name matches none.
	Certificates []Certificate `yaml:"certificates" json:"certificates"`
	// ClientCA is a PEM bundle of CAs; when set, clients must present a certificate they sign.
	ClientCA string `yaml:"client_ca,omitempty" json:"client_ca,omitempty"`
	// MinVersion is the lowest TLS version accepted: "1.2" (default) or "1.3".
	MinVersion string `yaml:"min_version" json:"min_version" enum:"1.2,1.3"`
}

// Certificate names the PEM files of one certificate.
type Certificate struct {
	// Cert is the PEM certificate chain, leaf first.
	Cert string `yaml:"cert" json:"cert"`
	// Key is the PEM private key of the leaf.
	Key string `yaml:"key" json:"key"`
}

// Service is an ordered list of routes: a request goes to the first route that matches it,
// in file order, and is answered 404 when none does.
type Service struct {
	// Routes are tried in order.
	Routes []*Route `yaml:"routes" json:"routes"`
}

// Route matches requests and says what to do with them: exactly one of upstream, redirect,
// respond and files, with the policies that apply before it.
type Route struct {
	// Name identifies the route in logs (default "#N", its position from 0).
	Name string `yaml:"name" json:"name"`
	// Match selects the requests of the route; an empty match takes every request.
	Match Match `yaml:"match" json:"match"`

	// Upstream names the pool the requests are proxied to.
	Upstream string `yaml:"upstream,omitempty" json:"upstream,omitempty"`
	// Redirect answers with a redirection.
	Redirect *Redirect `yaml:"redirect,omitempty" json:"redirect,omitempty"`
	// Respond answers with a fixed response.
	Respond *Respond `yaml:"respond,omitempty" json:"respond,omitempty"`
	// Files answers with files from a directory.
	Files *Files `yaml:"files,omitempty" json:"files,omitempty"`

	// Allow lists the client addresses (CIDR ranges or single IPs) admitted; when set, other
	// clients are refused with 403.
	Allow []string `yaml:"allow,omitempty" json:"allow,omitempty"`
	// Deny lists client addresses refused with 403; it is checked before allow.
	Deny []string `yaml:"deny,omitempty" json:"deny,omitempty"`
	// BasicAuth requires HTTP basic authentication.
	BasicAuth *BasicAuth `yaml:"basic_auth,omitempty" json:"basic_auth,omitempty"`
	// RateLimit limits the request rate per client IP or per header value, on this instance.
	RateLimit *RateLimit `yaml:"rate_limit,omitempty" json:"rate_limit,omitempty"`
	// Rewrite changes the request path before the action sees it.
	Rewrite *Rewrite `yaml:"rewrite,omitempty" json:"rewrite,omitempty"`
	// RequestHeaders edits the request sent upstream.
	RequestHeaders *HeaderEdits `yaml:"request_headers,omitempty" json:"request_headers,omitempty"`
	// ResponseHeaders edits the response sent to the client (of every action; not of the
	// error responses of the policies).
	ResponseHeaders *HeaderEdits `yaml:"response_headers,omitempty" json:"response_headers,omitempty"`
	// Compression compresses responses for clients that accept it, and decompresses upstream
	// responses for clients that do not: true with the defaults, or a mapping of settings
	// (default false: bodies pass as they are).
	Compression *Compression `yaml:"compression,omitempty" json:"compression,omitempty"`
	// WebSocket says what happens to WebSocket sessions (and other Upgrade requests): true
	// (default) lets them through, false refuses them with 403, and a mapping sets allowed
	// origins, timeouts and message rules.
	WebSocket *WebSocket `yaml:"websocket,omitempty" json:"websocket,omitempty"`
	// AccessLog logs the route's requests to the access log, when one is configured (default
	// true).
	AccessLog *bool `yaml:"access_log,omitempty" json:"access_log,omitempty"`
	// Cache names the cache (of caches) that stores the cacheable responses of an upstream
	// route and answers later requests from it; empty caches nothing.
	Cache string `yaml:"cache,omitempty" json:"cache,omitempty"`
}

// Cache is an HTTP cache, in memory or in a directory (where its responses survive a
// restart): exactly one of memory and dir.
type Cache struct {
	// Memory keeps the cache in memory, bounded to this many bytes ("64MiB").
	Memory Size `yaml:"memory,omitempty" json:"memory,omitempty"`
	// Dir keeps the cache in this directory.
	Dir string `yaml:"dir,omitempty" json:"dir,omitempty"`
	// Disk bounds the cache in dir (default 1GiB).
	Disk Size `yaml:"disk,omitempty" json:"disk,omitempty"`
	// MaxObjectSize is the largest response body stored; larger ones stream through without
	// being stored (default 64MiB).
	MaxObjectSize Size `yaml:"max_object_size,omitempty" json:"max_object_size,omitempty"`
}

// Size is a number of bytes written as a count with an optional unit: "512", "64k", "10MB",
// "64MiB", "1GiB" (k, M, G, T are powers of 1000; KiB, MiB, GiB, TiB of 1024).
type Size int64

// MarshalYAML writes s as a count of bytes.
func (s Size) MarshalYAML() (any, error) { return int64(s), nil }

// setScalar parses a size.
func (s *Size) setScalar(v string) error {
	n, err := ParseSize(v)
	if err != nil {
		return errWant("a size such as 64MiB or 500k")
	}
	*s = Size(n)
	return nil
}

// ParseSize parses a number of bytes with an optional unit, as Size is written.
func ParseSize(v string) (int64, error) {
	v = strings.TrimSpace(v)
	i := 0
	for i < len(v) && v[i] >= '0' && v[i] <= '9' {
		i++
	}
	n, err := strconv.ParseInt(v[:i], 10, 64)
	if err != nil || n < 0 {
		return 0, errWant("a size")
	}
	mult := int64(1)
	switch strings.ToLower(strings.TrimSpace(v[i:])) {
	case "", "b":
	case "k", "kb":
		mult = 1000
	case "m", "mb":
		mult = 1000 * 1000
	case "g", "gb":
		mult = 1000 * 1000 * 1000
	case "t", "tb":
		mult = 1000 * 1000 * 1000 * 1000
	case "kib":
		mult = 1 << 10
	case "mib":
		mult = 1 << 20
	case "gib":
		mult = 1 << 30
	case "tib":
		mult = 1 << 40
	default:
		return 0, errWant("a size unit of k, M, G, T, KiB, MiB, GiB or TiB")
	}
	if n > (1<<63-1)/mult {
		return 0, errWant("a size below 8 EiB")
	}
	return n * mult, nil
}

// Match is what a request must have to take a route: every condition given must hold.
type Match struct {
	// Hosts are host names, exact ("example.com") or wildcard ("*.example.com": any name that
	// ends in ".example.com"); the request's Host (HTTP/2 :authority) must be one of them.
	// Names compare without case, port and trailing dot.
	Hosts []string `yaml:"hosts,omitempty" json:"hosts,omitempty"`
	// Path is an exact path the request path must equal.
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// PathPrefix is a prefix the request path must start with.
	PathPrefix string `yaml:"path_prefix,omitempty" json:"path_prefix,omitempty"`
	// PathRegex is a regular expression (Go RE2 syntax) the request path must match somewhere;
	// anchor it with ^ and $ to match all of it.
	PathRegex string `yaml:"path_regex,omitempty" json:"path_regex,omitempty"`
	// Methods are request methods, one of which the request must have.
	Methods []string `yaml:"methods,omitempty" json:"methods,omitempty"`
	// Headers are header conditions, all of which must hold.
	Headers []HeaderMatch `yaml:"headers,omitempty" json:"headers,omitempty"`
}

// HeaderMatch is a condition on a request header.
type HeaderMatch struct {
	// Name is the field name, compared without case.
	Name string `yaml:"name" json:"name"`
	// Value, when set, must equal the value of a field of that name.
	Value string `yaml:"value,omitempty" json:"value,omitempty"`
	// Regex, when set, must match the value of a field of that name. Without value or regex
	// the field only has to be present.
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
}

// Redirect answers with a redirection to location.
type Redirect struct {
	// Status is 301, 302 (default), 303, 307 or 308.
	Status int `yaml:"status" json:"status" enum:"301,302,303,307,308"`
	// Location is the target; $scheme, $host, $path (after rewrite), $query (without "?"),
	// $is_query ("?" when there is a query), $method and $client_ip are replaced.
	Location string `yaml:"location" json:"location"`
}

// Respond answers with a fixed response.
type Respond struct {
	// Status is the status code (default 200).
	Status int `yaml:"status" json:"status"`
	// Headers are the response's header fields.
	Headers map[string]string `yaml:"headers,omitempty" json:"headers,omitempty"`
	// Body is the response body; the variables of redirect locations are replaced in it.
	Body string `yaml:"body" json:"body"`
}

// Files answers GET and HEAD requests with files from a directory, with Content-Type by
// extension, ETag, Last-Modified, conditional requests (304) and byte ranges (206, 416).
type Files struct {
	// Root is the directory; a relative path is relative to the configuration file's
	// directory. Paths cannot leave it, not even through symbolic links.
	Root string `yaml:"root" json:"root"`
	// Index is the file served for a directory path (default "index.html"); a directory
	// without it is answered 404, there are no listings.
	Index string `yaml:"index" json:"index"`
	// CacheControl, when set, is sent as the Cache-Control of every file.
	CacheControl string `yaml:"cache_control,omitempty" json:"cache_control,omitempty"`
}

// BasicAuth requires HTTP basic authentication (RFC 7617); a request without valid
// credentials is answered 401 with a WWW-Authenticate challenge.
type BasicAuth struct {
	// Realm is shown by browsers (default "restricted").
	Realm string `yaml:"realm" json:"realm"`
	// Users maps user names to password hashes: bcrypt ("$2a$", "$2b$" or "$2y$", as made by
	// htpasswd -B) or "sha256:" followed by the hexadecimal SHA-256 of the password.
	Users map[string]string `yaml:"users" json:"users"`
}

// RateLimit admits at most requests per window for each key; other requests are answered
// 429 with Retry-After. Allowed responses carry the RateLimit-* fields.
type RateLimit struct {
	// Requests is the number of requests a key may make per window.
	Requests int64 `yaml:"requests" json:"requests"`
	// Window is the time the quota applies to (default 1s).
	Window Duration `yaml:"window" json:"window"`
	// Key is what requests are counted by: "client_ip" (default) or "header:NAME" (requests
	// without the field are not limited).
	Key string `yaml:"key" json:"key"`
	// Scope is where requests are counted: "local" (default) on this instance, "cluster"
	// across every instance sharing the top-level redis (GCRA in Redis, with tokens leased
	// locally).
	Scope string `yaml:"scope" json:"scope" enum:"local,cluster"`
	// Burst is how many requests a key may make at once after a quiet spell, with scope
	// cluster (default Requests).
	Burst int64 `yaml:"burst,omitempty" json:"burst,omitempty"`
	// OnRedisError decides requests of scope cluster while Redis is unreachable: "open"
	// (default) lets them through, "closed" refuses them with 429, "local" counts them on this
	// instance against the same quota.
	OnRedisError string `yaml:"on_redis_error,omitempty" json:"on_redis_error,omitempty" enum:"open,closed,local"`
}

// Redis is a Redis server (standalone) for rate limits of scope cluster.
type Redis struct {
	// Address is "host:port", or "unix:/path" for a unix socket.
	Address string `yaml:"address" json:"address"`
	// Username and Password authenticate (Redis 6 ACL); both may be left out.
	Username string `yaml:"username,omitempty" json:"username,omitempty"`
	// Password is the password; PasswordFile names a file holding it instead (its first line).
	Password string `yaml:"password,omitempty" json:"password,omitempty"`
	// PasswordFile is a file whose first line is the password, relative to this file.
	PasswordFile string `yaml:"password_file,omitempty" json:"password_file,omitempty"`
	// DB is the database number (default 0).
	DB int `yaml:"db,omitempty" json:"db,omitempty"`
	// Timeout bounds each call of a rate limit decision (default 100ms); a request is
	// decided by on_redis_error when it passes.
	Timeout Duration `yaml:"timeout,omitempty" json:"timeout,omitempty"`
	// Prefix is put before every key written in Redis (default "pingora:ratelimit:").
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
}

// Rewrite changes the request path (the query stays): either a prefix is replaced, or a
// regular expression's match is.
type Rewrite struct {
	// Prefix is replaced by replacement when the path starts with it.
	Prefix string `yaml:"prefix,omitempty" json:"prefix,omitempty"`
	// Regex's first match in the path is replaced by replacement, in which $1, ${name}...
	// stand for its groups.
	Regex string `yaml:"regex,omitempty" json:"regex,omitempty"`
	// Replacement is what replaces the match; a result that does not start with "/" gets one.
	Replacement string `yaml:"replacement" json:"replacement"`
}

// HeaderEdits change header fields: remove first, then set (replacing every field of the
// name), then add (appending). Values may hold the variables of redirect locations.
type HeaderEdits struct {
	// Remove lists field names to remove.
	Remove []string `yaml:"remove,omitempty" json:"remove,omitempty"`
	// Set maps field names to the value that replaces them.
	Set map[string]string `yaml:"set,omitempty" json:"set,omitempty"`
	// Add maps field names to a value appended as a new field.
	Add map[string]string `yaml:"add,omitempty" json:"add,omitempty"`
}

// Upstream is a pool of backend servers: a static list or DNS discovery, an algorithm that
// picks one per request, health checks, and how connections to them are made.
type Upstream struct {
	// Backends are the servers: "host:port" (or "unix:/path"), or {address, weight}.
	Backends []Backend `yaml:"backends,omitempty" json:"backends,omitempty"`
	// DNS discovers the backends from DNS records instead, refreshed by their TTL.
	DNS *DNS `yaml:"dns,omitempty" json:"dns,omitempty"`
	// Algorithm picks a backend: round_robin (default; each backend weight times in a row),
	// weighted_round_robin (nginx's smooth weighted round robin), random, least_inflight
	// (fewest requests in flight per unit of weight), consistent_hash (ketama, as nginx's
	// "hash ... consistent") or maglev.
	Algorithm string `yaml:"algorithm" json:"algorithm" enum:"round_robin,weighted_round_robin,random,least_inflight,consistent_hash,maglev"`
	// HashKey is what consistent_hash and maglev hash: "client_ip" (default), "path", or
	// "header:NAME".
	HashKey string `yaml:"hash_key,omitempty" json:"hash_key,omitempty"`
	// HealthCheck checks the backends actively; unhealthy ones take no requests while a
	// healthy one remains (when none does, requests go to them all the same).
	HealthCheck *HealthCheck `yaml:"health_check,omitempty" json:"health_check,omitempty"`
	// TLS speaks TLS to the backends.
	TLS *UpstreamTLS `yaml:"tls,omitempty" json:"tls,omitempty"`
	// HTTP2 speaks HTTP/2 to the backends: with TLS offered through ALPN with HTTP/1.1 as the
	// fallback, without TLS as cleartext HTTP/2 with prior knowledge (default false).
	HTTP2 bool `yaml:"http2" json:"http2"`
	// ConnectTimeout bounds the TCP connect and, separately, the TLS handshake (default 5s).
	ConnectTimeout Duration `yaml:"connect_timeout" json:"connect_timeout"`
	// ReadTimeout bounds each read from a backend (default 60s).
	ReadTimeout Duration `yaml:"read_timeout" json:"read_timeout"`
	// WriteTimeout bounds each write to a backend (default 60s).
	WriteTimeout Duration `yaml:"write_timeout" json:"write_timeout"`
	// IdleTimeout is how long an idle connection is kept for reuse (default 60s).
	IdleTimeout Duration `yaml:"idle_timeout" json:"idle_timeout"`
	// Retries is how many times a request whose connection failed is tried again, on another
	// backend when there is one (default 2).
	Retries *int `yaml:"retries,omitempty" json:"retries,omitempty"`
}

// Backend is one server of a static pool.
type Backend struct {
	// Address is "host:port" or "unix:/path".
	Address string `yaml:"address" json:"address"`
	// Weight is the backend's share of requests, 1 (default) to 65536.
	Weight int `yaml:"weight" json:"weight"`
}

// setScalar lets a backend be written as its address alone.
func (b *Backend) setScalar(s string) error {
	b.Address = s
	return nil
}

// DNS discovers backends from DNS records.
type DNS struct {
	// Name is the host name to resolve (or, with srv, the SRV name such as
	// "_http._tcp.example.com").
	Name string `yaml:"name" json:"name"`
	// Port is the backends' port for A and AAAA records.
	Port int `yaml:"port,omitempty" json:"port,omitempty"`
	// SRV resolves SRV records, which carry the port and weight.
	SRV bool `yaml:"srv" json:"srv"`
	// Network is "ip" (A and AAAA, default), "ip4" or "ip6".
	Network string `yaml:"network" json:"network" enum:"ip,ip4,ip6"`
	// Resolver is the DNS server, "host:port" (default the first nameserver of
	// /etc/resolv.conf).
	Resolver string `yaml:"resolver,omitempty" json:"resolver,omitempty"`
	// Timeout bounds each DNS exchange (default 2s).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// MinTTL and MaxTTL clamp the records' TTL, which decides when they are resolved again
	// (default 1s and 5m).
	MinTTL Duration `yaml:"min_ttl" json:"min_ttl"`
	MaxTTL Duration `yaml:"max_ttl" json:"max_ttl"`
}

// HealthCheck checks backends in the background.
type HealthCheck struct {
	// Type is "tcp" (a connection opens, and the TLS handshake completes for a TLS pool) or
	// "http" (a request gets the expected status and body).
	Type string `yaml:"type" json:"type" enum:"tcp,http"`
	// Interval is the time between two rounds of checks (default 5s).
	Interval Duration `yaml:"interval" json:"interval"`
	// Timeout bounds one check (default 1s).
	Timeout Duration `yaml:"timeout" json:"timeout"`
	// Healthy is how many passed checks in a row bring a backend back (default 1).
	Healthy int `yaml:"healthy" json:"healthy"`
	// Unhealthy is how many failed checks in a row take a backend out (default 1).
	Unhealthy int `yaml:"unhealthy" json:"unhealthy"`
	// Path is the HTTP check's request path (default "/").
	Path string `yaml:"path,omitempty" json:"path,omitempty"`
	// Host is the HTTP check's Host (default the backend's address).
	Host string `yaml:"host,omitempty" json:"host,omitempty"`
	// Status is the status the HTTP check expects (default 200).
	Status int `yaml:"status,omitempty" json:"status,omitempty"`
	// Body, when set, must occur in the first 64 KiB of the HTTP check's response body.
	Body string `yaml:"body,omitempty" json:"body,omitempty"`
}

// UpstreamTLS is the TLS spoken to a pool's backends.
type UpstreamTLS struct {
	// SNI is the server name sent and verified (default the backend's host when it is a name).
	SNI string `yaml:"sni,omitempty" json:"sni,omitempty"`
	// CAFile is a PEM bundle of the CAs trusted (default ca_file of the server keys, else the
	// system roots).
	CAFile string `yaml:"ca_file,omitempty" json:"ca_file,omitempty"`
	// Verify checks the certificate and its name (default true).
	Verify *bool `yaml:"verify,omitempty" json:"verify,omitempty"`
}

// AccessLog is the access log: one JSON line per request.
type AccessLog struct {
	// Path is the file appended to ("-" for standard error); it is reopened on SIGUSR1.
	Path string `yaml:"path" json:"path"`
}

// Metrics serves Prometheus metrics.
type Metrics struct {
	// Address is where GET /metrics is served, "host:port".
	Address string `yaml:"address" json:"address"`
}

// Duration is a length of time written as Go writes it: "250ms", "5s", "1m30s".
type Duration time.Duration

// D returns d as a time.Duration.
func (d Duration) D() time.Duration { return time.Duration(d) }

// MarshalYAML writes d as a string such as "5s".
func (d Duration) MarshalYAML() (any, error) { return time.Duration(d).String(), nil }

// setScalar parses a duration.
func (d *Duration) setScalar(s string) error {
	v, err := time.ParseDuration(strings.TrimSpace(s))
	if err != nil {
		return errWant("a duration such as 5s or 250ms")
	}
	if v < 0 {
		return errWant("a duration that is not negative")
	}
	*d = Duration(v)
	return nil
}

// wantError is a value of the wrong type or form.
type wantError string

func (e wantError) Error() string { return "want " + string(e) }

func errWant(s string) error { return wantError(s) }

// ptr returns a pointer to v, for defaults of optional fields.
func ptr[T any](v T) *T { return &v }

// itoa is strconv.Itoa, for paths.
func itoa(i int) string { return strconv.Itoa(i) }
