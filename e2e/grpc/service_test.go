package grpce2e

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"
)

// The test service, declared by hand as protoc would generate it:
//
//	service Test {
//	  rpc Echo(msg) returns (msg);              // the payload back, metadata echoed
//	  rpc Deadline(msg) returns (msg);          // the milliseconds left before the deadline
//	  rpc List(msg) returns (stream msg);       // "N" or "N fail": N messages, then OK or ABORTED
//	  rpc Sum(stream msg) returns (msg);        // "count bytes" of what the client sent
//	  rpc Chat(stream msg) returns (stream msg) // "echo " + each message, as it comes
//	  rpc Hang(msg) returns (stream msg);       // "started", then waits for the client to go
//	}
const serviceName = "e2e.Test"

// notFoundMessage has spaces, a percent sign and non-ASCII letters, which grpc-message carries
// percent-encoded.
const notFoundMessage = "no such thing: /a b/ café 100%"

// service implements the test service. Hang reports the error of its context on canceled.
type service struct {
	canceled chan error
}

func newService() *service { return &service{canceled: make(chan error, 1)} }

var serviceDesc = grpc.ServiceDesc{
	ServiceName: serviceName,
	HandlerType: (*any)(nil),
	Methods: []grpc.MethodDesc{
		{MethodName: "Echo", Handler: unary((*service).echo)},
		{MethodName: "Deadline", Handler: unary((*service).deadline)},
	},
	Streams: []grpc.StreamDesc{
		listDesc,
		sumDesc,
		chatDesc,
		hangDesc,
	},
}

var (
	listDesc = grpc.StreamDesc{StreamName: "List", Handler: streaming((*service).list), ServerStreams: true}
	sumDesc  = grpc.StreamDesc{StreamName: "Sum", Handler: streaming((*service).sum), ClientStreams: true}
	chatDesc = grpc.StreamDesc{StreamName: "Chat", Handler: streaming((*service).chat), ServerStreams: true, ClientStreams: true}
	hangDesc = grpc.StreamDesc{StreamName: "Hang", Handler: streaming((*service).hang), ServerStreams: true}
)

// streaming adapts a method of service to a grpc.StreamDesc handler.
func streaming(f func(*service, grpc.ServerStream) error) grpc.StreamHandler {
	return func(srv any, ss grpc.ServerStream) error { return f(srv.(*service), ss) }
}

// unary adapts a method of service to a grpc.MethodDesc handler.
func unary(f func(*service, context.Context, *msg) (*msg, error)) grpc.MethodHandler {
	return func(srv any, ctx context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
		in := new(msg)
		if err := dec(in); err != nil {
			return nil, err
		}
		return f(srv.(*service), ctx, in)
	}
}

// method is the full name of a method of the test service.
func method(name string) string { return "/" + serviceName + "/" + name }

// echo answers the payload. Incoming x-client and x-data-bin metadata come back as the
// x-echo-client and x-echo-data-bin headers and an x-trailer trailer. The payload "notfound"
// fails with NOT_FOUND and a trailer x-why, before any header was sent: gRPC answers with
// trailers only.
func (s *service) echo(ctx context.Context, in *msg) (*msg, error) {
	md, _ := metadata.FromIncomingContext(ctx)
	if string(in.b) == "notfound" {
		grpc.SetTrailer(ctx, metadata.Pairs("x-why", "missing"))
		return nil, status.Error(codes.NotFound, notFoundMessage)
	}
	if v := md.Get("x-client"); len(v) > 0 {
		hdr := metadata.Pairs("x-echo-client", strings.Join(v, ","))
		for _, b := range md.Get("x-data-bin") {
			hdr.Append("x-echo-data-bin", b)
		}
		if err := grpc.SetHeader(ctx, hdr); err != nil {
			return nil, err
		}
		grpc.SetTrailer(ctx, metadata.Pairs("x-trailer", "t-"+v[0]))
	}
	return in, nil
}

// deadline answers how many milliseconds were left before the call's deadline when it
// arrived, or "none".
func (s *service) deadline(ctx context.Context, _ *msg) (*msg, error) {
	d, ok := ctx.Deadline()
	if !ok {
		return &msg{b: []byte("none")}, nil
	}
	return &msg{b: []byte(strconv.FormatInt(time.Until(d).Milliseconds(), 10))}, nil
}

// list sends N messages "i:" followed by 100 bytes, then ends with OK, or with ABORTED and a
// trailer x-sent when asked to fail.
func (s *service) list(ss grpc.ServerStream) error {
	in := new(msg)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	f := strings.Fields(string(in.b))
	n, err := strconv.Atoi(f[0])
	if err != nil {
		return status.Error(codes.InvalidArgument, err.Error())
	}
	pad := strings.Repeat("p", 100)
	for i := range n {
		if err := ss.SendMsg(&msg{b: []byte(strconv.Itoa(i) + ":" + pad)}); err != nil {
			return err
		}
	}
	if len(f) > 1 && f[1] == "fail" {
		ss.SetTrailer(metadata.Pairs("x-sent", strconv.Itoa(n)))
		return status.Errorf(codes.Aborted, "stopped after %d", n)
	}
	return nil
}

// sum reads the client's messages to the end and answers "count bytes".
func (s *service) sum(ss grpc.ServerStream) error {
	var count, total int
	for {
		in := new(msg)
		err := ss.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
		count++
		total += len(in.b)
	}
	return ss.SendMsg(&msg{b: fmt.Appendf(nil, "%d %d", count, total)})
}

// chat answers each message as it arrives, until the client closes its side.
func (s *service) chat(ss grpc.ServerStream) error {
	for {
		in := new(msg)
		err := ss.RecvMsg(in)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if err := ss.SendMsg(&msg{b: append([]byte("echo "), in.b...)}); err != nil {
			return err
		}
	}
}

// hang sends "started" and waits until the call ends, then reports why on s.canceled. A
// client that cancels must make the proxy reset the upstream stream, which ends ss's context
// with context.Canceled; the bound keeps a proxy that does not from blocking the server.
func (s *service) hang(ss grpc.ServerStream) error {
	in := new(msg)
	if err := ss.RecvMsg(in); err != nil {
		return err
	}
	if err := ss.SendMsg(&msg{b: []byte("started")}); err != nil {
		return err
	}
	var err error
	select {
	case <-ss.Context().Done():
		err = ss.Context().Err()
	case <-time.After(waitBound):
		err = errors.New("the call was still open after " + waitBound.String())
	}
	select {
	case s.canceled <- err:
	default:
	}
	return err
}
