package perr_test

import (
	"errors"
	"fmt"
	"net"
	"os"

	"github.com/pingora-go/pingora/perr"
)

// A phase rejects a request by returning an HTTPStatus error; the proxy
// answers with that status.
func Example() {
	requestFilter := func(apiKey string) error {
		if apiKey == "" {
			return perr.Explain(perr.HTTPStatus(403), "missing api key")
		}
		return nil
	}

	err := requestFilter("")
	fmt.Println(err)
	fmt.Println(perr.StatusFor(err))
	// Output:
	// HTTPStatus context: missing api key
	// 403
}

// Because wraps a lower error with a type and context; the message prints the
// whole chain.
func ExampleBecause() {
	readHead := func() error {
		return perr.Explain(perr.InvalidHTTPHeader, "status line").AsUp()
	}

	if err := readHead(); err != nil {
		e := perr.Because(perr.H1Error, "reading response", err).AsUp()
		fmt.Println(e)
		fmt.Println(e.RootType().Name())
	}
	// Output:
	// Upstream H1Error context: reading response cause: InvalidHTTPHeader context: status line
	// InvalidHTTPHeader
}

// MoreContext adds context while keeping the type, source and retry flag.
func ExampleError_MoreContext() {
	e := perr.NewUp(perr.ReadTimedout).SetRetry(true)
	e = e.MoreContext("Peer: 10.0.0.1:80")
	fmt.Println(e)
	fmt.Println(e.Retryable())
	// Output:
	// Upstream ReadTimedout context: Peer: 10.0.0.1:80
	// true
}

// OrErr turns any error into an *Error, and passes nil through.
func ExampleOrErr() {
	openConfig := func(path string) error {
		_, err := os.Open(path)
		return perr.OrErr(err, perr.FileOpenError, "opening config")
	}

	err := openConfig("/nonexistent/pingora.yaml")
	fmt.Println(errors.Is(err, perr.FileOpenError), errors.Is(err, os.ErrNotExist))
	// Output:
	// true true
}

// errors.Is with an ErrorType target matches any *Error in the chain, also
// through fmt.Errorf's %w.
func ExampleErrorType_matching() {
	err := fmt.Errorf("upstream_peer: %w",
		perr.Because(perr.HTTPStatus(503), "no healthy backend", perr.NewUp(perr.ConnectRefused)))

	fmt.Println(errors.Is(err, perr.HTTPStatus(503)))
	fmt.Println(errors.Is(err, perr.ConnectRefused))
	fmt.Println(errors.Is(err, perr.ConnectTimedout))
	// Output:
	// true
	// true
	// false
}

// A read failure on a pooled connection is retryable only if the connection
// was reused: a stale keep-alive connection is the likely cause, and a fresh
// dial will probably work.
func ExampleRetryType_DecideReuse() {
	e := perr.NewUp(perr.ConnectionClosed)
	e.Retry = perr.ReusedOnly

	_, decided := e.Retry.Decided()
	fmt.Println("decided:", decided)

	reused := true
	e.Retry = e.Retry.DecideReuse(reused)
	fmt.Println("retry:", e.Retryable())
	// Output:
	// decided: false
	// retry: true
}

// A fail-to-connect hook marks connect errors retryable so the proxy asks
// upstream_peer for another peer.
func ExampleError_SetRetry() {
	failToConnect := func(err *perr.Error, attempts int) *perr.Error {
		if attempts < 2 {
			err.SetRetry(true)
		}
		return err
	}

	e := failToConnect(perr.NewUp(perr.ConnectTimedout), 1)
	fmt.Println(e.Retryable())
	// Output:
	// true
}

// StatusFor is the status the proxy sends when a request fails before the
// response header went out.
func ExampleStatusFor() {
	for _, err := range []error{
		perr.New(perr.HTTPStatus(429)),
		perr.NewUp(perr.ConnectRefused),
		perr.NewUp(perr.ReadTimedout),
		perr.NewDown(perr.InvalidHTTPHeader),
		perr.NewDown(perr.ConnectionClosed),
		perr.NewIn(perr.InternalError),
		errors.New("not a perr error"),
	} {
		fmt.Printf("%d\t%v\n", perr.StatusFor(err), err)
	}
	// Output:
	// 429	HTTPStatus
	// 502	Upstream ConnectRefused
	// 504	Upstream ReadTimedout
	// 400	Downstream InvalidHTTPHeader
	// 0	Downstream ConnectionClosed
	// 500	Internal InternalError
	// 500	not a perr error
}

// FromDialError classifies a dial error; here nothing listens on the port.
func ExampleFromDialError() {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println(err)
		return
	}
	addr := ln.Addr().String()
	ln.Close()

	_, err = net.Dial("tcp", addr)
	e := perr.FromDialError(err)
	fmt.Println(e.Source, e.Type.Name(), perr.StatusFor(e))
	// Output:
	// Upstream ConnectRefused 502
}
