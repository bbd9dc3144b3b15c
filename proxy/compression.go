package proxy

import (
	"math"
	"sync"

	"github.com/pingora-go/pingora/compression"
	"github.com/pingora-go/pingora/header"
	"github.com/pingora-go/pingora/perr"
)

// CompressionOrder is the Order of the compression module: below the other modules' usual
// orders, so that it runs last and they see the body uncompressed (the reference's
// i16::MIN/2).
const CompressionOrder = math.MinInt16 / 2

// CompressionError is the type of the error that ends a response whose body could not be
// decompressed (a corrupt upstream body, or one past Options.DecompressLimit) or compressed.
var CompressionError = perr.NewType("CompressionError")

// CompressionBuilder is the module that compresses responses for clients that accept it and
// decompresses upstream responses for clients that do not (package compression). Add it to
// Options.Modules; phases change its options for one request through For.
type CompressionBuilder struct {
	opts    compression.Options
	modules sync.Pool // of *CompressionModule
}

// NewCompression returns the compression module with options o for every request.
func NewCompression(o compression.Options) *CompressionBuilder {
	return &CompressionBuilder{opts: o}
}

// Order returns CompressionOrder.
func (b *CompressionBuilder) Order() int { return CompressionOrder }

// NewModule returns the module's state for one request, from a pool.
func (b *CompressionBuilder) NewModule(*Session) Module {
	m, _ := b.modules.Get().(*CompressionModule)
	if m == nil {
		m = &CompressionModule{b: b}
	}
	m.Reset(b.opts)
	return m
}

// For returns the compression state of the request s, or nil when b is not one of the
// proxy's modules. Phases that run before the response head (RequestFilter, ResponseFilter
// and the like) change the request's options through it, for example
// b.For(s).Options().DisableCompression = true.
func (b *CompressionBuilder) For(s *Session) *CompressionModule {
	m, _ := s.Module(b).(*CompressionModule)
	return m
}

// CompressionModule is the compression state of one request: a compression.Filter, whose
// Options it may change for this request and whose Info tells what it did.
type CompressionModule struct {
	ModuleDefaults
	compression.Filter
	b *CompressionBuilder
}

// ResponseHeaderFilter decides how to code the response and rewrites its head.
func (m *CompressionModule) ResponseHeaderFilter(s *Session, resp *header.ResponseHeader, endOfStream bool) error {
	m.ResponseHeader(s.Req(), resp, endOfStream)
	return nil
}

// ResponseBodyFilter codes one piece of the body; the piece goes out flushed.
func (m *CompressionModule) ResponseBodyFilter(_ *Session, body *[]byte, endOfStream bool) error {
	dec := m.Info().Decoded
	out, err := m.ResponseBody(*body, endOfStream)
	if err != nil {
		e := perr.Because(CompressionError, "coding the response body", err)
		if dec != compression.Identity {
			e.Source = perr.Upstream
		} else {
			e.Source = perr.Internal
		}
		return e
	}
	*body = out
	return nil
}

// Done returns the module's coders and the module to their pools.
func (m *CompressionModule) Done(*Session) {
	m.Release()
	m.b.modules.Put(m)
}

// PassesBody reports whether the response goes out as it came: neither compressed nor
// decompressed (Session.SendFile may then use sendfile).
func (m *CompressionModule) PassesBody() bool { return !m.Active() }
