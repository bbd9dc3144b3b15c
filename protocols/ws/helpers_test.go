package ws

import (
	"bytes"
	"errors"
	"io"
	"testing"
)

// frame encodes one frame; a non-zero mask key masks it.
func frame(fin bool, op Opcode, rsv1 bool, mask []byte, payload []byte) []byte {
	h := Header{Fin: fin, Opcode: op, RSV1: rsv1, Length: int64(len(payload))}
	p := append([]byte(nil), payload...)
	if mask != nil {
		h.Masked = true
		copy(h.Mask[:], mask)
		Mask(h.Mask, 0, p)
	}
	return append(AppendHeader(nil, h), p...)
}

var testMask = []byte{0x37, 0xfa, 0x21, 0x3d}

// cframe is a masked (client) frame, sframe an unmasked (server) one.
func cframe(fin bool, op Opcode, payload string) []byte {
	return frame(fin, op, false, testMask, []byte(payload))
}

func sframe(fin bool, op Opcode, payload string) []byte {
	return frame(fin, op, false, nil, []byte(payload))
}

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// got is a message as read, copied.
type got struct {
	op      Opcode
	payload string
}

// readAll reads messages from b until an error, returning them and the error.
func readAll(b []byte, role Role, c *Config) ([]got, error) {
	r := NewReader(bytes.NewReader(b), role, c)
	var out []got
	for {
		m, err := r.ReadMessage()
		if err != nil {
			return out, err
		}
		out = append(out, got{m.Opcode, string(m.Payload)})
	}
}

// wantCode checks that err is an *Error with code.
func wantCode(t *testing.T, err error, code CloseCode) {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v, want a close error %d", err, code)
	}
	if e.Code != code {
		t.Fatalf("close code %d (%s), want %d", e.Code, e.Reason, code)
	}
}

func wantEOF(t *testing.T, err error) {
	t.Helper()
	if err != io.EOF {
		t.Fatalf("error %v, want io.EOF", err)
	}
}
