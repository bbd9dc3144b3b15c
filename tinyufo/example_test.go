package tinyufo_test

import (
	"fmt"

	"github.com/pingora-go/pingora/tinyufo"
)

func Example() {
	// Up to 1000 bytes of values, about 100 entries.
	c := tinyufo.New[string, []byte](1000, 100)
	body := []byte("hello")
	c.Put("/index.html", body, len(body))
	if v, ok := c.Get("/index.html"); ok {
		fmt.Printf("%s (%d of %d bytes used)\n", v, c.Weight(), c.Limit())
	}
	// Output: hello (5 of 1000 bytes used)
}

func ExampleCache_PutAppend() {
	c := tinyufo.New[int, string](2, 2)
	var out []tinyufo.Item[string]
	for k, v := range []string{"a", "b", "c"} {
		out = c.ForcePutAppend(out[:0], k, v, 1)
	}
	for _, it := range out {
		fmt.Println("evicted", it.Value)
	}
	fmt.Println(c.Len(), "entries")
	// Output:
	// evicted a
	// 2 entries
}
