package gateway

import (
	"bytes"
	"regexp"
	"strings"

	"github.com/pingora-go/pingora/header"
)

// matcher is the compiled Match of a route.
type matcher struct {
	exactHosts map[string]struct{}
	wildHosts  []string // ".example.com" for "*.example.com"
	path       string
	prefix     string
	pathRE     *regexp.Regexp
	methods    []string
	headers    []headerCond
}

// headerCond is one compiled HeaderMatch.
type headerCond struct {
	name  string
	value []byte
	re    *regexp.Regexp
}

// newMatcher compiles m, which validate checked.
func newMatcher(m *Match) *matcher {
	mt := &matcher{path: m.Path, prefix: m.PathPrefix, methods: m.Methods}
	for _, h := range m.Hosts {
		h = strings.TrimSuffix(strings.ToLower(h), ".")
		if d, ok := strings.CutPrefix(h, "*"); ok {
			mt.wildHosts = append(mt.wildHosts, d)
			continue
		}
		if mt.exactHosts == nil {
			mt.exactHosts = map[string]struct{}{}
		}
		mt.exactHosts[h] = struct{}{}
	}
	if m.PathRegex != "" {
		mt.pathRE = regexp.MustCompile(m.PathRegex)
	}
	for _, h := range m.Headers {
		c := headerCond{name: h.Name}
		if h.Value != "" {
			c.value = []byte(h.Value)
		}
		if h.Regex != "" {
			c.re = regexp.MustCompile(h.Regex)
		}
		mt.headers = append(mt.headers, c)
	}
	return mt
}

// match reports whether req, whose host (see hostOnly) is host, satisfies every condition.
func (m *matcher) match(req *header.RequestHeader, host []byte) bool {
	if m.exactHosts != nil || m.wildHosts != nil {
		if !m.matchHost(host) {
			return false
		}
	}
	path := req.Path()
	if m.path != "" && string(path) != m.path {
		return false
	}
	if m.prefix != "" && !bytes.HasPrefix(path, []byte(m.prefix)) {
		return false
	}
	if m.pathRE != nil && !m.pathRE.Match(path) {
		return false
	}
	if m.methods != nil {
		ok := false
		for _, meth := range m.methods {
			if req.IsMethod(meth) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	for i := range m.headers {
		if !m.headers[i].match(req) {
			return false
		}
	}
	return true
}

func (m *matcher) matchHost(host []byte) bool {
	if _, ok := m.exactHosts[string(host)]; ok {
		return true
	}
	for _, d := range m.wildHosts {
		if len(host) > len(d) && bytes.HasSuffix(host, []byte(d)) {
			return true
		}
	}
	return false
}

// match reports whether a field named c.name satisfies the condition.
func (c *headerCond) match(req *header.RequestHeader) bool {
	found := false
	req.Values(c.name, func(v []byte) bool {
		switch {
		case c.value != nil:
			found = bytes.Equal(v, c.value)
		case c.re != nil:
			found = c.re.Match(v)
		default:
			found = true
		}
		return !found
	})
	return found
}
