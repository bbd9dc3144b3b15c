package perr

import (
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestErrorTypeNamesAndCodes(t *testing.T) {
	tests := []struct {
		t        ErrorType
		name     string
		code     uint16
		isStatus bool
	}{
		{ConnectTimedout, "ConnectTimedout", 0, false},
		{TLSWantX509Lookup, "TLSWantX509Lookup", 0, false},
		{InternalError, "InternalError", 0, false},
		{UnknownError, "UnknownError", 0, false},
		{ErrorType{}, "UnknownError", 0, false},
		{HTTPStatus(404), "HTTPStatus", 404, true},
		{NewType("CompressionError"), "CompressionError", 0, false},
		{NewTypeCode("PingTimedout", 1001), "PingTimedout", 1001, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.t.Name(); got != tt.name {
				t.Errorf("Name() = %q, want %q", got, tt.name)
			}
			if got := tt.t.Error(); got != tt.name {
				t.Errorf("Error() = %q, want %q", got, tt.name)
			}
			if got := tt.t.HTTPCode(); got != tt.code {
				t.Errorf("HTTPCode() = %d, want %d", got, tt.code)
			}
			if got := tt.t.IsHTTPStatus(); got != tt.isStatus {
				t.Errorf("IsHTTPStatus() = %v, want %v", got, tt.isStatus)
			}
		})
	}
}

func TestErrorTypeEquality(t *testing.T) {
	tests := []struct {
		name string
		a, b ErrorType
		want bool
	}{
		{"same builtin", ReadError, ReadError, true},
		{"different builtin", ReadError, WriteError, false},
		{"same status", HTTPStatus(400), HTTPStatus(400), true},
		{"different status", HTTPStatus(400), HTTPStatus(500), false},
		{"custom same name", NewType("x"), NewType("x"), true},
		{"custom different name", NewType("x"), NewType("y"), false},
		{"custom shadowing builtin name", NewType("ReadError"), ReadError, false},
		{"custom vs custom code", NewType("x"), NewTypeCode("x", 0), false},
		{"custom code different code", NewTypeCode("x", 1), NewTypeCode("x", 2), false},
		{"zero is UnknownError", ErrorType{}, UnknownError, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.a == tt.b; got != tt.want {
				t.Errorf("%v == %v is %v, want %v", tt.a, tt.b, got, tt.want)
			}
		})
	}
}

func TestSourceString(t *testing.T) {
	tests := []struct {
		s    Source
		want string
	}{
		{Unset, ""},
		{Upstream, "Upstream"},
		{Downstream, "Downstream"},
		{Internal, "Internal"},
		{Source(0), ""},
	}
	for _, tt := range tests {
		if got := tt.s.String(); got != tt.want {
			t.Errorf("Source(%d).String() = %q, want %q", tt.s, got, tt.want)
		}
	}
}

func TestErrorDisplay(t *testing.T) {
	tests := []struct {
		name string
		err  *Error
		want string
	}{
		{"bare unset", New(InternalError), "InternalError"},
		{"bare upstream", NewUp(ConnectRefused), "Upstream ConnectRefused"},
		{"context", Explain(InternalError, "my context"), "InternalError context: my context"},
		{
			"chain of unset errors",
			&Error{Type: HTTPStatus(400), Cause: New(InternalError)},
			"HTTPStatus cause: InternalError",
		},
		{
			"because with context",
			Because(HTTPStatus(400), "test", New(InternalError)),
			"HTTPStatus context: test cause: InternalError",
		},
		{
			"more context drops repeated source and type",
			Explain(ReadError, "reading body").AsUp().MoreContext("Peer: 10.0.0.1:80"),
			"Upstream ReadError context: Peer: 10.0.0.1:80 cause: context: reading body",
		},
		{
			"more context on a bare error leaves out the blank cause",
			New(InternalError).MoreContext("another"),
			"InternalError context: another",
		},
		{
			"source changes down the chain",
			Because(HTTPStatus(502), "upstream failed", NewUp(ConnectRefused)).AsIn(),
			"Internal HTTPStatus context: upstream failed cause: Upstream ConnectRefused",
		},
		{
			"same type different source",
			Because(ReadError, "", NewDown(ReadError)).AsUp(),
			"Upstream ReadError cause: Downstream",
		},
		{
			"unset cause after a set source prints no source",
			Because(ReadError, "", New(WriteError)).AsUp(),
			"Upstream ReadError cause: WriteError",
		},
		{
			"foreign cause",
			Because(InternalError, "", errors.New("oops")),
			"InternalError cause: oops",
		},
		{
			"foreign cause with empty message",
			Because(InternalError, "ctx", errors.New("")),
			"InternalError context: ctx",
		},
		{
			"foreign wrapper around an error",
			Because(FileReadError, "loading meta", fmt.Errorf("disk: %w", NewIn(FileOpenError))),
			"FileReadError context: loading meta cause: disk: Internal FileOpenError",
		},
		{
			"three levels",
			Because(H1Error, "bad response", Because(InvalidHTTPHeader, "status line", io.ErrUnexpectedEOF).AsUp()).AsUp(),
			"Upstream H1Error context: bad response cause: InvalidHTTPHeader context: status line cause: unexpected EOF",
		},
		{
			"blank links deep in the chain are left out",
			New(InternalError).MoreContext("a").MoreContext("b"),
			"InternalError context: b cause: context: a",
		},
		{
			"a link with only blank links below is blank",
			&Error{Type: ReadError, Cause: &Error{Type: ReadError, Cause: New(ReadError)}},
			"ReadError",
		},
		{
			"a link over an empty foreign message is blank",
			&Error{Type: ReadError, Cause: &Error{Type: ReadError, Cause: errors.New("")}},
			"ReadError",
		},
		{"custom type", NewDown(NewType("TooManyRequests")), "Downstream TooManyRequests"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Error(); got != tt.want {
				t.Errorf("Error() =\n%q, want\n%q", got, tt.want)
			}
		})
	}
}

func TestRetryType(t *testing.T) {
	tests := []struct {
		name     string
		r        RetryType
		reused   bool
		wantDec  bool
		wantOK   bool
		resolved RetryType
		str      string
	}{
		{"zero value", RetryType{}, true, false, true, Retry(false), "Decided(false)"},
		{"decided true stays", Retry(true), false, true, true, Retry(true), "Decided(true)"},
		{"decided false stays", Retry(false), true, false, true, Retry(false), "Decided(false)"},
		{"reused only on reused", ReusedOnly, true, false, false, Retry(true), "ReusedOnly"},
		{"reused only on fresh", ReusedOnly, false, false, false, Retry(false), "ReusedOnly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dec, ok := tt.r.Decided()
			if dec != tt.wantDec || ok != tt.wantOK {
				t.Errorf("Decided() = %v, %v; want %v, %v", dec, ok, tt.wantDec, tt.wantOK)
			}
			if got := tt.r.DecideReuse(tt.reused); got != tt.resolved {
				t.Errorf("DecideReuse(%v) = %v, want %v", tt.reused, got, tt.resolved)
			}
			if got := tt.r.String(); got != tt.str {
				t.Errorf("String() = %q, want %q", got, tt.str)
			}
		})
	}
}

func TestRetryInheritance(t *testing.T) {
	tests := []struct {
		name  string
		cause error
		want  RetryType
	}{
		{"no cause", nil, Retry(false)},
		{"foreign cause", io.EOF, Retry(false)},
		{"retryable cause", New(ReadError).SetRetry(true), Retry(true)},
		{"not retryable cause", New(ReadError).SetRetry(false), Retry(false)},
		{"reused only cause", &Error{Type: ReadError, Retry: ReusedOnly}, ReusedOnly},
		{"retryable behind fmt wrapper", fmt.Errorf("x: %w", New(ReadError).SetRetry(true)), Retry(true)},
		{"nearest perr error wins", Because(H2Error, "", New(H2Downgrade).SetRetry(true)).SetRetry(false), Retry(false)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Because(InternalError, "ctx", tt.cause).Retry; got != tt.want {
				t.Errorf("Because(...).Retry = %v, want %v", got, tt.want)
			}
		})
	}
	t.Run("more context keeps retry and source", func(t *testing.T) {
		e := NewUp(ReadError)
		e.Retry = ReusedOnly
		m := e.MoreContext("Peer: x")
		if m.Retry != ReusedOnly || m.Source != Upstream || m.Type != ReadError || m.Cause != e {
			t.Errorf("MoreContext = %+v", m)
		}
	})
}

func TestRetryablePanicsWhenUndecided(t *testing.T) {
	e := &Error{Type: ReadError, Retry: ReusedOnly}
	func() {
		defer func() {
			if recover() == nil {
				t.Error("Retryable on ReusedOnly did not panic")
			}
		}()
		e.Retryable()
	}()
	e.Retry = e.Retry.DecideReuse(true)
	if !e.Retryable() {
		t.Error("Retryable after DecideReuse(true) = false")
	}
}

func TestMutators(t *testing.T) {
	tests := []struct {
		name string
		e    *Error
		src  Source
		str  string
	}{
		{"AsUp", New(ReadError).AsUp(), Upstream, "Upstream"},
		{"AsDown", NewUp(ReadError).AsDown(), Downstream, "Downstream"},
		{"AsIn", NewDown(ReadError).AsIn(), Internal, "Internal"},
		{"NewUp", NewUp(ReadError), Upstream, "Upstream"},
		{"NewDown", NewDown(ReadError), Downstream, "Downstream"},
		{"NewIn", NewIn(ReadError), Internal, "Internal"},
		{"New", New(ReadError), Unset, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.e.Source != tt.src || tt.e.SourceStr() != tt.str || tt.e.ReasonStr() != "ReadError" {
				t.Errorf("got source %v (%q), reason %q", tt.e.Source, tt.e.SourceStr(), tt.e.ReasonStr())
			}
		})
	}
	if e := New(ReadError).SetRetry(true); !e.Retryable() {
		t.Error("SetRetry(true) not retryable")
	}
}

func TestRootTypeAndCause(t *testing.T) {
	leaf := io.ErrUnexpectedEOF
	inner := Because(InvalidHTTPHeader, "status line", leaf)
	bare := New(ConnectRefused)
	tests := []struct {
		name      string
		e         *Error
		wantType  ErrorType
		wantCause error
	}{
		{"no cause", bare, ConnectRefused, bare},
		{"foreign cause", inner, InvalidHTTPHeader, leaf},
		{"perr chain", Because(H1Error, "", inner), InvalidHTTPHeader, leaf},
		{"through fmt wrapper", Because(H1Error, "", fmt.Errorf("w: %w", inner)), InvalidHTTPHeader, leaf},
		{"innermost without cause", Because(HTTPStatus(400), "", bare), ConnectRefused, bare},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.e.RootType(); got != tt.wantType {
				t.Errorf("RootType() = %v, want %v", got, tt.wantType)
			}
			if got := tt.e.RootCause(); got != tt.wantCause {
				t.Errorf("RootCause() = %v, want %v", got, tt.wantCause)
			}
		})
	}
}

func TestErrorsIsAndAs(t *testing.T) {
	refused := FromDialError(errors.New("synthetic")).SetRetry(true)
	refused.Type = ConnectRefused
	wrapped := fmt.Errorf("phase upstream_peer: %w", Because(HTTPStatus(503), "no backend", refused))
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"outer type through %w", wrapped, HTTPStatus(503), true},
		{"inner type through %w", wrapped, ConnectRefused, true},
		{"other status", wrapped, HTTPStatus(502), false},
		{"absent type", wrapped, ConnectTimedout, false},
		{"foreign leaf", Because(ReadError, "", io.EOF), io.EOF, true},
		{"custom type", fmt.Errorf("w: %w", New(NewType("Mine"))), NewType("Mine"), true},
		{"non perr error", io.EOF, UnknownError, false},
		{"zero type", New(UnknownError), UnknownError, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Errorf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
			}
		})
	}

	e, ok := As(wrapped)
	if !ok || e.Type != HTTPStatus(503) {
		t.Fatalf("As(wrapped) = %v, %v", e, ok)
	}
	var target *Error
	if !errors.As(wrapped, &target) || target != e {
		t.Errorf("errors.As found %v, want %v", target, e)
	}
	if _, ok := As(io.EOF); ok {
		t.Error("As(io.EOF) ok = true")
	}
	if _, ok := As(nil); ok {
		t.Error("As(nil) ok = true")
	}
	if !e.Retryable() {
		t.Error("retry not inherited from the cause")
	}
}

func TestWrapHelpers(t *testing.T) {
	base := errors.New("disk full")
	perrBase := NewUp(ReadTimedout).SetRetry(true)
	tests := []struct {
		name    string
		got     error
		want    string
		wantNil bool
		typ     ErrorType
	}{
		{"OrErr nil", OrErr(nil, FileWriteError, "x"), "", true, UnknownError},
		{"OrErr", OrErr(base, FileWriteError, "writing"), "FileWriteError context: writing cause: disk full", false, FileWriteError},
		{"ExplainErr nil", ExplainErr(nil, FileReadError, nil), "", true, UnknownError},
		{
			"ExplainErr",
			ExplainErr(base, FileReadError, func(err error) string { return "read: " + err.Error() }),
			"FileReadError context: read: disk full", false, FileReadError,
		},
		{"OrFail nil", OrFail(nil), "", true, UnknownError},
		{"OrFail", OrFail(base), "InternalError cause: disk full", false, InternalError},
		{"WithContext nil", WithContext(nil, "x"), "", true, UnknownError},
		{"WithContext foreign", WithContext(base, "flushing"), "InternalError context: flushing cause: disk full", false, InternalError},
		{
			"WithContext perr",
			WithContext(perrBase, "Peer: a"),
			"Upstream ReadTimedout context: Peer: a", false, ReadTimedout,
		},
		{
			"WithContext wrapped perr",
			WithContext(fmt.Errorf("body: %w", perrBase), "Peer: a"),
			"Upstream ReadTimedout context: Peer: a cause: body: Upstream ReadTimedout", false, ReadTimedout,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.wantNil {
				if tt.got != nil {
					t.Fatalf("got %#v, want untyped nil", tt.got)
				}
				return
			}
			if tt.got.Error() != tt.want {
				t.Errorf("Error() = %q, want %q", tt.got.Error(), tt.want)
			}
			e, ok := As(tt.got)
			if !ok || e.Type != tt.typ {
				t.Errorf("type = %v, want %v", e, tt.typ)
			}
		})
	}
	if e, _ := As(WithContext(perrBase, "x")); !e.Retryable() || e.Source != Upstream {
		t.Error("WithContext lost retry or source")
	}
}

func BenchmarkNewAndFormat(b *testing.B) {
	b.ReportAllocs()
	var n int
	for b.Loop() {
		e := Because(ReadError, "reading upstream body", NewUp(ConnectionClosed)).AsUp()
		n += len(e.Error())
	}
	if n == 0 {
		b.Fatal("empty message")
	}
}

func BenchmarkFormatChain(b *testing.B) {
	b.ReportAllocs()
	e := Because(H1Error, "bad response", Because(InvalidHTTPHeader, "status line", io.ErrUnexpectedEOF).AsUp()).
		AsUp().MoreContext("Peer: 10.0.0.1:80")
	want := len(e.Error())
	for b.Loop() {
		if len(e.Error()) != want {
			b.Fatal("unstable message")
		}
	}
	if !strings.Contains(e.Error(), "unexpected EOF") {
		b.Fatal("cause missing")
	}
}

func BenchmarkStatusFor(b *testing.B) {
	b.ReportAllocs()
	err := fmt.Errorf("proxy: %w", NewUp(ConnectTimedout))
	for b.Loop() {
		if StatusFor(err) != 504 {
			b.Fatal("wrong status")
		}
	}
}
