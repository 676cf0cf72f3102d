// Command mls-client serves Parley's MLS library over the MLS working
// group's interop gRPC interface (MLSClient), for the official test-runner:
//
//	mls-client -port 50001
//
// It listens on -host (default 127.0.0.1; use 0.0.0.0 inside a container)
// and -port (0 picks a free port), and prints "listening on HOST:PORT" on
// stdout once it accepts connections. It runs until interrupted.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strconv"
	"syscall"

	"google.golang.org/grpc"

	"github.com/parley-chat/parley/interop/client"
	pb "github.com/parley-chat/parley/interop/proto"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "mls-client:", err)
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		os.Exit(1)
	}
}

// run parses args, serves until ctx is done and reports the listening
// address on stdout.
func run(ctx context.Context, args []string, stdout io.Writer) error {
	fs := flag.NewFlagSet("mls-client", flag.ContinueOnError)
	host := fs.String("host", "127.0.0.1", "address to listen on")
	port := fs.Int("port", 50051, "TCP port to listen on (0: any free port)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected arguments %q", fs.Args())
	}
	if *port < 0 || *port > 65535 {
		return fmt.Errorf("-port %d out of range", *port)
	}
	lis, err := net.Listen("tcp", net.JoinHostPort(*host, strconv.Itoa(*port)))
	if err != nil {
		return err
	}
	srv := grpc.NewServer()
	pb.RegisterMLSClientServer(srv, client.New())
	fmt.Fprintln(stdout, "listening on", lis.Addr())
	go func() {
		<-ctx.Done()
		srv.GracefulStop()
	}()
	return srv.Serve(lis)
}
