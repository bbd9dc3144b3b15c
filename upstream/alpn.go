package upstream

import "strconv"

// ALPN is the HTTP version preference for a peer, offered through TLS ALPN.
// The zero value is H1.
type ALPN uint8

const (
	// H1 speaks HTTP/1.1 only.
	H1 ALPN = iota
	// H2 speaks HTTP/2 only.
	H2
	// H2H1 prefers HTTP/2 and falls back to HTTP/1.1.
	H2H1
)

var (
	protosH1   = []string{"http/1.1"}
	protosH2   = []string{"h2"}
	protosH2H1 = []string{"h2", "http/1.1"}
)

// NewALPN returns the preference for the HTTP versions max and min (1 or 2):
// max 1 is H1, otherwise min 2 is H2, otherwise H2H1.
func NewALPN(max, min uint8) ALPN {
	switch {
	case max == 1:
		return H1
	case min == 2:
		return H2
	default:
		return H2H1
	}
}

// MaxHTTPVersion returns the highest HTTP major version a allows.
func (a ALPN) MaxHTTPVersion() uint8 {
	if a == H1 {
		return 1
	}
	return 2
}

// MinHTTPVersion returns the lowest HTTP major version a allows.
func (a ALPN) MinHTTPVersion() uint8 {
	if a == H2 {
		return 2
	}
	return 1
}

// NextProtos returns the protocol names to offer, most preferred first, as
// tls.Config.NextProtos wants them. The slice is shared: do not modify it.
func (a ALPN) NextProtos() []string {
	switch a {
	case H2:
		return protosH2
	case H2H1:
		return protosH2H1
	default:
		return protosH1
	}
}

// String returns "h1", "h2" or "h2h1".
func (a ALPN) String() string {
	switch a {
	case H1:
		return "h1"
	case H2:
		return "h2"
	case H2H1:
		return "h2h1"
	default:
		return "ALPN(" + strconv.Itoa(int(a)) + ")"
	}
}
