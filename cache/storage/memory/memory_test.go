package memory_test

import (
	"testing"
	"time"

	"github.com/pingora-go/pingora/cache"
	"github.com/pingora-go/pingora/cache/internal/storagetest"
	"github.com/pingora-go/pingora/cache/storage/memory"
)

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T, maxBytes int64, fillTimeout time.Duration) cache.Storage {
		return memory.New(memory.Config{MaxBytes: maxBytes, FillTimeout: fillTimeout, Shards: 1})
	})
}
