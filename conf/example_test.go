package conf_test

import (
	"fmt"

	"github.com/pingora-go/pingora/conf"
)

func ExampleFromYAML() {
	c, err := conf.FromYAML([]byte("version: 1\ngrace_period_seconds: 30\nmy_routes: [a]\n"))
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Println(c.GracePeriodSeconds, c.PidFile, c.Unknown)
	_, err = conf.FromYAML([]byte("version: 1\nthreads: four\n"))
	fmt.Println(err)
	// Output:
	// 30 /tmp/pingora.pid [{my_routes 3}]
	// conf: 2: threads: want an integer, got "four"
}
