package ws

import (
	"strconv"
	"strings"
)

// Extension is one element of a Sec-WebSocket-Extensions field: a name and its parameters
// (RFC 6455 §9.1).
type Extension struct {
	Name   string
	Params []Param
}

// Param is an extension parameter; Value is empty when HasValue is false.
type Param struct {
	Name     string
	Value    string
	HasValue bool
}

// MaxExtensions bounds how many extension elements ParseExtensions accepts, so that a field
// cannot make it allocate without limit.
const MaxExtensions = 32

// ParseExtensions parses the values of Sec-WebSocket-Extensions fields (each a comma-separated
// list) in order. Quoted parameter values are unquoted.
func ParseExtensions(values ...string) ([]Extension, error) {
	var exts []Extension
	for _, v := range values {
		p := extParser{s: v}
		for {
			p.ows()
			if p.done() {
				break
			}
			if p.peek() == ',' {
				p.i++ // empty list elements are allowed (RFC 9110 §5.6.1)
				continue
			}
			if len(exts) == MaxExtensions {
				return nil, protoErr("too many extensions")
			}
			e, err := p.extension()
			if err != nil {
				return nil, err
			}
			exts = append(exts, e)
			p.ows()
			if p.done() {
				break
			}
			if p.peek() != ',' {
				return nil, protoErr("malformed Sec-WebSocket-Extensions")
			}
			p.i++
		}
	}
	return exts, nil
}

type extParser struct {
	s string
	i int
}

func (p *extParser) done() bool { return p.i >= len(p.s) }
func (p *extParser) peek() byte { return p.s[p.i] }

func (p *extParser) ows() {
	for p.i < len(p.s) && (p.s[p.i] == ' ' || p.s[p.i] == '\t') {
		p.i++
	}
}

func (p *extParser) token() string {
	start := p.i
	for p.i < len(p.s) && isTokenChar(p.s[p.i]) {
		p.i++
	}
	return p.s[start:p.i]
}

func (p *extParser) extension() (Extension, error) {
	var e Extension
	if e.Name = p.token(); e.Name == "" {
		return e, protoErr("malformed Sec-WebSocket-Extensions")
	}
	for {
		p.ows()
		if p.done() || p.peek() != ';' {
			return e, nil
		}
		p.i++
		p.ows()
		var prm Param
		if prm.Name = p.token(); prm.Name == "" {
			return e, protoErr("malformed extension parameter")
		}
		p.ows()
		if !p.done() && p.peek() == '=' {
			p.i++
			p.ows()
			prm.HasValue = true
			if !p.done() && p.peek() == '"' {
				v, ok := p.quoted()
				if !ok {
					return e, protoErr("malformed quoted extension parameter")
				}
				prm.Value = v
			} else if prm.Value = p.token(); prm.Value == "" {
				return e, protoErr("malformed extension parameter value")
			}
		}
		e.Params = append(e.Params, prm)
	}
}

// quoted reads a quoted-string; RFC 6455 §9.1 requires its content to be a token after
// unescaping, which the users of the value check.
func (p *extParser) quoted() (string, bool) {
	p.i++ // opening quote
	var b strings.Builder
	for p.i < len(p.s) {
		c := p.s[p.i]
		p.i++
		switch c {
		case '"':
			return b.String(), true
		case '\\':
			if p.i == len(p.s) {
				return "", false
			}
			b.WriteByte(p.s[p.i])
			p.i++
		default:
			b.WriteByte(c)
		}
	}
	return "", false
}

func isTokenChar(c byte) bool {
	if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// DeflateName is the extension token of permessage-deflate.
const DeflateName = "permessage-deflate"

// DeflateParams are the negotiated parameters of permessage-deflate (RFC 7692 §7.1). The
// window bits are 8 to 15; 15 (the DEFLATE maximum) is what applies when a parameter was not
// negotiated.
type DeflateParams struct {
	// ServerNoContextTakeover: the server compresses every message on its own.
	ServerNoContextTakeover bool
	// ClientNoContextTakeover: the client compresses every message on its own.
	ClientNoContextTakeover bool
	// ServerMaxWindowBits limits the LZ77 window of the server's compressor.
	ServerMaxWindowBits int
	// ClientMaxWindowBits limits the LZ77 window of the client's compressor.
	ClientMaxWindowBits int
}

// String returns the parameters as the value of a Sec-WebSocket-Extensions response field.
func (p DeflateParams) String() string {
	s := DeflateName
	if p.ServerNoContextTakeover {
		s += "; server_no_context_takeover"
	}
	if p.ClientNoContextTakeover {
		s += "; client_no_context_takeover"
	}
	if p.ServerMaxWindowBits != 0 && p.ServerMaxWindowBits != 15 {
		s += "; server_max_window_bits=" + strconv.Itoa(p.ServerMaxWindowBits)
	}
	if p.ClientMaxWindowBits != 0 && p.ClientMaxWindowBits != 15 {
		s += "; client_max_window_bits=" + strconv.Itoa(p.ClientMaxWindowBits)
	}
	return s
}

// noContext reports whether the endpoint of role r compresses each message alone.
func (p *DeflateParams) noContext(r Role) bool {
	if r == ServerSide {
		return p.ServerNoContextTakeover
	}
	return p.ClientNoContextTakeover
}

// bits returns the window bits of the compressor of the endpoint of role r.
func (p *DeflateParams) bits(r Role) int {
	b := p.ClientMaxWindowBits
	if r == ServerSide {
		b = p.ServerMaxWindowBits
	}
	if b < 8 || b > 15 {
		return 15
	}
	return b
}

// deflateOffer is one permessage-deflate element with its parameters checked: each known at
// most once, with a valid value. clientBitsOffered records that client_max_window_bits was
// present, with or without a value (in an offer, without one lets the server choose).
type deflateOffer struct {
	DeflateParams
	clientBitsOffered bool
}

// parseDeflate checks the parameters of a permessage-deflate element, as an offer (the
// client's, where client_max_window_bits may come without a value) or a response.
func parseDeflate(e Extension, offer bool) (deflateOffer, bool) {
	var o deflateOffer
	seen := map[string]bool{}
	for _, prm := range e.Params {
		name := strings.ToLower(prm.Name)
		if seen[name] {
			return o, false
		}
		seen[name] = true
		switch name {
		case "server_no_context_takeover":
			if prm.HasValue {
				return o, false
			}
			o.ServerNoContextTakeover = true
		case "client_no_context_takeover":
			if prm.HasValue {
				return o, false
			}
			o.ClientNoContextTakeover = true
		case "server_max_window_bits":
			b, ok := windowBits(prm)
			if !ok {
				return o, false
			}
			o.ServerMaxWindowBits = b
		case "client_max_window_bits":
			o.clientBitsOffered = true
			if !prm.HasValue && offer {
				continue
			}
			b, ok := windowBits(prm)
			if !ok {
				return o, false
			}
			o.ClientMaxWindowBits = b
		default:
			return o, false
		}
	}
	return o, true
}

// windowBits parses a window-bits value: 8 to 15, digits only, no leading zero.
func windowBits(prm Param) (int, bool) {
	v := prm.Value
	if !prm.HasValue || len(v) == 0 || len(v) > 2 || v[0] == '0' {
		return 0, false
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 8 || n > 15 {
		return 0, false
	}
	return n, true
}

// DeflateServerConfig is what a server accepts of permessage-deflate offers.
type DeflateServerConfig struct {
	// NoContextTakeover makes the server ask for no context takeover in both directions,
	// which keeps no compression state between messages.
	NoContextTakeover bool
}

// NegotiateDeflate is the server's side of the negotiation: it picks the first
// permessage-deflate offer among exts (the client's Sec-WebSocket-Extensions) whose
// parameters are valid, and returns the parameters to use and to answer with
// (DeflateParams.String). ok is false when no offer is acceptable.
func NegotiateDeflate(exts []Extension, c DeflateServerConfig) (p DeflateParams, ok bool) {
	for _, e := range exts {
		if !strings.EqualFold(e.Name, DeflateName) {
			continue
		}
		o, valid := parseDeflate(e, true)
		if !valid {
			continue
		}
		p = o.DeflateParams
		if c.NoContextTakeover {
			p.ServerNoContextTakeover = true
			p.ClientNoContextTakeover = true
		}
		// A client_max_window_bits offered with a value is a hint the server may echo or
		// lower; echoing it keeps both compressors within what the client asked.
		return p, true
	}
	return DeflateParams{}, false
}

// ParseDeflateResponse is the client's side of the negotiation: it finds permessage-deflate in
// the server's answer (resp, its Sec-WebSocket-Extensions) and checks it against what the
// client offered (offers; nil skips that check). found is false when the server did not accept
// compression. An error means the answer is invalid and the client must fail the connection:
// several permessage-deflate elements, a bad parameter, a client_max_window_bits the client
// did not offer, or an extension that was not offered.
func ParseDeflateResponse(resp, offers []Extension) (p DeflateParams, found bool, err error) {
	clientBits := offers == nil
	for _, e := range offers {
		if strings.EqualFold(e.Name, DeflateName) {
			if o, ok := parseDeflate(e, true); ok && o.clientBitsOffered {
				clientBits = true
			}
		}
	}
	for _, e := range resp {
		if !strings.EqualFold(e.Name, DeflateName) {
			if offers != nil && !offered(offers, e.Name) {
				return DeflateParams{}, false, protoErr("server accepted an extension not offered: " + e.Name)
			}
			continue
		}
		if found {
			return DeflateParams{}, false, protoErr("permessage-deflate accepted twice")
		}
		o, ok := parseDeflate(e, false)
		if !ok {
			return DeflateParams{}, false, protoErr("invalid permessage-deflate parameters in the response")
		}
		if o.clientBitsOffered && !clientBits {
			return DeflateParams{}, false, protoErr("client_max_window_bits in the response was not offered")
		}
		if offers != nil && !offered(offers, DeflateName) {
			return DeflateParams{}, false, protoErr("server accepted an extension not offered: " + e.Name)
		}
		p, found = o.DeflateParams, true
	}
	return p, found, nil
}

func offered(offers []Extension, name string) bool {
	for _, e := range offers {
		if strings.EqualFold(e.Name, name) {
			return true
		}
	}
	return false
}
