package ws_test

import (
	"bytes"
	"fmt"

	"github.com/pingora-go/pingora/protocols/ws"
)

// A client writes a compressed, fragmented message; a server reads it back whole.
func Example() {
	exts, _ := ws.ParseExtensions("permessage-deflate; client_max_window_bits")
	params, ok := ws.NegotiateDeflate(exts, ws.DeflateServerConfig{})
	fmt.Println(ok, params)

	var wire bytes.Buffer
	w := ws.NewWriter(&wire, ws.ClientSide, &ws.Config{Deflate: &params, FragmentSize: 4})
	w.WriteMessage(ws.OpText, []byte("hello, hello, hello"), true)
	w.WriteClose(ws.CloseNormal, "done")

	r := ws.NewReader(&wire, ws.ServerSide, &ws.Config{Deflate: &params})
	for {
		m, err := r.ReadMessage()
		if err != nil {
			break
		}
		if m.Opcode == ws.OpClose {
			fmt.Println(m.Opcode, m.CloseCode(), m.CloseReason())
			continue
		}
		fmt.Println(m.Opcode, m.Compressed, string(m.Payload))
	}
	// Output:
	// true permessage-deflate
	// text true hello, hello, hello
	// close 1000 done
}

// A filter for Relay: it rewrites what clients send and ends the session on a forbidden word.
func ExampleRelay() {
	filter := func(m *ws.Message) (ws.Action, error) {
		if m.Direction != ws.FromClient {
			return ws.Pass, nil
		}
		if bytes.Contains(m.Payload, []byte("forbidden")) {
			return ws.Close(ws.ClosePolicyViolation, "forbidden word"), nil
		}
		m.Payload = bytes.ReplaceAll(m.Payload, []byte("colour"), []byte("color"))
		return ws.Pass, nil
	}
	// client and server are the two connections after the handshake, with the bytes read
	// past it:
	//
	//	err := ws.Relay(ws.Endpoint{Conn: client, Buffered: rest}, ws.Endpoint{Conn: server}, &ws.Options{}, filter)
	m := &ws.Message{Direction: ws.FromClient, Opcode: ws.OpText, Payload: []byte("my favourite colour")}
	a, _ := filter(m)
	fmt.Println(a.IsPass(), string(m.Payload))
	// Output: true my favourite color
}
