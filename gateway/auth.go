package gateway

import (
	"bytes"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"net/netip"
	"strings"
	"sync"

	"golang.org/x/crypto/bcrypt"

	"github.com/pingora-go/pingora/header"
)

// maxVerified caps the cache of credentials whose bcrypt hash was verified.
const maxVerified = 1024

// maxAuthorization caps the Authorization value decoded.
const maxAuthorization = 4096

// basicAuth checks the credentials of HTTP basic authentication.
type basicAuth struct {
	challenge string // the WWW-Authenticate value
	users     map[string]credential

	// bcrypt costs tens of milliseconds a check by design; a client sends the same credentials
	// with every request, so verified ones are remembered, by a SHA-256 of the user, the
	// password and the stored hash (so that a changed hash is not matched).
	mu       sync.Mutex // guards verified
	verified map[[32]byte]struct{}
}

// credential is a stored password hash: a SHA-256, or a bcrypt hash.
type credential struct {
	sha    []byte
	bcrypt []byte
}

// dummySHA is compared with when the user is unknown, so that an unknown user costs the
// same time as a wrong password.
var dummySHA = make([]byte, sha256.Size)

func newBasicAuth(a *BasicAuth) *basicAuth {
	ba := &basicAuth{
		challenge: `Basic realm="` + a.Realm + `", charset="UTF-8"`,
		users:     map[string]credential{},
		verified:  map[[32]byte]struct{}{},
	}
	for u, h := range a.Users {
		if hx, ok := strings.CutPrefix(h, "sha256:"); ok {
			b, _ := hex.DecodeString(hx)
			ba.users[u] = credential{sha: b}
		} else {
			ba.users[u] = credential{bcrypt: []byte(h)}
		}
	}
	return ba
}

// bcryptCost returns the cost of a bcrypt hash, or why it is not one.
func bcryptCost(h string) (int, error) { return bcrypt.Cost([]byte(h)) }

// check reports whether req carries the credentials of a user.
func (a *basicAuth) check(req *header.RequestHeader) bool {
	v, ok := req.Get("Authorization")
	if !ok || len(v) > maxAuthorization || len(v) < 6 || !header.EqualFold(v[:6], "basic ") {
		return false
	}
	var buf [maxAuthorization]byte
	n, err := base64.StdEncoding.Decode(buf[:], bytes.TrimSpace(v[6:]))
	if err != nil {
		return false
	}
	user, pass, ok := bytes.Cut(buf[:n], []byte{':'})
	if !ok {
		return false
	}
	cred, known := a.users[string(user)]
	if cred.bcrypt == nil {
		want := cred.sha
		if !known {
			want = dummySHA
		}
		got := sha256.Sum256(pass)
		return subtle.ConstantTimeCompare(got[:], want) == 1 && known
	}
	h := sha256.New()
	h.Write(user)
	h.Write([]byte{0})
	h.Write(pass)
	h.Write([]byte{0})
	h.Write(cred.bcrypt)
	var key [32]byte
	h.Sum(key[:0])
	a.mu.Lock()
	_, hit := a.verified[key]
	a.mu.Unlock()
	if hit {
		return true
	}
	if bcrypt.CompareHashAndPassword(cred.bcrypt, pass) != nil {
		return false
	}
	a.mu.Lock()
	if len(a.verified) >= maxVerified {
		clear(a.verified)
	}
	a.verified[key] = struct{}{}
	a.mu.Unlock()
	return true
}

// cidrs is a route's client address policy.
type cidrs struct {
	allow, deny []netip.Prefix
}

func newCIDRs(allow, deny []string) *cidrs {
	if len(allow) == 0 && len(deny) == 0 {
		return nil
	}
	c := &cidrs{}
	for _, s := range allow {
		p, _ := parsePrefix(s)
		c.allow = append(c.allow, p)
	}
	for _, s := range deny {
		p, _ := parsePrefix(s)
		c.deny = append(c.deny, p)
	}
	return c
}

// admits reports whether a client at ip (ok false: without an IP address, as on a unix
// socket) may use the route: no deny range holds it, and an allow range does when there
// are any.
func (c *cidrs) admits(ip netip.Addr, ok bool) bool {
	if !ok {
		return len(c.allow) == 0
	}
	for _, p := range c.deny {
		if p.Contains(ip) {
			return false
		}
	}
	if len(c.allow) == 0 {
		return true
	}
	for _, p := range c.allow {
		if p.Contains(ip) {
			return true
		}
	}
	return false
}
