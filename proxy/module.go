package proxy

import (
	"sort"

	"github.com/pingora-go/pingora/header"
)

// ModuleBuilder adds a module to every request of a proxy (Options.Modules): a feature that
// wraps the phases of many proxy programs, such as response compression. It makes the
// module's state for each request.
type ModuleBuilder interface {
	// Order places the module among the others: modules run in descending Order, on the
	// request and on the response alike (as the reference's HTTP modules).
	Order() int
	// NewModule returns the module's state for one request, or nil to sit the request out.
	// It runs before EarlyRequestFilter's modules step, once per request.
	NewModule(s *Session) Module
}

// Module is the per-request state of a ModuleBuilder. Its filters run on every request and
// response the proxy handles, including responses written by the phases themselves
// (Session.Respond, RespondError): request filters right after EarlyRequestFilter and before
// the RequestBodyFilter phase; response filters after ResponseFilter and ResponseBodyFilter,
// just before the bytes go downstream. Embed ModuleDefaults to implement only some filters.
type Module interface {
	// RequestHeaderFilter sees the downstream request head.
	RequestHeaderFilter(s *Session, req *header.RequestHeader) error
	// RequestBodyFilter sees each piece of the request body, before the RequestBodyFilter phase.
	RequestBodyFilter(s *Session, body *[]byte, endOfStream bool) error
	// ResponseHeaderFilter sees each response head sent downstream (interim ones too);
	// endOfStream is true when the response has no body.
	ResponseHeaderFilter(s *Session, resp *header.ResponseHeader, endOfStream bool) error
	// ResponseBodyFilter sees each piece of the response body sent downstream and may replace
	// it; on the last call (endOfStream) it can append what it still holds.
	ResponseBodyFilter(s *Session, body *[]byte, endOfStream bool) error
	// Done runs once the request is over, to release what the module holds.
	Done(s *Session)
}

// ModuleDefaults implements every Module filter as a pass-through.
type ModuleDefaults struct{}

// RequestHeaderFilter does nothing.
func (ModuleDefaults) RequestHeaderFilter(*Session, *header.RequestHeader) error { return nil }

// RequestBodyFilter does nothing.
func (ModuleDefaults) RequestBodyFilter(*Session, *[]byte, bool) error { return nil }

// ResponseHeaderFilter does nothing.
func (ModuleDefaults) ResponseHeaderFilter(*Session, *header.ResponseHeader, bool) error {
	return nil
}

// ResponseBodyFilter does nothing.
func (ModuleDefaults) ResponseBodyFilter(*Session, *[]byte, bool) error { return nil }

// Done does nothing.
func (ModuleDefaults) Done(*Session) {}

// sortModules orders builders by descending Order, keeping the given order among equals.
func sortModules(b []ModuleBuilder) []ModuleBuilder {
	out := append([]ModuleBuilder(nil), b...)
	sort.SliceStable(out, func(i, j int) bool { return out[i].Order() > out[j].Order() })
	return out
}

// Module returns the state of the module built by b for this request, or nil when b is not
// one of the proxy's modules or sat this request out. b is compared with == to the builders of
// Options.Modules, so builders should be pointers. Phases use it to configure a module per
// request (for example, to turn compression off for one path).
func (s *Session) Module(b ModuleBuilder) Module {
	for i, mb := range s.builders {
		if mb == b {
			return s.modules[i]
		}
	}
	return nil
}

// startModules makes the modules' state for this request.
func (s *Session) startModules(builders []ModuleBuilder) {
	s.builders = builders
	s.modules = s.modules[:0]
	for _, b := range builders {
		s.modules = append(s.modules, b.NewModule(s))
	}
}

// endModules runs Done on every module and forgets them.
func (s *Session) endModules() {
	for i, m := range s.modules {
		if m != nil {
			m.Done(s)
		}
		s.modules[i] = nil
	}
	s.modules = s.modules[:0]
}

func (s *Session) modulesRequestHeader() error {
	for _, m := range s.modules {
		if m != nil {
			if err := m.RequestHeaderFilter(s, s.Req()); err != nil {
				return err
			}
		}
	}
	return nil
}

func (s *Session) modulesRequestBody(body *[]byte, eos bool) error {
	for _, m := range s.modules {
		if m != nil {
			if err := m.RequestBodyFilter(s, body, eos); err != nil {
				return err
			}
		}
	}
	return nil
}
