package compression

import "github.com/pingora-go/pingora/header"

// Accept is a request's Accept-Encoding field, parsed: the weight the client gives each
// coding (RFC 9110 §12.5.3). The zero value stands for a request without the field.
type Accept struct {
	// q holds each coding's weight in thousandths plus one; 0 means the coding is not listed.
	q [numCodings]int16
	// star is the weight of "*" in thousandths plus one; 0 means it is not listed.
	star    int16
	present bool
}

// ParseAccept parses the Accept-Encoding fields of f (all lines, in order). Entries with an
// unknown coding are kept out, as are entries whose weight does not parse; when a coding is
// listed twice its first entry counts.
func ParseAccept(f *header.Fields) Accept {
	var a Accept
	f.Values("Accept-Encoding", func(v []byte) bool {
		a.present = true
		a.parse(v)
		return true
	})
	return a
}

// parse adds the entries of one field value.
func (a *Accept) parse(v []byte) {
	for len(v) > 0 {
		var item []byte
		item, v = cut(v, ',')
		name, params := cut(item, ';')
		name = header.TrimOWS(name)
		if len(name) == 0 {
			continue
		}
		q, ok := weight(params)
		if !ok {
			continue
		}
		if len(name) == 1 && name[0] == '*' {
			if a.star == 0 {
				a.star = q + 1
			}
			continue
		}
		if c, known := ParseCoding(name); known && a.q[c] == 0 {
			a.q[c] = q + 1
		}
	}
}

// weight finds the q parameter among params (the part of an entry after its first ';') and
// returns it in thousandths; an entry without one weighs 1000.
func weight(params []byte) (int16, bool) {
	for len(params) > 0 {
		var p []byte
		p, params = cut(params, ';')
		p = header.TrimOWS(p)
		if len(p) >= 2 && (p[0] == 'q' || p[0] == 'Q') && p[1] == '=' {
			return qvalue(p[2:])
		}
	}
	return 1000, true
}

// qvalue parses "0", "0.5", "1.000" and the like (RFC 9110 §12.4.2) into thousandths.
func qvalue(b []byte) (int16, bool) {
	if len(b) == 0 || len(b) > 5 || (b[0] != '0' && b[0] != '1') {
		return 0, false
	}
	q := int16(b[0]-'0') * 1000
	if len(b) == 1 {
		return q, true
	}
	if b[1] != '.' {
		return 0, false
	}
	scale := int16(100)
	for _, d := range b[2:] {
		if d < '0' || d > '9' {
			return 0, false
		}
		q += int16(d-'0') * scale
		scale /= 10
	}
	if q > 1000 {
		return 0, false
	}
	return q, true
}

// cut splits b around the first sep.
func cut(b []byte, sep byte) (before, after []byte) {
	for i, c := range b {
		if c == sep {
			return b[:i], b[i+1:]
		}
	}
	return b, nil
}

// Present reports whether the request had an Accept-Encoding field.
func (a Accept) Present() bool { return a.present }

// Q returns the weight, in thousandths, that the client gives c: its own entry, else that of
// "*", else 1000 for identity (acceptable unless excluded) and 0 for the others.
//
// A request without Accept-Encoding accepts only identity here. RFC 9110 lets a server pick
// any coding then, but clients that send no field (scripts, old tools) seldom decode, and
// decompressing for them is what a proxy is asked to do.
func (a Accept) Q(c Coding) int {
	if c >= numCodings {
		return 0
	}
	if a.q[c] > 0 {
		return int(a.q[c]) - 1
	}
	if a.star > 0 {
		return int(a.star) - 1
	}
	if c == Identity {
		return 1000
	}
	return 0
}

// Accepts reports whether the client accepts c (its weight is above zero).
func (a Accept) Accepts(c Coding) bool { return a.Q(c) > 0 }

// Negotiate chooses the coding to send among prefs (the server's order of preference): the
// one with the highest weight, the earliest in prefs among equals. It returns Identity when the
// client accepts none of them, or when it explicitly weighs identity above all of them.
func (a Accept) Negotiate(prefs []Coding) Coding {
	best, bestQ := Identity, 0
	for _, c := range prefs {
		if c == Identity {
			continue
		}
		if q := a.Q(c); q > bestQ {
			best, bestQ = c, q
		}
	}
	if best != Identity && (a.q[Identity] > 0 || a.star > 0) && a.Q(Identity) > bestQ {
		return Identity
	}
	return best
}
