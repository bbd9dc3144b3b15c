package gateway

import (
	"regexp"
	"strings"
	"time"

	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/protocols/ws"
	"github.com/pingora-go/pingora/proxy"
)

// WebSocket is what a route does with WebSocket sessions (and other Upgrade requests). It may
// be written as true or false alone, which sets Allow. Upgrades other than WebSocket are
// relayed as raw bytes under the timeouts; the message rules apply to WebSocket sessions only,
// over HTTP/1.1 and HTTP/2 alike.
type WebSocket struct {
	// Allow lets Upgrade requests through (default true); false refuses them with 403.
	Allow *bool `yaml:"allow,omitempty" json:"allow,omitempty"`
	// Origins, when set, lists the Origin values that may open a session: an exact origin
	// such as "https://app.example.com", one with a wildcard first label such as
	// "https://*.example.com", or "*". A request with another Origin is refused with 403; one
	// without Origin (not from a browser) is let through. Browsers send the Origin of the page
	// that opens a session, so this keeps other sites' pages from opening sessions with a
	// user's cookies.
	Origins []string `yaml:"origins,omitempty" json:"origins,omitempty"`
	// IdleTimeout ends a session when neither side sent anything for this long (default 5m).
	IdleTimeout Duration `yaml:"idle_timeout,omitempty" json:"idle_timeout,omitempty"`
	// MaxDuration ends a session this long after it started (default 24h).
	MaxDuration Duration `yaml:"max_duration,omitempty" json:"max_duration,omitempty"`
	// MaxMessageSize closes a session with 1009 (message too big) when either side sends a
	// larger message. Setting it makes the proxy read sessions message by message; without
	// it and the rules below, sessions are relayed as raw bytes.
	MaxMessageSize Size `yaml:"max_message_size,omitempty" json:"max_message_size,omitempty"`
	// MessageRate bounds the messages (text and binary) a client may send per second in one
	// session, with bursts of MessageBurst; a client over it gets close code 1008 (policy
	// violation). 0 means no bound.
	MessageRate int `yaml:"message_rate,omitempty" json:"message_rate,omitempty"`
	// MessageBurst is how many messages a client may send at once (default MessageRate).
	MessageBurst int `yaml:"message_burst,omitempty" json:"message_burst,omitempty"`
	// Deny lists regular expressions matched against the client's text messages: a message
	// that matches one is handled as OnDeny says.
	Deny []string `yaml:"deny,omitempty" json:"deny,omitempty"`
	// OnDeny is what happens to a denied message: "close" (default) ends the session with
	// close code 1008, "drop" discards the message and goes on.
	OnDeny string `yaml:"on_deny,omitempty" json:"on_deny,omitempty" enum:"close,drop"`
}

// setScalar lets the route's websocket be written as true or false.
func (w *WebSocket) setScalar(s string) error {
	return setSwitch(s, &w.Allow, "websocket settings")
}

// scalarSchemaType is the JSON Schema type of the scalar form.
func (*WebSocket) scalarSchemaType() string { return "boolean" }

// validate checks w and fills in its defaults; p is its key path.
func (w *WebSocket) validate(v *validator, p string) {
	if w.Allow == nil {
		w.Allow = ptr(true)
	}
	for i, o := range w.Origins {
		if _, err := parseOrigin(o); err != nil {
			v.fail(p+".origins["+itoa(i)+"]", "%v", err)
		}
	}
	if w.MessageRate < 0 {
		v.fail(p+".message_rate", "want a rate that is not negative")
	}
	if w.MessageBurst < 0 {
		v.fail(p+".message_burst", "want a burst that is not negative")
	}
	if w.MessageBurst > 0 && w.MessageRate == 0 {
		v.fail(p+".message_burst", "a burst needs message_rate")
	}
	for i, d := range w.Deny {
		if _, err := regexp.Compile(d); err != nil {
			v.fail(p+".deny["+itoa(i)+"]", "%v", err)
		}
	}
	switch w.OnDeny {
	case "", "close", "drop":
	default:
		v.fail(p+".on_deny", "want close or drop")
	}
}

// wsPolicy is a route's WebSocket settings, ready to apply.
type wsPolicy struct {
	allow   bool
	origins []wsOrigin
	opts    ws.Options
	// filter reports whether sessions are read message by message.
	filter bool
	rate   float64 // messages per second, 0 for no bound
	burst  float64
	deny   []*regexp.Regexp
	drop   bool
}

// wsOrigin is an allowed Origin: scheme://host[:port], the host possibly starting with "*.".
type wsOrigin struct {
	any    bool   // "*"
	prefix string // "https://" for a wildcard, else the whole origin
	suffix string // ".example.com" (and port) for a wildcard
}

// parseOrigin reads an allowed Origin of the configuration.
func parseOrigin(s string) (wsOrigin, error) {
	if s == "*" {
		return wsOrigin{any: true}, nil
	}
	scheme, host, ok := strings.Cut(strings.ToLower(s), "://")
	if !ok || scheme == "" || host == "" || strings.ContainsAny(host, "/?#") {
		return wsOrigin{}, errWant(`an origin such as "https://app.example.com", "https://*.example.com" or "*"`)
	}
	if rest, ok := strings.CutPrefix(host, "*."); ok {
		if rest == "" || strings.Contains(rest, "*") {
			return wsOrigin{}, errWant(`one wildcard, as the first label: "https://*.example.com"`)
		}
		return wsOrigin{prefix: scheme + "://", suffix: "." + rest}, nil
	}
	if strings.Contains(host, "*") {
		return wsOrigin{}, errWant(`one wildcard, as the first label: "https://*.example.com"`)
	}
	return wsOrigin{prefix: scheme + "://" + host}, nil
}

// matches reports whether the request's Origin value o (lower-cased) is allowed.
func (a wsOrigin) matches(o string) bool {
	switch {
	case a.any:
		return true
	case a.suffix == "":
		return o == a.prefix
	}
	rest, ok := strings.CutPrefix(o, a.prefix)
	if !ok {
		return false
	}
	label, ok := strings.CutSuffix(rest, a.suffix)
	return ok && label != "" && !strings.ContainsAny(label, ".:/")
}

// newWSPolicy builds a route's policy from its validated configuration.
func newWSPolicy(w *WebSocket) *wsPolicy {
	p := &wsPolicy{allow: *w.Allow, drop: w.OnDeny == "drop"}
	for _, o := range w.Origins {
		po, _ := parseOrigin(o)
		p.origins = append(p.origins, po)
	}
	p.opts.IdleTimeout = w.IdleTimeout.D()
	p.opts.TotalTimeout = w.MaxDuration.D()
	p.opts.MaxMessageSize = int64(w.MaxMessageSize)
	p.opts.MaxFrameSize = int64(w.MaxMessageSize)
	if w.MessageRate > 0 {
		p.rate = float64(w.MessageRate)
		p.burst = float64(max(w.MessageBurst, 1))
		if w.MessageBurst == 0 {
			p.burst = p.rate
		}
	}
	for _, d := range w.Deny {
		p.deny = append(p.deny, regexp.MustCompile(d))
	}
	p.filter = w.MaxMessageSize > 0 || p.rate > 0 || len(p.deny) > 0
	return p
}

// admits reports whether an upgrade request may go on: upgrades are allowed, and its Origin,
// if it has one, is among the allowed ones.
func (p *wsPolicy) admits(req *header.RequestHeader) bool {
	if !p.allow {
		return false
	}
	if len(p.origins) == 0 {
		return true
	}
	o, ok := req.Get("Origin")
	if !ok {
		return true
	}
	lo := strings.ToLower(string(header.TrimOWS(o)))
	for _, a := range p.origins {
		if a.matches(lo) {
			return true
		}
	}
	return false
}

// wsSession is the per-session state of the message rules, kept in the request's context.
type wsSession struct {
	tokens float64
	last   time.Time
}

// message applies the rules to one message of a session.
func (p *wsPolicy) message(st *wsSession, m *ws.Message) ws.Action {
	if m.Direction != ws.FromClient || (m.Opcode != ws.OpText && m.Opcode != ws.OpBinary) {
		return ws.Pass
	}
	if p.rate > 0 {
		now := time.Now()
		if st.last.IsZero() {
			st.tokens = p.burst
		} else {
			st.tokens = min(p.burst, st.tokens+now.Sub(st.last).Seconds()*p.rate)
		}
		st.last = now
		if st.tokens < 1 {
			return ws.Close(ws.ClosePolicyViolation, "message rate exceeded")
		}
		st.tokens--
	}
	if m.Opcode == ws.OpText {
		for _, re := range p.deny {
			if re.Match(m.Payload) {
				if p.drop {
					return ws.Drop
				}
				return ws.Close(ws.ClosePolicyViolation, "message not allowed")
			}
		}
	}
	return ws.Pass
}

// WebSocketOptions gives a session the timeouts and limits of its route.
func (a *app) WebSocketOptions(_ *proxy.Session, ctx *Ctx) ws.Options {
	if ctx.route == nil {
		return proxy.DefaultWebSocketOptions
	}
	return ctx.route.ws.opts
}

// FilterWebSocket reads a session message by message when its route has message rules.
func (a *app) FilterWebSocket(_ *proxy.Session, ctx *Ctx) bool {
	return ctx.route != nil && ctx.route.ws.filter
}

// WebSocketMessage applies the route's message rules.
func (a *app) WebSocketMessage(_ *proxy.Session, ctx *Ctx, m *ws.Message) (ws.Action, error) {
	return ctx.route.ws.message(&ctx.ws, m), nil
}

var (
	_ proxy.WebSocketConfig[Ctx]    = (*app)(nil)
	_ proxy.WebSocketFilter[Ctx]    = (*app)(nil)
	_ proxy.WebSocketFilterFor[Ctx] = (*app)(nil)
)
