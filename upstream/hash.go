package upstream

import (
	"crypto/x509"
	"encoding/binary"
	"hash/maphash"
	"runtime"
	"sync"
	"weak"
)

// hashSeed makes ReuseHash stable within a process; connections are never
// shared between processes, so it need not be stable across them.
var hashSeed = maphash.MakeSeed()

// ReuseHash returns the identity of the connections p may use: two peers
// with the same hash may share pooled connections. It covers the network
// and address, TLS, SNI, GroupKey, the CONNECT proxy (next hop, target and
// headers) and, from Options, the client certificate's leaf, the two
// verification switches, AlternativeCN, ALPN, MaxH2Streams (zero counted as
// its default), the CA pool's identity and Curves. Timeouts, socket options
// and the other Options fields do not count.
//
// The hash is computed on every call, without allocating, because the
// fields of a Peer may be set after construction. A peer without a CONNECT
// proxy, a client certificate or curves, the common case, is hashed in one
// call over its fields (about 30 ns where the general way takes 170).
func (p *Peer) ReuseHash() uint64 {
	o := &p.Options
	if p.Proxy == nil && o.ClientCert == nil && len(o.Curves) == 0 {
		return maphash.Comparable(hashSeed, plainIdentity{
			network: p.network(), addr: p.Addr, sni: p.SNI, altCN: o.AlternativeCN,
			group: p.GroupKey, alpn: uint64(o.ALPN), maxH2: uint64(o.maxH2Streams()), ca: caID(o.CA),
			tls: p.TLS, skipCert: o.SkipVerifyCert, skipHost: o.SkipVerifyHostname,
		})
	}
	var h maphash.Hash
	h.SetSeed(hashSeed)
	writeString(&h, p.network())
	writeString(&h, p.Addr)
	writeBool(&h, p.TLS)
	writeString(&h, p.SNI)
	writeUint(&h, p.GroupKey)

	writeBool(&h, p.Proxy != nil)
	if px := p.Proxy; px != nil {
		writeString(&h, px.NextHop)
		writeString(&h, px.Host)
		writeUint(&h, uint64(px.Port))
		writeUint(&h, uint64(len(px.Headers)))
		for _, f := range px.Headers {
			writeString(&h, f.Name)
			writeString(&h, f.Value)
		}
	}

	writeBool(&h, o.ClientCert != nil)
	if c := o.ClientCert; c != nil {
		writeUint(&h, uint64(len(c.Certificate)))
		if len(c.Certificate) > 0 {
			writeBytes(&h, c.Certificate[0])
		}
	}
	writeBool(&h, o.SkipVerifyCert)
	writeBool(&h, o.SkipVerifyHostname)
	writeString(&h, o.AlternativeCN)
	writeUint(&h, uint64(o.ALPN))
	writeUint(&h, uint64(o.maxH2Streams()))
	writeUint(&h, caID(o.CA))
	writeUint(&h, uint64(len(o.Curves)))
	for _, c := range o.Curves {
		writeUint(&h, uint64(c))
	}
	return h.Sum64()
}

// plainIdentity is what ReuseHash covers of a peer without a CONNECT proxy, a client
// certificate or curves.
type plainIdentity struct {
	network, addr, sni, altCN string
	group, alpn, maxH2, ca    uint64
	tls, skipCert, skipHost   bool
}

// Strings and byte slices are written with their length first so that
// adjacent fields cannot run into each other ("ab"+"c" and "a"+"bc").

func writeString(h *maphash.Hash, s string) {
	writeUint(h, uint64(len(s)))
	h.WriteString(s)
}

func writeBytes(h *maphash.Hash, b []byte) {
	writeUint(h, uint64(len(b)))
	h.Write(b)
}

func writeUint(h *maphash.Hash, v uint64) {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], v)
	h.Write(b[:])
}

func writeBool(h *maphash.Hash, v bool) {
	if v {
		h.WriteByte(1)
	} else {
		h.WriteByte(0)
	}
}

// caIDs numbers the CA pools seen by ReuseHash. An x509.CertPool offers no
// way to hash its contents, and its address alone could be reused by
// another pool once it is collected; a weak pointer, by contrast, never
// matches a later object, and the entry is dropped when the pool is.
var caIDs struct {
	mu   sync.Mutex // guards following fields
	ids  map[weak.Pointer[x509.CertPool]]uint64
	last uint64
}

// caID returns the number of pool, 0 for nil.
func caID(pool *x509.CertPool) uint64 {
	if pool == nil {
		return 0
	}
	wp := weak.Make(pool)
	caIDs.mu.Lock()
	defer caIDs.mu.Unlock()
	if id, ok := caIDs.ids[wp]; ok {
		return id
	}
	if caIDs.ids == nil {
		caIDs.ids = make(map[weak.Pointer[x509.CertPool]]uint64)
	}
	caIDs.last++
	caIDs.ids[wp] = caIDs.last
	runtime.AddCleanup(pool, forgetCA, wp)
	return caIDs.last
}

func forgetCA(wp weak.Pointer[x509.CertPool]) {
	caIDs.mu.Lock()
	delete(caIDs.ids, wp)
	caIDs.mu.Unlock()
}
