// Package accesslog writes one structured log record per proxied request: a proxy.Observer
// for the proxy's Options.Observers. It is off unless a program adds it.
package accesslog

import (
	"context"
	"errors"
	"log/slog"
	"time"

	"github.com/pingora-go/pingora/perr"
	"github.com/pingora-go/pingora/proxy"
)

// Logger logs every finished request through a slog.Logger at info level (warn when the
// request ended with an error), with the fields:
//
//	time, client, method, path, status, bytes_in, bytes_out, duration,
//	upstream, upstream_connect, upstream_head, attempts (when an upstream was chosen),
//	error, error_type (when the request failed)
//
// Durations are measured from the moment the request head was read. status is 0 when no
// response was sent. It is safe for concurrent use when its handler is.
type Logger struct {
	log *slog.Logger
}

var _ proxy.Observer = (*Logger)(nil)

// New returns an access logger writing to l. For a file of JSON lines:
//
//	accesslog.New(slog.New(slog.NewJSONHandler(file, nil)))
func New(l *slog.Logger) *Logger { return &Logger{log: l} }

// UpstreamConnected does nothing; the connection shows in the record of its request.
func (*Logger) UpstreamConnected(*proxy.Session, bool, time.Duration) {}

// RequestDone logs the request.
func (a *Logger) RequestDone(s *proxy.Session) {
	level := slog.LevelInfo
	err := s.Err()
	if err != nil {
		level = slog.LevelWarn
	}
	ctx := context.Background()
	if !a.log.Enabled(ctx, level) {
		return
	}
	t := &s.Timings
	attrs := make([]slog.Attr, 0, 16)
	client := ""
	if c := s.ClientAddr(); c != nil {
		client = c.String()
	}
	attrs = append(attrs,
		slog.String("client", client),
		slog.String("method", string(s.Req().Method())),
		slog.String("path", string(s.Req().Target())),
		slog.String("proto", s.Req().Version.String()),
		slog.Int("status", s.ResponseStatus()),
		slog.Int64("bytes_in", s.BodyBytesReceived()),
		slog.Int64("bytes_out", s.BodyBytesSent()),
		slog.Duration("duration", since(t.Start, t.End)),
	)
	if ph := s.Cache().Phase(); ph != proxy.CacheOff {
		attrs = append(attrs, slog.String("cache", ph.String()))
	}
	if p := s.Peer(); p != nil {
		attrs = append(attrs,
			slog.String("upstream", p.Addr),
			slog.Duration("upstream_connect", since(t.Start, t.Connected)),
			slog.Duration("upstream_head", since(t.Start, t.UpstreamHead)),
			slog.Int("attempts", s.Attempts()),
		)
	}
	if err != nil {
		attrs = append(attrs, slog.String("error", err.Error()))
		var pe *perr.Error
		if errors.As(err, &pe) {
			attrs = append(attrs, slog.String("error_type", pe.Type.Name()))
		}
	}
	a.log.LogAttrs(ctx, level, "access", attrs...)
}

// since returns end-start, or 0 when either did not happen.
func since(start, end time.Time) time.Duration {
	if start.IsZero() || end.IsZero() {
		return 0
	}
	return end.Sub(start)
}
