// Package gateway is the configuration-driven proxy of the pingora binary: the YAML types of
// its listeners, services, routes and upstream pools, their validation with line numbers,
// the routing of each request to the first route that matches it, the route's actions
// (proxy to an upstream pool, redirect, static response, files from a directory) and
// per-route policies (header edits, path rewrite, rate limit, compression, CIDR allow and
// deny, basic authentication, access log), and live reload.
//
// It is built only on the public API of the framework (proxy, server, listeners, lb,
// upstream, connector, ratelimit, compression, accesslog, metrics), so it doubles as a
// worked example of that API. docs/user_guide/binary.md is the reference of the file format.
//
// A Gateway holds the current configuration behind an atomic pointer: each request takes
// the configuration current when its RequestFilter phase runs and keeps it to its end, so a
// reload (Apply, Reload) changes routes and upstreams for new requests while requests in
// flight finish on the old ones.
package gateway
