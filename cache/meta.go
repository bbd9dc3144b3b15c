package cache

import (
	"strconv"
	"time"

	"github.com/pingora-go/pingora/header"
)

// Meta is everything stored about a response but its body: the response head and the times and
// directives that decide its freshness. A Meta in a storage is shared by its readers and must
// not be changed; Clone it first.
type Meta struct {
	// Header is the stored response head: hop-by-hop fields, Age and the fields a qualified
	// private or no-cache names are removed.
	Header header.ResponseHeader

	// Created is when the response was first stored.
	Created time.Time
	// RequestTime is when the request that produced (or last validated) the response was sent.
	RequestTime time.Time
	// ResponseTime is when that response was received.
	ResponseTime time.Time
	// InitialAge is the response's corrected initial age at ResponseTime (RFC 9111 §4.2.3).
	InitialAge time.Duration
	// Lifetime is the freshness lifetime (RFC 9111 §4.2.1).
	Lifetime time.Duration
	// Heuristic is true when Lifetime is a heuristic (RFC 9111 §4.2.2) or a configured default.
	Heuristic bool
	// StaleWhileRevalidate and StaleIfError are the response's stale-while-revalidate and
	// stale-if-error windows, -1 when it has none (the configured defaults apply then).
	StaleWhileRevalidate time.Duration
	StaleIfError         time.Duration
	// MustRevalidate forbids serving the response stale (must-revalidate, proxy-revalidate or
	// s-maxage, RFC 9111 §5.2.2.2, §5.2.2.8, §5.2.2.10).
	MustRevalidate bool
	// NoCache requires a successful validation before every reuse (RFC 9111 §5.2.2.4).
	NoCache bool

	// Vary lists the request field names the response varies on (see VaryNames).
	Vary []string
	// VaryIndex marks the record kept under a resource's primary key when its responses vary:
	// it has no body, and Vary says how to compute the variance of the response to look up.
	VaryIndex bool
	// Tags are the surrogate keys (Surrogate-Key field) the response can be purged by.
	Tags []string
	// BodySize is the length of the stored body, -1 while it is still being written.
	BodySize int64
}

// Clone returns a deep copy of m.
func (m *Meta) Clone() *Meta {
	c := *m
	c.Header = header.ResponseHeader{}
	c.Header.CopyFrom(&m.Header)
	c.Vary = append([]string(nil), m.Vary...)
	c.Tags = append([]string(nil), m.Tags...)
	return &c
}

// Age returns the response's current age at now (RFC 9111 §4.2.3): its corrected initial age
// plus the time it has been resident since it was received.
func (m *Meta) Age(now time.Time) time.Duration {
	resident := now.Sub(m.ResponseTime)
	if resident < 0 {
		resident = 0
	}
	return m.InitialAge + resident
}

// TTL returns how much longer the response stays fresh at now; negative once it is stale.
func (m *Meta) TTL(now time.Time) time.Duration { return m.Lifetime - m.Age(now) }

// IsFresh reports whether the response is fresh at now (RFC 9111 §4.2).
func (m *Meta) IsFresh(now time.Time) bool { return m.Age(now) < m.Lifetime }

// AppendAge appends the value of the Age field for serving the response at now: the current
// age in whole seconds (RFC 9111 §5.1), clamped to MaxDeltaSeconds.
func (m *Meta) AppendAge(dst []byte, now time.Time) []byte {
	s := int64(m.Age(now) / time.Second)
	return strconv.AppendInt(dst, min(s, MaxDeltaSeconds), 10)
}

// ageTimes fills RequestTime, ResponseTime and InitialAge from an exchange: the response's Date
// and Age fields and when the request was sent and the response received.
func (m *Meta) ageTimes(resp *header.ResponseHeader, reqTime, respTime time.Time) {
	if respTime.Before(reqTime) {
		respTime = reqTime
	}
	m.RequestTime, m.ResponseTime = reqTime, respTime
	date := respTime
	if v, ok := resp.Get("Date"); ok {
		if d, ok := ParseHTTPDate(v); ok {
			date = d
		}
	}
	apparent := max(respTime.Sub(date), 0)
	var ageValue time.Duration
	if v, ok := resp.Get("Age"); ok {
		if a, ok := parseDelta(header.TrimOWS(v)); ok {
			ageValue = time.Duration(a) * time.Second
		}
	}
	corrected := ageValue + respTime.Sub(reqTime)
	m.InitialAge = max(apparent, corrected)
}

// ContentLength returns the value of the head's Content-Length, or -1 when it has none or it
// is not a plain number.
func ContentLength(h *header.ResponseHeader) int64 {
	v, ok := h.Get("Content-Length")
	if !ok {
		return -1
	}
	n, err := strconv.ParseInt(string(header.TrimOWS(v)), 10, 64)
	if err != nil || n < 0 {
		return -1
	}
	return n
}
