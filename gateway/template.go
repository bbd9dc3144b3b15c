package gateway

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"strings"

	"github.com/pingora-go/pingora/proxy"
)

// variable is a $name a template replaces with a property of the request.
type variable uint8

const (
	varNone variable = iota
	varScheme
	varHost
	varPath
	varQuery
	varIsQuery
	varMethod
	varClientIP
)

var variables = map[string]variable{
	"scheme":    varScheme,
	"host":      varHost,
	"path":      varPath,
	"query":     varQuery,
	"is_query":  varIsQuery,
	"method":    varMethod,
	"client_ip": varClientIP,
}

// template is a text with $variables: "https://$host$path$is_query$query". "$$" is a dollar
// sign, and so is a "$" not followed by a letter or "{".
type template struct {
	parts []part
	plain bool // no variable: parts is one literal (or none)
}

type part struct {
	lit string
	v   variable
}

// parseTemplate compiles s; an unknown variable is an error.
func parseTemplate(s string) (*template, error) {
	t := &template{plain: true}
	var lit strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 == len(s) {
			lit.WriteByte(c)
			continue
		}
		next := s[i+1]
		var name string
		switch {
		case next == '$':
			lit.WriteByte('$')
			i++
			continue
		case next == '{':
			end := strings.IndexByte(s[i:], '}')
			if end < 0 {
				return nil, fmt.Errorf("unclosed ${ at byte %d", i)
			}
			name = s[i+2 : i+end]
			i += end
		case next >= 'a' && next <= 'z' || next >= 'A' && next <= 'Z' || next == '_':
			j := i + 1
			for j < len(s) && (s[j] >= 'a' && s[j] <= 'z' || s[j] >= 'A' && s[j] <= 'Z' || s[j] == '_' || s[j] >= '0' && s[j] <= '9') {
				j++
			}
			name = s[i+1 : j]
			i = j - 1
		default:
			lit.WriteByte(c)
			continue
		}
		v, ok := variables[name]
		if !ok {
			return nil, fmt.Errorf("unknown variable $%s (the variables are $scheme, $host, $path, $query, $is_query, $method and $client_ip; write $$ for a dollar sign)", name)
		}
		if lit.Len() > 0 {
			t.parts = append(t.parts, part{lit: lit.String()})
			lit.Reset()
		}
		t.parts = append(t.parts, part{v: v})
		t.plain = false
	}
	if lit.Len() > 0 {
		t.parts = append(t.parts, part{lit: lit.String()})
	}
	return t, nil
}

// mustTemplate compiles a template validate already checked.
func mustTemplate(s string) *template {
	t, err := parseTemplate(s)
	if err != nil {
		panic(err)
	}
	return t
}

// expand appends the text for the request of s to dst.
func (t *template) expand(dst []byte, s *proxy.Session) []byte {
	for _, p := range t.parts {
		switch p.v {
		case varNone:
			dst = append(dst, p.lit...)
		case varScheme:
			if _, ok := s.TLSState(); ok {
				dst = append(dst, "https"...)
			} else {
				dst = append(dst, "http"...)
			}
		case varHost:
			dst = append(dst, hostOnly(s.Req().Host())...)
		case varPath:
			dst = append(dst, s.Req().Path()...)
		case varQuery:
			dst = append(dst, s.Req().Query()...)
		case varIsQuery:
			if len(s.Req().Query()) > 0 {
				dst = append(dst, '?')
			}
		case varMethod:
			dst = append(dst, s.Req().Method()...)
		case varClientIP:
			if ip, ok := clientIP(s); ok {
				dst = ip.AppendTo(dst)
			}
		}
	}
	return dst
}

// String returns the text of a template without variables.
func (t *template) String() string {
	var b strings.Builder
	for _, p := range t.parts {
		b.WriteString(p.lit)
	}
	return b.String()
}

// clientIP returns the client's IP address (IPv4-mapped addresses as IPv4); ok is false for
// a client without one, such as on a unix socket.
func clientIP(s *proxy.Session) (netip.Addr, bool) {
	switch a := s.ClientAddr().(type) {
	case *net.TCPAddr:
		ip, ok := netip.AddrFromSlice(a.IP)
		return ip.Unmap(), ok
	case nil:
		return netip.Addr{}, false
	default:
		ap, err := netip.ParseAddrPort(a.String())
		return ap.Addr().Unmap(), err == nil
	}
}

// hostOnly returns the host of a Host field value, lowercased, without port and trailing
// dot. It allocates only when the name has upper-case letters.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i > 0 {
			h = h[:i+1]
		}
	} else if i := bytes.LastIndexByte(h, ':'); i >= 0 && bytes.IndexByte(h, ':') == i {
		h = h[:i]
	}
	if n := len(h); n > 0 && h[n-1] == '.' {
		h = h[:n-1]
	}
	for i, c := range h {
		if c >= 'A' && c <= 'Z' {
			l := append([]byte(nil), h...)
			for j := i; j < len(l); j++ {
				if l[j] >= 'A' && l[j] <= 'Z' {
					l[j] += 'a' - 'A'
				}
			}
			return l
		}
	}
	return h
}
