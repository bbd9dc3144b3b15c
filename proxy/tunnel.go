package proxy

import (
	"io"
	"net"
	"time"

	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/protocols/h1"
)

// tunnel relays raw bytes both ways after a 101 response, until either side closes.
func (p *Proxy[C]) tunnel(st *conn[C], cs *h1.ClientSession, ctx *C) error {
	if err := st.ds.Flush(); err != nil {
		return err
	}
	dconn, drest := st.ds.Hijack()
	uconn, urest := cs.Hijack()
	if len(urest) > 0 {
		if _, err := dconn.Write(urest); err != nil {
			return ioErr(err, perr.Downstream)
		}
	}
	if len(drest) > 0 {
		if _, err := uconn.Write(drest); err != nil {
			return ioErr(err, perr.Upstream)
		}
	}
	done := make(chan struct{}, 2)
	relay := func(dst, src net.Conn) {
		io.Copy(dst, src)
		// Half-close when possible so the other direction can finish; otherwise close.
		if cw, ok := dst.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			dst.Close()
		}
		done <- struct{}{}
	}
	go relay(uconn, dconn)
	go relay(dconn, uconn)
	<-done
	// One side finished; give the other a moment to drain, then cut both.
	t := time.NewTimer(5 * time.Second)
	defer t.Stop()
	select {
	case <-done:
		dconn.Close()
		uconn.Close()
	case <-t.C:
		dconn.Close()
		uconn.Close()
		<-done
	}
	return nil
}
