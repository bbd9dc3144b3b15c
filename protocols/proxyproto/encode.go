package proxyproto

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"net"
	"net/netip"
	"strconv"
)

// Append appends h encoded in its Version (1 or 2) to dst. A header without addresses, or with
// a Local command, is written as version 1 "UNKNOWN" or a version 2 header of unspecified
// family. Version 1 carries TCP addresses only and no TLVs. A version 2 header whose TLVs
// include a TypeCRC32C field gets that field's checksum filled in.
func Append(dst []byte, h *Header) ([]byte, error) {
	switch h.Version {
	case 1:
		return appendV1(dst, h)
	case 2:
		return appendV2(dst, h)
	}
	return dst, fmt.Errorf("proxyproto: no version %d", h.Version)
}

// tcpAddrPorts returns the addresses of h as TCP address/port pairs, ok false when h carries
// none or they are not both TCP.
func tcpAddrPorts(h *Header) (src, dst netip.AddrPort, ok bool) {
	s, ok1 := h.Source.(*net.TCPAddr)
	d, ok2 := h.Destination.(*net.TCPAddr)
	if !ok1 || !ok2 || s == nil || d == nil {
		return src, dst, false
	}
	src, dst = s.AddrPort(), d.AddrPort()
	src = netip.AddrPortFrom(src.Addr().Unmap(), src.Port())
	dst = netip.AddrPortFrom(dst.Addr().Unmap(), dst.Port())
	return src, dst, true
}

func appendV1(dst []byte, h *Header) ([]byte, error) {
	dst = append(dst, v1Prefix...)
	src, dstAddr, ok := tcpAddrPorts(h)
	if h.Command == Local || !ok {
		if h.Command == Proxy && (h.Source != nil || h.Destination != nil) {
			return dst, errors.New("proxyproto: version 1 carries TCP addresses only")
		}
		return append(dst, "UNKNOWN\r\n"...), nil
	}
	if src.Addr().Is4() != dstAddr.Addr().Is4() {
		return dst, errors.New("proxyproto: source and destination of different address families")
	}
	if src.Addr().Is4() {
		dst = append(dst, "TCP4 "...)
	} else {
		dst = append(dst, "TCP6 "...)
	}
	dst = src.Addr().WithZone("").AppendTo(dst)
	dst = append(dst, ' ')
	dst = dstAddr.Addr().WithZone("").AppendTo(dst)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(src.Port()), 10)
	dst = append(dst, ' ')
	dst = strconv.AppendUint(dst, uint64(dstAddr.Port()), 10)
	return append(dst, '\r', '\n'), nil
}

func appendV2(dst []byte, h *Header) ([]byte, error) {
	start := len(dst)
	dst = append(dst, v2Signature...)
	dst = append(dst, 0x20|byte(h.Command&0xf), 0, 0, 0)
	famTrans := byte(famUnspec<<4 | transUnspec)
	if h.Command == Proxy {
		if src, d, ok := tcpAddrPorts(h); ok {
			if src.Addr().Is4() && d.Addr().Is4() {
				famTrans = famInet<<4 | transStream
				a, b := src.Addr().As4(), d.Addr().As4()
				dst = append(dst, a[:]...)
				dst = append(dst, b[:]...)
			} else {
				famTrans = famInet6<<4 | transStream
				a, b := src.Addr().As16(), d.Addr().As16()
				dst = append(dst, a[:]...)
				dst = append(dst, b[:]...)
			}
			dst = binary.BigEndian.AppendUint16(dst, src.Port())
			dst = binary.BigEndian.AppendUint16(dst, d.Port())
		} else if su, ok := h.Source.(*net.UnixAddr); ok {
			du, _ := h.Destination.(*net.UnixAddr)
			if du == nil || len(su.Name) >= unixPathLength || len(du.Name) >= unixPathLength {
				return dst[:start], errors.New("proxyproto: unix addresses missing or longer than 107 bytes")
			}
			famTrans = famUnix<<4 | transStream
			var path [2 * unixPathLength]byte
			copy(path[:], su.Name)
			copy(path[unixPathLength:], du.Name)
			dst = append(dst, path[:]...)
		} else if h.Source != nil || h.Destination != nil {
			return dst[:start], errors.New("proxyproto: addresses must both be TCP or both unix")
		}
	}
	dst[start+13] = famTrans
	crcAt := -1
	for _, t := range h.TLVs {
		if len(t.Value) > 0xffff {
			return dst[:start], fmt.Errorf("proxyproto: TLV %#x longer than 65535 bytes", t.Type)
		}
		dst = append(dst, t.Type)
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(t.Value)))
		if t.Type == TypeCRC32C && crcAt < 0 {
			if len(t.Value) != 4 {
				return dst[:start], errors.New("proxyproto: CRC32C TLV is not 4 bytes")
			}
			crcAt = len(dst) - start
			dst = append(dst, 0, 0, 0, 0)
			continue
		}
		dst = append(dst, t.Value...)
	}
	n := len(dst) - start - v2FixedLength
	if n > 0xffff {
		return dst[:start], errors.New("proxyproto: version 2 header longer than 65535 bytes")
	}
	binary.BigEndian.PutUint16(dst[start+14:], uint16(n))
	if crcAt >= 0 {
		binary.BigEndian.PutUint32(dst[start+crcAt:], crc32.Checksum(dst[start:], castagnoli))
	}
	return dst, nil
}
