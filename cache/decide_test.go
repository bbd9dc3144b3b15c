package cache

import (
	"testing"
	"time"
)

// TestDecide covers how request and response directives decide the use of a stored response:
// RFC 9111 §4.2 (fresh), §5.2.1 (request max-age, max-stale, min-fresh, no-cache, Pragma),
// §5.2.2 (must-revalidate, proxy-revalidate, s-maxage, no-cache) and RFC 5861 (windows).
func TestDecide(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		resp   string // Cache-Control of the stored response
		req    []string
		age    time.Duration // resident time; the response had age 0
		want   Freshness
	}{
		{"fresh §4.2", Policy{}, "max-age=60", nil, 30 * time.Second, Fresh},
		{"stale §4.2", Policy{}, "max-age=60", nil, 61 * time.Second, Revalidate},
		{"exactly at lifetime is stale", Policy{}, "max-age=60", nil, 60 * time.Second, Revalidate},
		{"request no-cache §5.2.1.4", Policy{}, "max-age=60", []string{"Cache-Control: no-cache"}, 0, Revalidate},
		{"Pragma no-cache §5.4", Policy{}, "max-age=60", []string{"Pragma: no-cache"}, 0, Revalidate},
		{"request max-age older §5.2.1.1", Policy{}, "max-age=60", []string{"Cache-Control: max-age=10"}, 20 * time.Second, Revalidate},
		{"request max-age younger", Policy{}, "max-age=60", []string{"Cache-Control: max-age=30"}, 20 * time.Second, Fresh},
		{"request max-age=0", Policy{}, "max-age=60", []string{"Cache-Control: max-age=0"}, time.Second, Revalidate},
		{"min-fresh unmet §5.2.1.3", Policy{}, "max-age=60", []string{"Cache-Control: min-fresh=40"}, 30 * time.Second, Revalidate},
		{"min-fresh met", Policy{}, "max-age=60", []string{"Cache-Control: min-fresh=20"}, 30 * time.Second, Fresh},
		{"max-stale any §5.2.1.2", Policy{}, "max-age=60", []string{"Cache-Control: max-stale"}, time.Hour, StaleOK},
		{"max-stale within", Policy{}, "max-age=60", []string{"Cache-Control: max-stale=30"}, 80 * time.Second, StaleOK},
		{"max-stale exceeded", Policy{}, "max-age=60", []string{"Cache-Control: max-stale=10"}, 80 * time.Second, Revalidate},
		{"must-revalidate beats max-stale §5.2.2.2", Policy{}, "max-age=60, must-revalidate", []string{"Cache-Control: max-stale"}, 80 * time.Second, Revalidate},
		{"proxy-revalidate §5.2.2.8", Policy{}, "max-age=60, proxy-revalidate", []string{"Cache-Control: max-stale"}, 80 * time.Second, Revalidate},
		{"s-maxage implies proxy-revalidate §5.2.2.10", Policy{}, "s-maxage=60", []string{"Cache-Control: max-stale"}, 80 * time.Second, Revalidate},
		{"response no-cache §5.2.2.4", Policy{}, "max-age=60, no-cache", nil, 0, Revalidate},
		{"stale-while-revalidate window RFC 5861 §3", Policy{}, "max-age=60, stale-while-revalidate=30", nil, 80 * time.Second, StaleWhileRevalidate},
		{"stale-while-revalidate past window", Policy{}, "max-age=60, stale-while-revalidate=30", nil, 100 * time.Second, Revalidate},
		{"default stale-while-revalidate", Policy{StaleWhileRevalidate: time.Minute}, "max-age=60", nil, 100 * time.Second, StaleWhileRevalidate},
		{"response window overrides default", Policy{StaleWhileRevalidate: time.Hour}, "max-age=60, stale-while-revalidate=5", nil, 100 * time.Second, Revalidate},
		{"must-revalidate disables swr", Policy{StaleWhileRevalidate: time.Hour}, "max-age=60, must-revalidate", nil, 100 * time.Second, Revalidate},
		{"request max-age disables swr", Policy{}, "max-age=60, stale-while-revalidate=300", []string{"Cache-Control: max-age=100"}, 80 * time.Second, Revalidate},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, r := tt.policy.NewMeta(reqOf("GET", "/"), respOf(200, "Cache-Control: "+tt.resp, `ETag: "e"`), t0, t0)
			if m == nil {
				t.Fatal(r)
			}
			cc := ParseRequestCacheControl(reqOf("GET", "/", tt.req...))
			if got := tt.policy.Decide(m, &cc, t0.Add(tt.age)); got != tt.want {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
		})
	}
	var p Policy
	cc := ParseRequestCacheControl(reqOf("GET", "/"))
	if p.Decide(nil, &cc, t0) != Miss {
		t.Fatal("nil meta must be a miss")
	}
}

// TestStaleIfError covers RFC 5861 §4: windows from the response, the request, the default,
// and must-revalidate forbidding it.
func TestStaleIfError(t *testing.T) {
	tests := []struct {
		name   string
		policy Policy
		resp   string
		req    []string
		age    time.Duration
		want   bool
	}{
		{"within response window", Policy{}, "max-age=60, stale-if-error=100", nil, 120 * time.Second, true},
		{"past response window", Policy{}, "max-age=60, stale-if-error=10", nil, 120 * time.Second, false},
		{"no window", Policy{}, "max-age=60", nil, 61 * time.Second, false},
		{"default window", Policy{StaleIfError: time.Hour}, "max-age=60", nil, 120 * time.Second, true},
		{"request extends", Policy{}, "max-age=60", []string{"Cache-Control: stale-if-error=300"}, 120 * time.Second, true},
		{"must-revalidate forbids", Policy{StaleIfError: time.Hour}, "max-age=60, must-revalidate", nil, 120 * time.Second, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m, _ := tt.policy.NewMeta(reqOf("GET", "/"), respOf(200, "Cache-Control: "+tt.resp), t0, t0)
			cc := ParseRequestCacheControl(reqOf("GET", "/", tt.req...))
			if got := tt.policy.CanServeStaleIfError(m, &cc, t0.Add(tt.age)); got != tt.want {
				t.Fatalf("got %v", got)
			}
		})
	}
}
