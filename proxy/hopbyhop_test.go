package proxy

import (
	"strings"
	"testing"
)

// TestIsHopByHop checks the one-pass test against the list of RFC 9110 §7.6.1: every listed name
// in any case, Connection and Upgrade kept when a protocol switch is forwarded, and no other
// name, including ones of the same lengths.
func TestIsHopByHop(t *testing.T) {
	for _, name := range []string{"Connection", "Keep-Alive", "Proxy-Connection", "TE", "Transfer-Encoding", "Upgrade"} {
		for _, spelled := range []string{name, strings.ToLower(name), strings.ToUpper(name)} {
			if !isHopByHop([]byte(spelled), false) {
				t.Errorf("%q is not hop-by-hop", spelled)
			}
			kept := name == "Connection" || name == "Upgrade"
			if isHopByHop([]byte(spelled), true) == kept {
				t.Errorf("%q with keepUpgrade: hop-by-hop %v", spelled, !kept)
			}
		}
	}
	for _, name := range []string{"", "T", "TEE", "Accept-", "Content-Ty", "Proxy-Connectio", "X-Forwarded-Proto", "Host", "Trailer", "Keep-Alivex"} {
		if isHopByHop([]byte(name), false) {
			t.Errorf("%q taken for hop-by-hop", name)
		}
	}
}
