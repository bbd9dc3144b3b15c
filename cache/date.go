package cache

import (
	"time"

	"github.com/pingora-go/pingora/header"
)

// ParseHTTPDate parses an HTTP-date (RFC 9110 §5.6.7) in any of its three formats:
// IMF-fixdate ("Sun, 06 Nov 1994 08:49:37 GMT"), the obsolete RFC 850 form
// ("Sunday, 06-Nov-94 08:49:37 GMT") and ANSI C's asctime() form ("Sun Nov  6 08:49:37 1994").
// A two-digit RFC 850 year more than 50 years in the future is taken as the most recent past
// year with the same last two digits. It does not allocate.
func ParseHTTPDate(b []byte) (time.Time, bool) {
	b = header.TrimOWS(b)
	if len(b) == 29 && b[3] == ',' {
		return parseIMF(b)
	}
	if len(b) == 24 && b[3] == ' ' {
		return parseASCTime(b)
	}
	return parseRFC850(b)
}

// AppendHTTPDate appends t in IMF-fixdate form.
func AppendHTTPDate(dst []byte, t time.Time) []byte {
	return t.UTC().AppendFormat(dst, "Mon, 02 Jan 2006 15:04:05 GMT")
}

var dayNames = [7]string{"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"}
var longDayNames = [7]string{"Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"}
var monthNames = [12]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// parseIMF parses "Sun, 06 Nov 1994 08:49:37 GMT".
func parseIMF(b []byte) (time.Time, bool) {
	if !isDay(b[:3]) || b[4] != ' ' || b[7] != ' ' || b[11] != ' ' || b[16] != ' ' || string(b[25:]) != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(b[5:7])
	mon, ok2 := month(b[8:11])
	year, ok3 := digits(b[12:16])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	return clock(year, mon, day, b[17:25])
}

// parseASCTime parses "Sun Nov  6 08:49:37 1994" (the day may also be two digits).
func parseASCTime(b []byte) (time.Time, bool) {
	if !isDay(b[:3]) || b[7] != ' ' || b[10] != ' ' || b[19] != ' ' {
		return time.Time{}, false
	}
	mon, ok := month(b[4:7])
	if !ok {
		return time.Time{}, false
	}
	d := b[8:10]
	if d[0] == ' ' {
		d = d[1:]
	}
	day, ok1 := digits(d)
	year, ok2 := digits(b[20:24])
	if !ok1 || !ok2 {
		return time.Time{}, false
	}
	return clock(year, mon, day, b[11:19])
}

// parseRFC850 parses "Sunday, 06-Nov-94 08:49:37 GMT".
func parseRFC850(b []byte) (time.Time, bool) {
	comma := -1
	for i := 0; i < len(b) && i < 10; i++ {
		if b[i] == ',' {
			comma = i
			break
		}
	}
	if comma < 0 || !isLongDay(b[:comma]) {
		return time.Time{}, false
	}
	r := b[comma+1:]
	if len(r) != 23 || r[0] != ' ' || r[3] != '-' || r[7] != '-' || r[10] != ' ' || string(r[19:]) != " GMT" {
		return time.Time{}, false
	}
	day, ok1 := digits(r[1:3])
	mon, ok2 := month(r[4:7])
	yy, ok3 := digits(r[8:10])
	if !ok1 || !ok2 || !ok3 {
		return time.Time{}, false
	}
	// RFC 9110 §5.6.7: a year that would be more than 50 years in the future is in the past.
	now := time.Now().UTC().Year()
	year := now - now%100 + yy
	if year > now+50 {
		year -= 100
	}
	return clock(year, mon, day, r[11:19])
}

// clock checks "HH:MM:SS" and the calendar fields, and builds the UTC time.
func clock(year int, mon time.Month, day int, hms []byte) (time.Time, bool) {
	if hms[2] != ':' || hms[5] != ':' {
		return time.Time{}, false
	}
	h, ok1 := digits(hms[0:2])
	m, ok2 := digits(hms[3:5])
	s, ok3 := digits(hms[6:8])
	// A leap second (60) is accepted and normalised by time.Date.
	if !ok1 || !ok2 || !ok3 || h > 23 || m > 59 || s > 60 || day < 1 || day > 31 {
		return time.Time{}, false
	}
	t := time.Date(year, mon, day, h, m, s, 0, time.UTC)
	if t.Day() != day && s != 60 {
		// 31 Feb and the like rolled over into the next month.
		return time.Time{}, false
	}
	return t, true
}

func digits(b []byte) (int, bool) {
	if len(b) == 0 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func month(b []byte) (time.Month, bool) {
	for i, m := range monthNames {
		if string(b) == m {
			return time.Month(i + 1), true
		}
	}
	return 0, false
}

func isDay(b []byte) bool {
	for _, d := range dayNames {
		if string(b) == d {
			return true
		}
	}
	return false
}

func isLongDay(b []byte) bool {
	for _, d := range longDayNames {
		if string(b) == d {
			return true
		}
	}
	return false
}
