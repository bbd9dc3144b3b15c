package lb

import (
	"errors"
	"slices"
	"testing"
)

func TestBackendsUpdateValidation(t *testing.T) {
	tests := []struct {
		name     string
		backends []Backend
		err      error
	}{
		{"empty set", nil, nil},
		{"host port", []Backend{{Addr: "10.0.0.1:80"}}, nil},
		{"ipv6", []Backend{{Addr: "[::1]:443", Weight: 3}}, nil},
		{"hostname", []Backend{{Addr: "origin.example:8080"}}, nil},
		{"unix", []Backend{{Addr: "unix:/run/app.sock"}}, nil},
		{"max weight", []Backend{{Addr: "a:1", Weight: MaxWeight}}, nil},
		{"no port", []Backend{{Addr: "10.0.0.1"}}, ErrAddr},
		{"empty port", []Backend{{Addr: "10.0.0.1:"}}, ErrAddr},
		{"no host", []Backend{{Addr: ":80"}}, ErrAddr},
		{"empty", []Backend{{Addr: ""}}, ErrAddr},
		{"unix without path", []Backend{{Addr: "unix:"}}, ErrAddr},
		{"negative weight", []Backend{{Addr: "a:1", Weight: -1}}, ErrWeight},
		{"weight too large", []Backend{{Addr: "a:1", Weight: MaxWeight + 1}}, ErrWeight},
		{"duplicate", []Backend{{Addr: "a:1"}, {Addr: "b:1"}, {Addr: "a:1", Weight: 2}}, ErrDuplicate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewBackends(tt.backends...)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
		})
	}
}

func TestBackendsUpdateChanged(t *testing.T) {
	b, err := NewBackends(Backend{Addr: "b:1"}, Backend{Addr: "a:1", Weight: 2})
	if err != nil {
		t.Fatal(err)
	}
	want := []Backend{{Addr: "a:1", Weight: 2}, {Addr: "b:1", Weight: 1}}
	if got := b.All(); !slices.EqualFunc(got, want, func(x, y Backend) bool { return x.Addr == y.Addr && x.Weight == y.Weight }) {
		t.Fatalf("All = %v, want %v (sorted, zero weight read as 1)", got, want)
	}
	tests := []struct {
		name    string
		list    []Backend
		changed bool
	}{
		{"same, other order", []Backend{{Addr: "b:1", Weight: 1}, {Addr: "a:1", Weight: 2}}, false},
		{"ext ignored", []Backend{{Addr: "a:1", Weight: 2, Ext: map[string]any{"sni": "x"}}, {Addr: "b:1"}}, false},
		{"weight changed", []Backend{{Addr: "a:1", Weight: 3}, {Addr: "b:1"}}, true},
		{"added", []Backend{{Addr: "a:1", Weight: 3}, {Addr: "b:1"}, {Addr: "c:1"}}, true},
		{"removed", []Backend{{Addr: "c:1"}}, true},
		{"emptied", nil, true},
		{"still empty", []Backend{}, false},
	}
	for _, tt := range tests {
		changed, err := b.Update(tt.list)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		if changed != tt.changed {
			t.Errorf("%s: changed = %v, want %v", tt.name, changed, tt.changed)
		}
		if b.Len() != len(tt.list) {
			t.Errorf("%s: Len = %d, want %d", tt.name, b.Len(), len(tt.list))
		}
	}
}

func TestBackendsStatusSurvivesUpdate(t *testing.T) {
	b, err := NewBackends(NewBackend("a:1"), NewBackend("b:1"), NewBackend("c:1"))
	if err != nil {
		t.Fatal(err)
	}
	b.SetHealthy("a:1", false)
	b.SetEnabled("b:1", false)
	steps := []struct {
		name  string
		list  []Backend
		ready map[string]bool
	}{
		{"marked", []Backend{NewBackend("a:1"), NewBackend("b:1"), NewBackend("c:1")},
			map[string]bool{"a:1": false, "b:1": false, "c:1": true, "d:1": false}},
		{"weight change keeps state", []Backend{{Addr: "a:1", Weight: 5}, NewBackend("b:1"), NewBackend("d:1")},
			map[string]bool{"a:1": false, "b:1": false, "c:1": false, "d:1": true}},
		{"removed and re-added starts ready", []Backend{NewBackend("a:1")},
			map[string]bool{"a:1": false, "b:1": false}},
		{"re-added", []Backend{NewBackend("a:1"), NewBackend("b:1")},
			map[string]bool{"a:1": false, "b:1": true}},
	}
	for _, s := range steps {
		if _, err := b.Update(s.list); err != nil {
			t.Fatal(err)
		}
		for addr, want := range s.ready {
			if got := b.Ready(addr); got != want {
				t.Errorf("%s: Ready(%s) = %v, want %v", s.name, addr, got, want)
			}
		}
	}
	if !b.SetHealthy("a:1", true) || !b.Ready("a:1") {
		t.Error("a:1 not ready after SetHealthy(true)")
	}
	if b.SetHealthy("zz:1", true) || b.SetEnabled("zz:1", true) {
		t.Error("setting an unknown address reported success")
	}
}

func TestBackendHash(t *testing.T) {
	base := Backend{Addr: "10.0.0.1:443", Weight: 1}
	tests := []struct {
		name string
		b    Backend
		same bool
	}{
		{"identical", Backend{Addr: "10.0.0.1:443", Weight: 1}, true},
		{"zero weight is 1", Backend{Addr: "10.0.0.1:443"}, true},
		{"ext ignored", Backend{Addr: "10.0.0.1:443", Weight: 1, Ext: map[string]any{"k": 1}}, true},
		{"other weight", Backend{Addr: "10.0.0.1:443", Weight: 2}, false},
		{"other addr", Backend{Addr: "10.0.0.2:443", Weight: 1}, false},
	}
	for _, tt := range tests {
		if got := tt.b.Hash() == base.Hash(); got != tt.same {
			t.Errorf("%s: equal hash = %v, want %v", tt.name, got, tt.same)
		}
	}
	// Pinned: 64-bit FNV-1a of "10.0.0.1:443", NUL, uint64(1) little-endian
	// (computed independently), so the hash stays stable across releases.
	if got, want := base.Hash(), uint64(0x2259f5dfcc6e2667); got != want {
		t.Errorf("Hash = %#x, want %#x", got, want)
	}
}

func TestZeroValues(t *testing.T) {
	var b Backends
	if b.Len() != 0 || b.Ready("a:1") || b.All() != nil {
		t.Error("zero Backends is not empty")
	}
	l, err := NewFromBackends(RoundRobin, &b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := l.Select(nil, 1); ok {
		t.Error("picked from an empty set")
	}
	if _, err := b.Update([]Backend{NewBackend("a:1")}); err != nil {
		t.Fatal(err)
	}
	if got, ok := l.Select(nil, 1); !ok || got.Addr != "a:1" {
		t.Errorf("after Update: %q, %v", got.Addr, ok)
	}
	var lease Lease
	lease.Release() // must not panic
}
