package server

import (
	"context"
	"fmt"
	"runtime/debug"
)

// BackgroundService runs a task beside the listening services, such as health checks or
// service discovery, and stops with the server.
type BackgroundService struct {
	name string
	task func(ctx context.Context)
}

// NewBackgroundService returns a service named "BG "+name that runs task until its ctx ends,
// which happens when the server shuts down (gracefully or not). A panic in task is recovered,
// logged, and stops the server like a failed service.
func NewBackgroundService(name string, task func(ctx context.Context)) *BackgroundService {
	return &BackgroundService{name: "BG " + name, task: task}
}

// Name returns the service's name.
func (b *BackgroundService) Name() string { return b.name }

// Start does nothing: a background service is ready at once.
func (b *BackgroundService) Start(context.Context) error { return nil }

// Serve runs the task until shutdown ends and the task returns.
func (b *BackgroundService) Serve(shutdown, _ context.Context) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("server: background service %s panicked: %v\n%s", b.name, r, debug.Stack())
		}
	}()
	b.task(shutdown)
	return nil
}
