package proxy

import (
	"io"
	"os"
	"sync"

	"github.com/pingora-go/pingora/perr"
)

// BodyPassThrough is an optional interface of a Module. Once the response head went through
// the module, PassesBody reports whether the module leaves the response body as it is.
// Session.SendFile hands a file to the kernel only when every module of the request says so;
// a module without this method is taken to change bodies.
type BodyPassThrough interface {
	PassesBody() bool
}

// sendFilePiece is the piece SendFile reads and writes at a time when it cannot use sendfile.
const sendFilePiece = 64 << 10

// filePieces holds the buffers of SendFile's copying path.
var filePieces = sync.Pool{New: func() any { b := make([]byte, sendFilePiece); return &b }}

// SendFile writes n bytes of f, from offset, as the next part of the response body, whose
// head was written with WriteResponseHeader. Over HTTP/1 on a TCP connection (also behind the
// PROXY protocol), when every module passes the body through (BodyPassThrough: compression
// does when it does not code this response), the kernel copies the file to the socket with
// sendfile(2), in chunks that each get the write timeout; the bytes pass through no buffer of
// the process. Otherwise — HTTP/2, TLS, a module that changes bodies — the file is read in
// 64 KiB pieces that go through WriteResponseBody. End the body with
// WriteResponseBody(nil, true). f's offset afterwards is unspecified.
func (s *Session) SendFile(f *os.File, offset, n int64) error {
	if s.ds != nil && s.modulesPassBody() && s.ds.CanSendFile() {
		k, err := s.ds.SendFile(f, offset, n)
		s.bodyBytesDown += k
		return err
	}
	bp := filePieces.Get().(*[]byte)
	defer filePieces.Put(bp)
	buf := *bp
	for sent := int64(0); sent < n; {
		k, err := f.ReadAt(buf[:min(int64(len(buf)), n-sent)], offset+sent)
		if k > 0 {
			if werr := s.WriteResponseBody(buf[:k], false); werr != nil {
				return werr
			}
			sent += int64(k)
		}
		if err != nil && sent < n {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return perr.Because(perr.InternalError, "reading the file to send", err).AsIn()
		}
	}
	return nil
}

// modulesPassBody reports whether every module of the request leaves the response body as it
// is.
func (s *Session) modulesPassBody() bool {
	for _, m := range s.modules {
		if m == nil {
			continue
		}
		if pt, ok := m.(BodyPassThrough); !ok || !pt.PassesBody() {
			return false
		}
	}
	return true
}
