package h2

import (
	"context"

	"golang.org/x/net/http2"
)

// processFrame handles one frame; a non-nil result is a connection error.
func (c *ServerConn) processFrame(f http2.Frame, ferr error) error {
	if ferr != nil {
		se := ferr.(http2.StreamError)
		if f == nil {
			c.resetStream(se.StreamID, se.Code)
			return nil
		}
		// A HEADERS frame whose fields are invalid still counts as opening its stream.
		if mh, ok := f.(*http2.MetaHeadersFrame); ok && mh.StreamID > c.maxClientID && mh.StreamID%2 == 1 {
			c.maxClientID = mh.StreamID
		}
		c.resetStream(se.StreamID, se.Code)
		return nil
	}
	if !c.sawSettings {
		if sf, ok := f.(*http2.SettingsFrame); !ok || sf.IsAck() {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		c.sawSettings = true
	}
	switch f := f.(type) {
	case *http2.SettingsFrame:
		return c.processSettings(f)
	case *http2.MetaHeadersFrame:
		return c.processHeaders(f)
	case *http2.DataFrame:
		return c.processData(f)
	case *http2.WindowUpdateFrame:
		return c.processWindowUpdate(f)
	case *http2.RSTStreamFrame:
		if c.isIdle(f.StreamID) {
			return http2.ConnectionError(http2.ErrCodeProtocol)
		}
		if st := c.streams[f.StreamID]; st != nil {
			c.closeStream(st)
			c.failStream(st, errStreamReset(f.ErrCode))
		}
	case *http2.PriorityFrame:
		if f.StreamDep == f.StreamID {
			c.resetStream(f.StreamID, http2.ErrCodeProtocol)
		}
	case *http2.PingFrame:
		if !f.IsAck() {
			c.fr.WritePing(true, f.Data)
		}
	case *http2.GoAwayFrame:
		c.goAway(http2.ErrCodeNo)
	case *http2.PushPromiseFrame:
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	return nil
}

// idle reports whether a client stream ID was never opened.
func (c *ServerConn) isIdle(id uint32) bool { return id%2 == 1 && id > c.maxClientID || id%2 == 0 }

func (c *ServerConn) recentlyClosed(id uint32) bool {
	for _, v := range c.closed {
		if v == id {
			return true
		}
	}
	return false
}

func (c *ServerConn) processSettings(f *http2.SettingsFrame) error {
	if f.IsAck() {
		return nil
	}
	err := f.ForeachSetting(func(s http2.Setting) error {
		if err := s.Valid(); err != nil {
			return err
		}
		switch s.ID {
		case http2.SettingInitialWindowSize:
			delta := int64(s.Val) - c.peerWindow
			c.peerWindow = int64(s.Val)
			for _, st := range c.streams {
				st.sendWindow += delta
				if st.sendWindow > maxWindow {
					return http2.ConnectionError(http2.ErrCodeFlowControl)
				}
			}
		case http2.SettingMaxFrameSize:
			c.peerMaxFrame = s.Val
		case http2.SettingHeaderTableSize:
			c.enc.SetMaxDynamicTableSizeLimit(s.Val)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return c.fr.WriteSettingsAck()
}

func (c *ServerConn) processWindowUpdate(f *http2.WindowUpdateFrame) error {
	if f.StreamID == 0 {
		c.sendWindow += int64(f.Increment)
		if c.sendWindow > maxWindow {
			return http2.ConnectionError(http2.ErrCodeFlowControl)
		}
		return nil
	}
	if c.isIdle(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := c.streams[f.StreamID]; st != nil {
		st.sendWindow += int64(f.Increment)
		if st.sendWindow > maxWindow {
			c.resetStream(f.StreamID, http2.ErrCodeFlowControl)
		}
	}
	return nil
}

func (c *ServerConn) processData(f *http2.DataFrame) error {
	n := int64(f.Length)
	if n > c.recvWindow {
		return http2.ConnectionError(http2.ErrCodeFlowControl)
	}
	c.recvWindow -= n
	if c.isIdle(f.StreamID) {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	st := c.streams[f.StreamID]
	data := f.Data()
	// Padding, and data the stream does not take, go back to the connection window at once.
	give := n - int64(len(data))
	defer func() {
		if give > 0 {
			c.recvWindow += give
			c.fr.WriteWindowUpdate(0, uint32(give))
		}
	}()
	if st == nil || st.remoteDone {
		give = n
		c.resetStream(f.StreamID, http2.ErrCodeStreamClosed)
		return nil
	}
	if n > st.recvWindow {
		give = n
		c.resetStream(f.StreamID, http2.ErrCodeFlowControl)
		return nil
	}
	st.recvWindow -= n
	if pad := n - int64(len(data)); pad > 0 {
		st.recvWindow += pad
		c.fr.WriteWindowUpdate(st.id, uint32(pad))
	}
	st.gotLen += int64(len(data))
	if st.declLen >= 0 && (st.gotLen > st.declLen || f.StreamEnded() && st.gotLen != st.declLen) {
		give = n
		c.resetStream(st.id, http2.ErrCodeProtocol)
		return nil
	}
	if len(data) > 0 {
		st.ss.body.push(data)
	}
	if f.StreamEnded() {
		c.remoteEnd(st)
	}
	return nil
}

// remoteEnd records END_STREAM from the client.
func (c *ServerConn) remoteEnd(st *stream) {
	st.remoteDone = true
	st.ss.body.finish()
	if st.localDone {
		c.closeStream(st)
	}
}

// bodyRead is called by a handler that consumed n body bytes: they go back to the windows.
func (c *ServerConn) bodyRead(st *stream, n int) {
	if n == 0 {
		return
	}
	c.recvWindow += int64(n)
	c.fr.WriteWindowUpdate(0, uint32(n))
	if !st.remoteDone && !st.reset {
		st.recvWindow += int64(n)
		c.fr.WriteWindowUpdate(st.id, uint32(n))
	}
}

func (c *ServerConn) processHeaders(f *http2.MetaHeadersFrame) error {
	id := f.StreamID
	if id%2 == 0 {
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	if st := c.streams[id]; st != nil {
		if st.remoteDone {
			c.resetStream(id, http2.ErrCodeStreamClosed)
			return nil
		}
		return c.processTrailers(st, f)
	}
	if id <= c.maxClientID {
		if c.recentlyClosed(id) {
			return http2.ConnectionError(http2.ErrCodeStreamClosed)
		}
		return http2.ConnectionError(http2.ErrCodeProtocol)
	}
	c.maxClientID = id
	if c.goAwaySent {
		return nil
	}
	if f.HasPriority() && f.Priority.StreamDep == id {
		c.resetStream(id, http2.ErrCodeProtocol)
		return nil
	}
	if uint32(len(c.streams)) >= c.opts.MaxConcurrentStreams {
		c.resetStream(id, http2.ErrCodeRefusedStream)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	st := &stream{id: id, cancel: cancel, sendWindow: c.peerWindow, recvWindow: int64(c.opts.StreamWindow), declLen: -1}
	st.ss = newServerStream(c, st, ctx)
	if f.Truncated {
		c.streams[id] = st
		st.remoteDone = f.StreamEnded()
		c.writeHead(st, 431, nil, true)
		if !st.remoteDone {
			c.resetStream(id, http2.ErrCodeNo)
		}
		return nil
	}
	declLen, ok := requestFromFrame(f, &st.ss.Req, c.opts.EnableConnectProtocol, &st.ss.protocol)
	if !ok {
		c.resetStream(id, http2.ErrCodeProtocol)
		return nil
	}
	st.declLen = declLen
	if f.StreamEnded() && declLen > 0 {
		c.resetStream(id, http2.ErrCodeProtocol)
		return nil
	}
	c.streams[id] = st
	if f.StreamEnded() {
		st.remoteDone = true
		st.ss.body.finish()
		st.ss.bodyDone.Store(true)
	} else {
		st.ss.hasBody = true
	}
	if c.running >= int(c.opts.MaxConcurrentStreams) {
		if len(c.queue) >= queueFactor*int(c.opts.MaxConcurrentStreams) {
			return http2.ConnectionError(http2.ErrCodeEnhanceYourCalm)
		}
		c.queue = append(c.queue, st)
		return nil
	}
	c.startHandler(st)
	return nil
}

func (c *ServerConn) processTrailers(st *stream, f *http2.MetaHeadersFrame) error {
	if !f.StreamEnded() || len(f.PseudoFields()) > 0 {
		c.resetStream(st.id, http2.ErrCodeProtocol)
		return nil
	}
	if st.declLen >= 0 && st.gotLen != st.declLen {
		c.resetStream(st.id, http2.ErrCodeProtocol)
		return nil
	}
	st.ss.body.setTrailers(f.RegularFields())
	c.remoteEnd(st)
	return nil
}

func (c *ServerConn) startHandler(st *stream) {
	c.running++
	go func() {
		defer func() {
			if recover() != nil {
				st.ss.panicked = true
			} else {
				// A head still waiting for a body goes out; handlerDone ends the stream.
				st.ss.Flush()
			}
			st.ss.release()
			c.call(func() { c.handlerDone(st) })
		}()
		c.handler(st.ss)
	}()
}

// handlerDone ends what the handler left open and starts a waiting handler.
func (c *ServerConn) handlerDone(st *stream) {
	c.running--
	st.cancel()
	// Body bytes the handler left unread go back to the connection's window: a client whose
	// requests are answered without reading their bodies would otherwise see the connection
	// stall once they add up to the window.
	if unread := st.ss.body.discard(); unread > 0 {
		c.recvWindow += int64(unread)
		c.fr.WriteWindowUpdate(0, uint32(unread))
	}
	if !st.reset && c.streams[st.id] == st {
		switch {
		case !st.headSent || st.ss.panicked:
			c.resetStream(st.id, http2.ErrCodeInternal)
		case !st.localDone:
			c.endStream(st)
		}
		if !st.remoteDone && c.streams[st.id] == st {
			c.resetStream(st.id, http2.ErrCodeNo)
		}
	}
	for len(c.queue) > 0 && c.running < int(c.opts.MaxConcurrentStreams) {
		next := c.queue[0]
		c.queue[0] = nil
		c.queue = c.queue[1:]
		if !next.reset {
			c.startHandler(next)
		}
	}
}

// resetStream sends RST_STREAM and forgets the stream.
func (c *ServerConn) resetStream(id uint32, code http2.ErrCode) {
	c.fr.WriteRSTStream(id, code)
	if st := c.streams[id]; st != nil {
		c.closeStream(st)
		c.failStream(st, errStreamReset(code))
	}
}

func (c *ServerConn) closeStream(st *stream) {
	if c.streams[st.id] != st {
		return
	}
	delete(c.streams, st.id)
	c.closed[c.closedAt] = st.id
	c.closedAt = (c.closedAt + 1) % closedMemory
	if !st.remoteDone {
		// The client's unread body bytes will never be read: give their window back.
		if unread := st.ss.body.discard(); unread > 0 {
			c.recvWindow += int64(unread)
			c.fr.WriteWindowUpdate(0, uint32(unread))
		}
	}
}
