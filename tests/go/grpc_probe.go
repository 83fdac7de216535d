// What a Go user of plain grpc-go (Debian's golang-google-grpc-dev) sees of tufkeyd
// on its Unix socket, with no dial options but plaintext:
//
//	grpc_probe unix:///PATH   the "unix:" target (grpc-go sends `localhost`)
//	grpc_probe -dialer PATH   the older pattern: the bare path and a Unix dialer
//	                          (grpc-go sends the path itself as :authority)
//
// Prints one JSON object {"target", "health", "v1alpha"}: the health status and the
// services reflection v1alpha lists (this grpc-go has no v1 client). On a failed
// call: exits 1 with the call and the status on stderr. Built by
// tests/tests/standard_grpc_clients.rs with GO111MODULE=off against /usr/share/gocode.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"os"
	"time"

	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	reflectionpb "google.golang.org/grpc/reflection/grpc_reflection_v1alpha"
)

func fail(step string, err error) {
	fmt.Fprintf(os.Stderr, "%s: %v\n", step, err)
	os.Exit(1)
}

func main() {
	dialer := flag.Bool("dialer", false, "dial the bare socket path through a Unix dialer")
	flag.Parse()
	target := flag.Arg(0)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	options := []grpc.DialOption{grpc.WithInsecure(), grpc.WithBlock()}
	if *dialer {
		options = append(options, grpc.WithContextDialer(func(ctx context.Context, path string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, "unix", path)
		}))
	}
	conn, err := grpc.DialContext(ctx, target, options...)
	if err != nil {
		fail("dial "+target, err)
	}
	defer conn.Close()

	health, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{})
	if err != nil {
		fail("health Check", err)
	}
	stream, err := reflectionpb.NewServerReflectionClient(conn).ServerReflectionInfo(ctx)
	if err != nil {
		fail("reflection v1alpha", err)
	}
	request := &reflectionpb.ServerReflectionRequest{
		MessageRequest: &reflectionpb.ServerReflectionRequest_ListServices{},
	}
	if err := stream.Send(request); err != nil {
		fail("reflection v1alpha send", err)
	}
	response, err := stream.Recv()
	if err != nil {
		fail("reflection v1alpha", err)
	}
	services := []string{}
	for _, service := range response.GetListServicesResponse().GetService() {
		services = append(services, service.GetName())
	}
	answer := map[string]interface{}{
		"target":  target,
		"health":  health.GetStatus().String(),
		"v1alpha": services,
	}
	if err := json.NewEncoder(os.Stdout).Encode(answer); err != nil {
		fail("output", err)
	}
}
