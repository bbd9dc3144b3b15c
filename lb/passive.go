package lb

import (
	"sync"
	"time"
)

// Defaults of PassiveConfig.
const (
	// DefaultEjectBackoff is how long a first ejection lasts.
	DefaultEjectBackoff = 10 * time.Second
	// DefaultMaxEjectBackoff caps the back-off of repeated ejections.
	DefaultMaxEjectBackoff = 5 * time.Minute
	// DefaultMaxEjectedPercent caps the share of backends ejected at once.
	DefaultMaxEjectedPercent = 50
)

// PassiveConfig configures passive health (outlier detection): a backend
// whose proxied requests fail Failures times in a row is ejected (not
// selected) for a back-off period, then probed with the active health
// Checker, if any, and readmitted when the probe passes. Without a Checker
// it is readmitted on trial: Failures more failures eject it again.
//
// Back-off doubles with each ejection that follows the last readmission
// within MaxBackoff, up to MaxBackoff, and with each failed probe.
type PassiveConfig struct {
	// Failures is the number of consecutive failed requests that ejects a
	// backend; zero turns passive health off.
	Failures int
	// Backoff is the length of a first ejection; zero means
	// DefaultEjectBackoff.
	Backoff time.Duration
	// MaxBackoff caps the back-off; zero means DefaultMaxEjectBackoff.
	MaxBackoff time.Duration
	// MaxEjectedPercent caps the share of backends ejected at the same
	// time, so that a failure of every backend (often the client's fault,
	// or the proxy's) does not empty the set; one backend may always be
	// ejected. Zero means DefaultMaxEjectedPercent.
	MaxEjectedPercent int
}

// passive is the ejection bookkeeping of a Service. report runs on request
// goroutines; due and settle run on the Service loop.
type passive struct {
	cfg      PassiveConfig
	backends *Backends
	wake     func()

	mu        sync.Mutex           // guards following fields
	ejections map[string]*ejection // by backend address
}

// ejection is the passive-health history of one backend.
type ejection struct {
	count      int       // ejections in the current streak, sets the back-off
	until      time.Time // end of the current ejection; zero when admitted
	readmitted time.Time // end of the last ejection
}

// report counts a proxied request's outcome against the backend at addr.
// The success path is a map lookup and an atomic load.
func (p *passive) report(addr string, ok bool) {
	st := p.backends.load().lookup(addr)
	if st == nil {
		return
	}
	if ok {
		if st.fails.Load() != 0 {
			st.fails.Store(0)
		}
		return
	}
	if p.cfg.Failures <= 0 || int(st.fails.Add(1)) < p.cfg.Failures || st.ejected.Load() {
		return
	}
	if p.eject(addr, st, time.Now()) {
		p.wake()
	}
}

// eject takes the backend at addr out of selection unless it is out
// already or the cap on ejected backends is reached.
func (p *passive) eject(addr string, st *status, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if st.ejected.Load() {
		return false
	}
	set := p.backends.load()
	out := 0
	for _, s := range set.status {
		if s.ejected.Load() {
			out++
		}
	}
	pct := intOr(p.cfg.MaxEjectedPercent, DefaultMaxEjectedPercent)
	if out >= max(1, len(set.list)*pct/100) {
		return false
	}
	e := p.ejections[addr]
	if e == nil {
		e = &ejection{}
		p.ejections[addr] = e
	}
	if !e.readmitted.IsZero() && now.Sub(e.readmitted) > p.maxBackoff() {
		e.count = 0
	}
	e.count++
	e.until = now.Add(p.backoff(e.count))
	st.fails.Store(0)
	st.ejected.Store(true)
	return true
}

func (p *passive) maxBackoff() time.Duration {
	return orDefault(p.cfg.MaxBackoff, DefaultMaxEjectBackoff)
}

// backoff returns the length of the n-th ejection of a streak.
func (p *passive) backoff(n int) time.Duration {
	d, limit := orDefault(p.cfg.Backoff, DefaultEjectBackoff), p.maxBackoff()
	for i := 1; i < n && d < limit; i++ {
		d *= 2
	}
	return min(d, limit)
}

// due returns the addresses whose ejection has ended by now, and the
// earliest end of an ejection not settled yet (zero if none), which is not
// after now when addrs is not empty.
func (p *passive) due(now time.Time) (addrs []string, next time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr, e := range p.ejections {
		if e.until.IsZero() {
			continue
		}
		if !e.until.After(now) {
			addrs = append(addrs, addr)
		}
		next = earliest(next, e.until)
	}
	return addrs, next
}

// settle ends the ejection of addr when probeOK, else extends it by the
// next back-off. It reports whether the backend was readmitted.
func (p *passive) settle(addr string, probeOK bool, now time.Time) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	e := p.ejections[addr]
	st := p.backends.load().lookup(addr)
	if e == nil || st == nil {
		return false
	}
	if !probeOK {
		e.count++
		e.until = now.Add(p.backoff(e.count))
		return false
	}
	e.until, e.readmitted = time.Time{}, now
	st.fails.Store(0)
	st.ejected.Store(false)
	return true
}

// prune forgets backends that left the set.
func (p *passive) prune() {
	set := p.backends.load()
	p.mu.Lock()
	defer p.mu.Unlock()
	for addr := range p.ejections {
		if set.lookup(addr) == nil {
			delete(p.ejections, addr)
		}
	}
}
