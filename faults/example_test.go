package faults_test

import (
	"fmt"
	"log"
	"time"

	"github.com/pingora-go/pingora/faults"
	"github.com/pingora-go/pingora/protocols/h1"
	"github.com/pingora-go/pingora/proxy"
	"github.com/pingora-go/pingora/upstream"
)

// myProxy stands for the proxy program under test: it sends every request to one peer.
type myProxy struct {
	proxy.Defaults[struct{}]
	peer *upstream.Peer
}

func (myProxy) NewCtx() struct{} { return struct{}{} }

func (p myProxy) UpstreamPeer(*proxy.Session, *struct{}) (*upstream.Peer, error) { return p.peer, nil }

// tryUpstream runs myProxy in front of an upstream with fault and fetches req through it.
// In a test, faults.NewUpstream(t, fault) and faults.StartProxy(t, app, opts) do the starting
// and stopping.
func tryUpstream(fault faults.Fault, req []byte) faults.Outcome {
	up, err := faults.StartUpstream(fault, 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()
	peer, err := upstream.NewPeer(up.Addr(), false, "")
	if err != nil {
		log.Fatal(err)
	}
	peer.Options.ReadTimeout = 200 * time.Millisecond
	p, err := faults.NewProxy(myProxy{peer: peer}, faults.ProxyOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	return p.Client().Fetch(req)
}

// tryClient runs myProxy, with short downstream timeouts, in front of a healthy upstream,
// and lets misbehave talk to it.
func tryClient(misbehave func(c faults.Client) faults.Outcome) faults.Outcome {
	up, err := faults.StartUpstream(faults.Respond(faults.Response(200, "ok")), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()
	peer, err := upstream.NewPeer(up.Addr(), false, "")
	if err != nil {
		log.Fatal(err)
	}
	opts := proxy.Options{Server: h1.ServerOptions{HeadTimeout: 200 * time.Millisecond, ReadTimeout: 200 * time.Millisecond}}
	p, err := faults.NewProxy(myProxy{peer: peer}, faults.ProxyOptions{Proxy: opts})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()
	return misbehave(p.Client())
}

// A whole test of one fault: an upstream that cuts its body must not make the proxy's
// response look complete.
func ExampleNewProxy() {
	up, err := faults.StartUpstream(faults.TruncateBody(1000, 10), 5*time.Second)
	if err != nil {
		log.Fatal(err)
	}
	defer up.Close()
	peer, err := upstream.NewPeer(up.Addr(), false, "")
	if err != nil {
		log.Fatal(err)
	}
	p, err := faults.NewProxy(myProxy{peer: peer}, faults.ProxyOptions{})
	if err != nil {
		log.Fatal(err)
	}
	defer p.Close()

	o := p.Client().Fetch(faults.Get("/"))
	fmt.Println("status:", o.Status, "complete:", o.Complete, "closed:", o.Closed)
	rec := p.Recorder.Wait(1, time.Second)
	fmt.Println("the phases were told of an error:", rec[0].Err != nil)
	// Output:
	// status: 200 complete: false closed: true
	// the phases were told of an error: true
}

func ExampleResetAfter() {
	resp := faults.Response(200, "hello")
	o := tryUpstream(faults.ResetAfter(resp, 5), faults.Get("/"))
	fmt.Println(o.Status)
	// Output: 502
}

func ExampleTruncateBody() {
	o := tryUpstream(faults.TruncateBody(100, 10), faults.Get("/"))
	fmt.Println(o.Status, o.Complete, len(o.Body))
	// Output: 200 false 10
}

func ExampleChunkedWithoutLastChunk() {
	o := tryUpstream(faults.ChunkedWithoutLastChunk("hello ", "world"), faults.Get("/"))
	fmt.Println(o.Status, o.Complete, o.Closed)
	// Output: 200 false true
}

func ExampleGarbage() {
	o := tryUpstream(faults.Garbage([]byte("not http at all\r\n\r\n")), faults.Get("/"))
	fmt.Println(o.Status)
	// Output: 502
}

func ExampleAnswerBeforeBody() {
	o := tryUpstream(faults.AnswerBeforeBody(faults.Response(413, "too large")), faults.Post("/upload", "some body"))
	fmt.Println(o.Status, string(o.Body))
	// Output: 413 too large
}

func ExampleInformationalStorm() {
	o := tryUpstream(faults.InformationalStorm(20, 103, faults.Response(200, "done")), faults.Get("/"))
	fmt.Println(o.Status, string(o.Body))
	// Output: 200 done
}

func ExampleNeverAnswer() {
	o := tryUpstream(faults.NeverAnswer(), faults.Get("/"))
	fmt.Println(o.Status)
	// Output: 504
}

func ExampleSlowResponse() {
	o := tryUpstream(faults.SlowResponse(faults.Response(200, "slow"), time.Millisecond), faults.Get("/"))
	fmt.Println(o.Status, string(o.Body), o.Complete)
	// Output: 200 slow true
}

func ExampleCloseAfterHead() {
	o := tryUpstream(faults.CloseAfterHead(100), faults.Get("/"))
	fmt.Println("complete:", o.Complete, "closed:", o.Closed)
	// Output: complete: false closed: true
}

func ExampleClient_Slowloris() {
	head := faults.Get("/")
	o := tryClient(func(c faults.Client) faults.Outcome { return c.Slowloris(head, 20*time.Millisecond) })
	fmt.Println("whole head sent:", o.Sent == len(head), "served:", o.Status == 200)
	// Output: whole head sent: false served: false
}

func ExampleClient_SlowBody() {
	head := []byte("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n")
	o := tryClient(func(c faults.Client) faults.Outcome {
		return c.SlowBody(head, []byte("0123456789"), 500*time.Millisecond)
	})
	fmt.Println("served:", o.Status == 200)
	// Output: served: false
}

func ExampleClient_OversizedHead() {
	o := tryClient(func(c faults.Client) faults.Outcome { return c.OversizedHead(1 << 20) })
	fmt.Println(o.Status)
	// Output: 431
}

func ExampleClient_PipelineFlood() {
	o := tryClient(func(c faults.Client) faults.Outcome { return c.PipelineFlood(faults.Get("/"), 100) })
	fmt.Println(o.Responses)
	// Output: 100
}

func ExampleClient_HalfClose() {
	o := tryClient(func(c faults.Client) faults.Outcome { return c.HalfClose(faults.Get("/")) })
	fmt.Println(o.Status, string(o.Body))
	// Output: 200 ok
}

func ExampleClient_StartSlowReader() {
	o := tryClient(func(c faults.Client) faults.Outcome {
		sr, err := c.StartSlowReader(faults.Get("/"))
		if err != nil {
			log.Fatal(err)
		}
		defer sr.Close()
		// ... measure the proxy while the reader holds its response ...
		return sr.Resume(time.Second)
	})
	fmt.Println(o.Status, string(o.Body))
	// Output: 200 ok
}
