package server

import (
	"context"
	"log/slog"
	"runtime/debug"
)

// BackgroundService runs a task beside the listening services, such as health checks or
// service discovery, and stops with the server.
type BackgroundService struct {
	name   string
	task   func(ctx context.Context)
	logger *slog.Logger
}

// NewBackgroundService returns a service named "BG "+name that runs task until its ctx ends,
// which happens when the server shuts down (gracefully or not). A panic in task is contained,
// as in the reference: it is logged at error level with its stack, the task is over, and the
// other services go on serving.
func NewBackgroundService(name string, task func(ctx context.Context)) *BackgroundService {
	return &BackgroundService{name: "BG " + name, task: task}
}

// Name returns the service's name.
func (b *BackgroundService) Name() string { return b.name }

// SetLogger sets the logger a panic of the task is reported to; unless set, the server's
// logger (Options.Logger), or slog.Default() outside a server.
func (b *BackgroundService) SetLogger(l *slog.Logger) { b.logger = l }

// Start does nothing: a background service is ready at once.
func (b *BackgroundService) Start(context.Context) error { return nil }

// Serve runs the task until it returns; the task's ctx ends when the server shuts down. A
// panic in the task is logged and Serve returns nil, so that the server keeps serving.
func (b *BackgroundService) Serve(shutdown, _ context.Context) error {
	defer func() {
		if r := recover(); r != nil {
			l := b.logger
			if l == nil {
				l = slog.Default()
			}
			l.Error("background service panicked; it is stopped, the other services go on",
				"service", b.name, "panic", r, "stack", string(debug.Stack()))
		}
	}()
	b.task(shutdown)
	return nil
}
