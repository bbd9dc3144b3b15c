package ws

import "sync/atomic"

// Stats counts relayed sessions, messages and bytes. It is safe for concurrent use; the zero
// value is ready.
type Stats struct {
	active   atomic.Int64
	sessions atomic.Uint64
	filtered atomic.Uint64
	messages [2]atomic.Uint64
	bytes    [2]atomic.Uint64
	dropped  [2]atomic.Uint64
}

// DefaultStats is where relays count when their Options name no Stats.
var DefaultStats = new(Stats)

// StatsSnapshot is the value of Stats at one moment. The arrays are indexed by Direction.
type StatsSnapshot struct {
	// Active is how many sessions are being relayed now.
	Active int64
	// Sessions is how many sessions were relayed in all; Filtered how many of them message
	// by message (Relay) rather than as raw bytes (Pipe).
	Sessions, Filtered uint64
	// Messages counts the data messages read (Relay only).
	Messages [2]uint64
	// Bytes counts the bytes read from each side after the handshake, frame heads included.
	Bytes [2]uint64
	// Dropped counts the messages a filter dropped.
	Dropped [2]uint64
}

// Snapshot returns the current counts.
func (s *Stats) Snapshot() StatsSnapshot {
	var v StatsSnapshot
	v.Active = s.active.Load()
	// A session counts in sessions before filtered: loading filtered first keeps it at most
	// sessions.
	v.Filtered = s.filtered.Load()
	v.Sessions = s.sessions.Load()
	for d := range 2 {
		v.Messages[d] = s.messages[d].Load()
		v.Bytes[d] = s.bytes[d].Load()
		v.Dropped[d] = s.dropped[d].Load()
	}
	return v
}
