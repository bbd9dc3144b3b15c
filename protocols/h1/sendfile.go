package h1

import (
	"io"
	"os"

	"github.com/pingora-go/pingora/perr"
)

// sendFileChunk is the most one sendfile call is asked to send: the write timeout is armed
// again between chunks, so that it bounds the wait for the client to take each chunk, as it
// bounds each write, not the whole file.
const sendFileChunk = 4 << 20

// CanSendFile reports whether SendFile would hand the body to the kernel (sendfile(2)): the
// connection supports it (a TCP socket, or a wrapper that passes it on) and the response's
// body is not chunked. Otherwise SendFile copies through the session's buffer.
func (s *ServerSession) CanSendFile() bool {
	_, ok := s.conn.(io.ReaderFrom)
	return ok && s.headSent && s.respBody.kind != BodyChunked
}

// SendFile writes n bytes of f from offset as the next part of the response body, after the
// head (and anything else buffered) is flushed. On a connection where CanSendFile holds, the
// kernel copies the file to the socket (sendfile(2) for a TCP socket): the bytes pass through
// no buffer of the process. Otherwise it reads the file in pieces and writes them like
// WriteBody. The body framing is kept: SendFile counts against Content-Length, and chunks the
// pieces of a chunked body. It returns the bytes written to the connection's body; f's offset
// afterwards is unspecified.
func (s *ServerSession) SendFile(f *os.File, offset, n int64) (int64, error) {
	if !s.headSent {
		return 0, perr.Explain(perr.InternalError, "response body before its head")
	}
	if n <= 0 || s.respBody.kind == BodyNone {
		return 0, nil
	}
	if s.respBody.finished {
		return 0, perr.Explain(perr.InternalError, "body write after the body was finished")
	}
	if s.respBody.kind == BodyLength && n > s.respBody.remaining {
		return 0, perr.Explain(perr.InternalError, "body longer than its Content-Length")
	}
	if !s.CanSendFile() {
		return s.copyFile(f, offset, n)
	}
	if err := s.wr.flush(); err != nil {
		s.broken = true
		return 0, err
	}
	if _, err := f.Seek(offset, io.SeekStart); err != nil {
		return 0, perr.Because(perr.InternalError, "seeking in the file to send", err).AsIn()
	}
	rf := s.conn.(io.ReaderFrom)
	var sent int64
	// sendfile(2) goes through the connection, not the raw socket I/O that arms the write
	// deadline only for a write that waits: it arms one itself, and clears it after, for the
	// raw writes that follow expect none (rawio.Conn.SetWriteTimeout).
	defer s.wr.disarmCoarse()
	for sent < n {
		if err := s.wr.armCoarse(); err != nil {
			s.broken = true
			return sent, err
		}
		// A *io.LimitedReader of an *os.File is what the runtime hands to sendfile.
		k, err := rf.ReadFrom(&io.LimitedReader{R: f, N: min(n-sent, sendFileChunk)})
		sent += k
		s.respBody.written += k
		if s.respBody.kind == BodyLength {
			s.respBody.remaining -= k
		}
		if err != nil {
			s.broken = true
			s.wr.err = ioError(err, s.wr.source, true)
			return sent, s.wr.err
		}
		if k == 0 {
			s.broken = true
			return sent, perr.Explain(perr.InternalError, "the file to send ended early").AsIn()
		}
	}
	return sent, nil
}

// copyFile is SendFile through the session's buffer.
func (s *ServerSession) copyFile(f *os.File, offset, n int64) (int64, error) {
	buf := getBuf()
	defer putBuf(buf)
	var sent int64
	for sent < n {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), n-sent)], offset+sent)
		if k > 0 {
			if werr := s.WriteBody(buf[:k]); werr != nil {
				return sent, werr
			}
			sent += int64(k)
		}
		if err != nil && sent < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			s.broken = true
			return sent, perr.Because(perr.InternalError, "reading the file to send", err).AsIn()
		}
	}
	return sent, s.Flush()
}
