// Package perr is the proxy's error model: an error carries a type, the side
// that caused it (upstream, downstream, internal), whether a retry is safe, a
// context string and a cause.
package perr

import (
	"errors"
	"strings"
)

// Source says which side of the proxy caused an error. The zero value is Unset.
type Source uint8

// The sources.
const (
	// Unset means the source is unknown or not decided yet.
	Unset Source = iota
	// Upstream means the origin server or the connection to it caused the error.
	Upstream
	// Downstream means the client or the connection to it caused the error.
	Downstream
	// Internal means the proxy's own logic caused the error.
	Internal
)

// String returns "Upstream", "Downstream", "Internal", or "" for Unset.
func (s Source) String() string {
	switch s {
	case Upstream:
		return "Upstream"
	case Downstream:
		return "Downstream"
	case Internal:
		return "Internal"
	}
	return ""
}

// RetryType says whether the request may be retried after an error: either a
// decided yes or no, or ReusedOnly, which means "retry only if the failing
// connection was a reused pooled one" and must be resolved with DecideReuse
// before it is read. The zero value is Retry(false).
type RetryType struct {
	v retryValue
}

type retryValue uint8

const (
	retryNo retryValue = iota
	retryYes
	retryReusedOnly
)

// Retry returns the decided RetryType b.
func Retry(b bool) RetryType {
	if b {
		return RetryType{retryYes}
	}
	return RetryType{retryNo}
}

// ReusedOnly is the undecided RetryType: retry only when the connection that
// failed came from the pool (a stale keep-alive connection is the likely
// cause), never when it was fresh.
var ReusedOnly = RetryType{retryReusedOnly}

// Decided returns the decision and ok=true, or ok=false for ReusedOnly.
func (r RetryType) Decided() (retry bool, ok bool) {
	return r.v == retryYes, r.v != retryReusedOnly
}

// DecideReuse resolves ReusedOnly to Retry(reused) and returns decided values
// unchanged.
func (r RetryType) DecideReuse(reused bool) RetryType {
	if r.v == retryReusedOnly {
		return Retry(reused)
	}
	return r
}

// String returns "Decided(true)", "Decided(false)" or "ReusedOnly".
func (r RetryType) String() string {
	switch r.v {
	case retryYes:
		return "Decided(true)"
	case retryReusedOnly:
		return "ReusedOnly"
	}
	return "Decided(false)"
}

// Error is the error value of the proxy. Phases return it (or an error
// wrapping it) and the proxy reads Type, Source and Retry to choose between
// retrying, answering with a status, or closing.
//
// An Error is not safe for concurrent mutation; build it, then return it.
type Error struct {
	// Type says what went wrong.
	Type ErrorType
	// Source says which side caused it.
	Source Source
	// Retry says whether the request may be retried.
	Retry RetryType
	// Cause is the error this one was made from, or nil.
	Cause error
	// Context is free text for the log, or "" for none.
	Context string
}

// New returns an Error of type t with source Unset.
func New(t ErrorType) *Error { return &Error{Type: t} }

// NewUp returns an Error of type t with source Upstream.
func NewUp(t ErrorType) *Error { return &Error{Type: t, Source: Upstream} }

// NewDown returns an Error of type t with source Downstream.
func NewDown(t ErrorType) *Error { return &Error{Type: t, Source: Downstream} }

// NewIn returns an Error of type t with source Internal.
func NewIn(t ErrorType) *Error { return &Error{Type: t, Source: Internal} }

// Explain returns an Error of type t with the context and source Unset.
func Explain(t ErrorType, context string) *Error {
	return &Error{Type: t, Context: context}
}

// Because returns an Error of type t with the context, caused by cause, with
// source Unset. It inherits the Retry of the nearest *Error in cause's chain
// (wrappers such as fmt.Errorf's %w are looked through); with none, Retry is
// Retry(false).
func Because(t ErrorType, context string, cause error) *Error {
	e := &Error{Type: t, Cause: cause, Context: context}
	if c, ok := As(cause); ok {
		e.Retry = c.Retry
	}
	return e
}

// As returns the first *Error in err's chain, as errors.As finds it.
func As(err error) (*Error, bool) {
	return errors.AsType[*Error](err)
}

// Unwrap returns e.Cause, so errors.Is and errors.As see the whole chain.
func (e *Error) Unwrap() error { return e.Cause }

// Is reports whether target is an ErrorType equal to e.Type. With it,
// errors.Is(err, perr.ConnectRefused) is true when any *Error in err's chain
// has that type; use RootType or As to look at one link only.
func (e *Error) Is(target error) bool {
	t, ok := target.(ErrorType)
	return ok && e.Type == t
}

// Retryable reports whether the request may be retried. It panics if Retry is
// ReusedOnly: whoever knows whether the connection was reused must call
// DecideReuse first (the proxy does so in its error-while-proxy step), as
// the reference does.
func (e *Error) Retryable() bool {
	retry, ok := e.Retry.Decided()
	if !ok {
		panic("perr: Retryable called on an undecided ReusedOnly retry; call DecideReuse first")
	}
	return retry
}

// SetRetry sets Retry to Retry(b) and returns e.
func (e *Error) SetRetry(b bool) *Error {
	e.Retry = Retry(b)
	return e
}

// AsUp sets the source to Upstream and returns e.
func (e *Error) AsUp() *Error {
	e.Source = Upstream
	return e
}

// AsDown sets the source to Downstream and returns e.
func (e *Error) AsDown() *Error {
	e.Source = Downstream
	return e
}

// AsIn sets the source to Internal and returns e.
func (e *Error) AsIn() *Error {
	e.Source = Internal
	return e
}

// MoreContext returns a new Error with e's type, source and retry, the
// context and e as its cause. e is not changed.
func (e *Error) MoreContext(context string) *Error {
	return &Error{Type: e.Type, Source: e.Source, Retry: e.Retry, Cause: e, Context: context}
}

// root returns the last *Error reached by following Cause, looking through
// non-*Error wrappers.
func (e *Error) root() *Error {
	for {
		next, ok := As(e.Cause)
		if !ok {
			return e
		}
		e = next
	}
}

// RootType returns the Type of the innermost *Error in e's cause chain (e's
// own Type when no cause is an *Error).
func (e *Error) RootType() ErrorType { return e.root().Type }

// RootCause returns the Cause of the innermost *Error in e's chain, or that
// *Error itself when it has no cause.
func (e *Error) RootCause() error {
	r := e.root()
	if r.Cause != nil {
		return r.Cause
	}
	return r
}

// ReasonStr returns the name of e's type.
func (e *Error) ReasonStr() string { return e.Type.Name() }

// SourceStr returns the name of e's source ("" when Unset).
func (e *Error) SourceStr() string { return e.Source.String() }

// Error formats the chain as the reference does:
//
//	<Source> <Type> context: <Context> cause: <cause>
//
// where a cause that is an *Error is written the same way, leaving out its
// source and type when they repeat the previous link's. Empty parts (an Unset
// source, an empty context, a cause that would print nothing) are left out,
// and parts are separated by exactly one space; the reference instead keeps
// the blanks (" InternalError" with a leading space for an Unset source).
func (e *Error) Error() string {
	w := chainWriter{}
	w.b.Grow(64 + len(e.Context))
	e.write(&w, nil)
	return w.b.String()
}

type chainWriter struct {
	b   strings.Builder
	sep bool
}

func (w *chainWriter) word(s string) {
	if s == "" {
		return
	}
	if w.sep {
		w.b.WriteByte(' ')
	}
	w.b.WriteString(s)
	w.sep = true
}

func (w *chainWriter) labelled(label, s string) {
	w.word(label)
	w.b.WriteByte(' ')
	w.b.WriteString(s)
}

func (e *Error) write(w *chainWriter, prev *Error) {
	if prev == nil || prev.Source != e.Source {
		w.word(e.Source.String())
	}
	if prev == nil || prev.Type != e.Type {
		w.word(e.Type.Name())
	}
	if e.Context != "" {
		w.labelled("context:", e.Context)
	}
	switch c := e.Cause.(type) {
	case nil:
	case *Error:
		if !c.blankAfter(e) {
			w.word("cause:")
			c.write(w, e)
		}
	default:
		if msg := c.Error(); msg != "" {
			w.labelled("cause:", msg)
		}
	}
}

// blankAfter reports whether e writes nothing when it follows prev.
func (e *Error) blankAfter(prev *Error) bool {
	if e.Source != prev.Source && e.Source != Unset || e.Type != prev.Type || e.Context != "" {
		return false
	}
	switch c := e.Cause.(type) {
	case nil:
		return true
	case *Error:
		return c.blankAfter(e)
	default:
		return c.Error() == ""
	}
}
