// Package ws is the WebSocket protocol (RFC 6455) as a proxy needs it: a frame codec that
// enforces the protocol's rules, permessage-deflate (RFC 7692), and the relay that carries an
// upgraded connection between a client and a server, either as raw bytes (Pipe) or message by
// message through a filter (Relay).
package ws

import (
	"errors"
	"strconv"
)

// Opcode is the kind of a frame (RFC 6455 §5.2).
type Opcode uint8

// The opcodes RFC 6455 defines; the others are reserved and rejected.
const (
	OpContinuation Opcode = 0x0
	OpText         Opcode = 0x1
	OpBinary       Opcode = 0x2
	OpClose        Opcode = 0x8
	OpPing         Opcode = 0x9
	OpPong         Opcode = 0xA
)

// IsControl reports whether op is a control opcode (close, ping, pong, or a reserved one).
func (op Opcode) IsControl() bool { return op&0x8 != 0 }

// String returns the opcode's name, such as "text" or "close".
func (op Opcode) String() string {
	switch op {
	case OpContinuation:
		return "continuation"
	case OpText:
		return "text"
	case OpBinary:
		return "binary"
	case OpClose:
		return "close"
	case OpPing:
		return "ping"
	case OpPong:
		return "pong"
	}
	return "opcode " + strconv.Itoa(int(op))
}

// Role is the side of a connection an endpoint plays: it decides masking (a client masks
// every frame it sends, a server none) and which permessage-deflate parameters apply.
type Role uint8

const (
	// ServerSide reads masked frames and writes unmasked ones.
	ServerSide Role = iota
	// ClientSide reads unmasked frames and writes masked ones.
	ClientSide
)

// Direction says which way a message travels through a relay.
type Direction uint8

const (
	// FromClient is a message the client sent, on its way to the server.
	FromClient Direction = iota
	// FromServer is a message the server sent, on its way to the client.
	FromServer
)

// String returns "client->server" or "server->client".
func (d Direction) String() string {
	if d == FromClient {
		return "client->server"
	}
	return "server->client"
}

// CloseCode is the status code of a close frame (RFC 6455 §7.4).
type CloseCode uint16

// Close codes of RFC 6455 §7.4.1 and the IANA registry.
const (
	CloseNormal           CloseCode = 1000
	CloseGoingAway        CloseCode = 1001
	CloseProtocolError    CloseCode = 1002
	CloseUnsupportedData  CloseCode = 1003
	CloseNoStatus         CloseCode = 1005 // never on the wire: a close frame without a code
	CloseAbnormal         CloseCode = 1006 // never on the wire: the connection dropped
	CloseInvalidPayload   CloseCode = 1007
	ClosePolicyViolation  CloseCode = 1008
	CloseMessageTooBig    CloseCode = 1009
	CloseMandatoryExt     CloseCode = 1010
	CloseInternalError    CloseCode = 1011
	CloseServiceRestart   CloseCode = 1012
	CloseTryAgainLater    CloseCode = 1013
	CloseBadGateway       CloseCode = 1014
	CloseTLSHandshakeFail CloseCode = 1015 // never on the wire
)

// ValidOnWire reports whether c may be sent in a close frame: the defined codes other than
// 1004, 1005, 1006 and 1015, and the ranges 3000-4999 left to libraries and applications.
func (c CloseCode) ValidOnWire() bool {
	switch {
	case c >= 1000 && c <= 1003, c >= 1007 && c <= 1014:
		return true
	case c >= 3000 && c <= 4999:
		return true
	}
	return false
}

// MaxControlPayload is the largest payload of a control frame; MaxCloseReason the longest
// reason a close frame can carry beside its code.
const (
	MaxControlPayload = 125
	MaxCloseReason    = MaxControlPayload - 2
)

// Error is a violation of the protocol by the peer, or a limit it exceeded: the connection is
// failed with a close frame carrying Code.
type Error struct {
	Code   CloseCode
	Reason string
}

// Error returns the violation and its close code.
func (e *Error) Error() string {
	return "websocket: " + e.Reason + " (close " + strconv.Itoa(int(e.Code)) + ")"
}

func protoErr(reason string) error { return &Error{Code: CloseProtocolError, Reason: reason} }

// Errors a Reader returns, all *Error so that errors.As finds the close code.
var (
	// ErrFrameTooBig means a frame's payload is longer than the reader's MaxFrameSize.
	ErrFrameTooBig = &Error{Code: CloseMessageTooBig, Reason: "frame too big"}
	// ErrMessageTooBig means a message (after decompression) is longer than MaxMessageSize.
	ErrMessageTooBig = &Error{Code: CloseMessageTooBig, Reason: "message too big"}
	// ErrInvalidUTF8 means a text message or a close reason is not valid UTF-8.
	ErrInvalidUTF8 = &Error{Code: CloseInvalidPayload, Reason: "invalid UTF-8 in a text message"}
)

// ErrInvalidCloseCode is returned when asked to send a close code that may not be sent.
var ErrInvalidCloseCode = errors.New("websocket: close code may not be sent")

// Message is a whole message, or a control frame, as a Reader returns it and a relay filter
// sees it.
type Message struct {
	// Direction is the way the message travels (set by a relay).
	Direction Direction
	// Opcode is OpText, OpBinary, or for control frames OpClose, OpPing, OpPong.
	Opcode Opcode
	// Payload is the message's data, decompressed. It points into the reader's buffer and is
	// valid until the next read: copy what must outlive it. A filter may replace it.
	Payload []byte
	// Compressed reports whether the message arrived compressed with permessage-deflate; a
	// relay sends it on compressed when the receiving side negotiated compression.
	Compressed bool
}

// CloseCode returns the code of a close message: CloseNoStatus when it carried none.
func (m *Message) CloseCode() CloseCode {
	if m.Opcode != OpClose || len(m.Payload) < 2 {
		return CloseNoStatus
	}
	return CloseCode(m.Payload[0])<<8 | CloseCode(m.Payload[1])
}

// CloseReason returns the reason text of a close message.
func (m *Message) CloseReason() string {
	if m.Opcode != OpClose || len(m.Payload) <= 2 {
		return ""
	}
	return string(m.Payload[2:])
}

// Action is what a relay filter decided about a message: Pass, Drop, or Close.
type Action struct {
	kind   actionKind
	code   CloseCode
	reason string
}

type actionKind uint8

const (
	actPass actionKind = iota
	actDrop
	actClose
)

var (
	// Pass sends the message on (with the filter's changes to its payload).
	Pass = Action{}
	// Drop discards the message.
	Drop = Action{kind: actDrop}
)

// Close ends the session: both sides receive a close frame with code and reason (cut to
// MaxCloseReason bytes); the message is not sent. A code that may not be sent becomes
// ClosePolicyViolation.
func Close(code CloseCode, reason string) Action {
	if !code.ValidOnWire() {
		code = ClosePolicyViolation
	}
	return Action{kind: actClose, code: code, reason: truncateUTF8(reason, MaxCloseReason)}
}

// IsPass reports whether the action sends the message on.
func (a Action) IsPass() bool { return a.kind == actPass }

// IsDrop reports whether the action discards the message.
func (a Action) IsDrop() bool { return a.kind == actDrop }

// IsClose reports whether the action ends the session, and with which code and reason.
func (a Action) IsClose() (CloseCode, string, bool) { return a.code, a.reason, a.kind == actClose }
