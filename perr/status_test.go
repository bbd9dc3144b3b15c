package perr

import (
	"errors"
	"fmt"
	"testing"
)

func TestStatusFor(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"nil", nil, 0},
		{"foreign error", errors.New("boom"), 500},
		{"status", New(HTTPStatus(403)), 403},
		{"status wins over upstream source", NewUp(HTTPStatus(429)), 429},
		{"status wins over downstream source", NewDown(HTTPStatus(413)), 413},
		{"status behind %w", fmt.Errorf("request_filter: %w", New(HTTPStatus(401))), 401},
		{"custom code is not a status", NewIn(NewTypeCode("Quota", 429)), 500},
		{"custom code upstream", NewUp(NewTypeCode("Quota", 429)), 502},

		{"upstream refused", NewUp(ConnectRefused), 502},
		{"upstream no route", NewUp(ConnectNoRoute), 502},
		{"upstream connect error", NewUp(ConnectError), 502},
		{"upstream tls failure", NewUp(TLSHandshakeFailure), 502},
		{"upstream invalid header", NewUp(InvalidHTTPHeader), 502},
		{"upstream read error", NewUp(ReadError), 502},
		{"upstream closed", NewUp(ConnectionClosed), 502},
		{"upstream connect timeout", NewUp(ConnectTimedout), 504},
		{"upstream tls timeout", NewUp(TLSHandshakeTimedout), 504},
		{"upstream read timeout", NewUp(ReadTimedout), 504},
		{"downstream read timeout", NewDown(ReadTimedout), 408},
		{"upstream write timeout", NewUp(WriteTimedout), 504},
		{"upstream custom", NewUp(NewType("X")), 502},

		{"downstream read error", NewDown(ReadError), 0},
		{"downstream write error", NewDown(WriteError), 0},
		{"downstream closed", NewDown(ConnectionClosed), 0},
		{"downstream invalid header", NewDown(InvalidHTTPHeader), 400},
		{"downstream h1 error", NewDown(H1Error), 400},
		{"downstream internal error type", NewDown(InternalError), 400},

		{"internal", NewIn(InternalError), 500},
		{"internal read timeout", NewIn(ReadTimedout), 500},
		{"unset", New(ConnectRefused), 500},
		{"unset timeout", New(ConnectTimedout), 500},

		{"outermost error decides", Because(InternalError, "x", NewUp(ConnectRefused)), 500},
		{"outermost upstream over inner status", Because(ReadError, "", New(HTTPStatus(404))).AsUp(), 502},
		{"more context keeps the status", NewUp(ReadTimedout).MoreContext("Peer: a"), 504},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := StatusFor(tt.err); got != tt.want {
				t.Errorf("StatusFor(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
