"""What a Python user of plain grpcio sees of tufkeyd, with every channel option at
its default: health, and the services server reflection lists in both versions.

    grpc_probe.py --unix PATH [--authority AUTHORITY]
    grpc_probe.py --tls HOST:PORT --ca CA.crt --cert CLIENT.crt --key CLIENT.key

`--authority` replaces the one grpcio sends (the percent-encoded socket path) with
what other clients send, e.g. the raw path as grpc-java does. Prints one JSON object: {"target", "health", "v1alpha", "v1"}, the last two being the
service names each reflection version lists. On a failed call: exits 1 with the
call, the gRPC status code and its details on stderr.

`v1alpha` is asked through grpcio-reflection's own client
(ProtoReflectionDescriptorDatabase), as a grpcio user would. grpcio-reflection ships
no `v1` stubs; the `v1` messages are the `v1alpha` ones under another package name
(same fields, same numbers), so `v1` is called by its full method name with the
`v1alpha` message classes.
"""

import argparse
import json
import sys

import grpc
from grpc_health.v1 import health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection_pb2
from grpc_reflection.v1alpha.proto_reflection_descriptor_database import (
    ProtoReflectionDescriptorDatabase,
)

TIMEOUT = 10
V1_METHOD = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo"


def channel(args):
    if args.unix:
        options = [("grpc.default_authority", args.authority)] if args.authority else []
        return "unix://" + args.unix, grpc.insecure_channel("unix://" + args.unix, options)
    with open(args.ca, "rb") as ca, open(args.key, "rb") as key, open(args.cert, "rb") as cert:
        credentials = grpc.ssl_channel_credentials(
            root_certificates=ca.read(), private_key=key.read(), certificate_chain=cert.read()
        )
    return args.tls, grpc.secure_channel(args.tls, credentials)


def services_v1(chan):
    call = chan.stream_stream(
        V1_METHOD,
        request_serializer=reflection_pb2.ServerReflectionRequest.SerializeToString,
        response_deserializer=reflection_pb2.ServerReflectionResponse.FromString,
    )
    request = reflection_pb2.ServerReflectionRequest(list_services="")
    responses = list(call(iter([request]), timeout=TIMEOUT))
    if len(responses) != 1:
        raise RuntimeError(f"v1 reflection answered {len(responses)} responses to one request")
    response = responses[0]
    if response.HasField("error_response"):
        error = response.error_response
        raise RuntimeError(f"v1 reflection error {error.error_code}: {error.error_message}")
    return sorted(service.name for service in response.list_services_response.service)


def main():
    parser = argparse.ArgumentParser()
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--unix", help="the daemon's socket path")
    where.add_argument("--tls", help="HOST:PORT of the daemon's mutual-TLS listener")
    parser.add_argument("--authority", help="with --unix: the :authority to send")
    parser.add_argument("--ca")
    parser.add_argument("--cert")
    parser.add_argument("--key")
    args = parser.parse_args()
    if args.tls and not (args.ca and args.cert and args.key):
        parser.error("--tls needs --ca, --cert and --key")

    target, chan = channel(args)
    step = "health Check"
    try:
        with chan:
            health = health_pb2_grpc.HealthStub(chan).Check(
                health_pb2.HealthCheckRequest(), timeout=TIMEOUT
            )
            step = "reflection v1alpha (grpcio-reflection's client)"
            v1alpha = sorted(ProtoReflectionDescriptorDatabase(chan).get_services())
            step = "reflection v1 " + V1_METHOD
            v1 = services_v1(chan)
    except grpc.RpcError as error:
        print(f"{target}: {step}: {error.code()}: {error.details()}", file=sys.stderr)
        sys.exit(1)
    print(
        json.dumps(
            {
                "target": target,
                "health": health_pb2.HealthCheckResponse.ServingStatus.Name(health.status),
                "v1alpha": v1alpha,
                "v1": v1,
            }
        )
    )


if __name__ == "__main__":
    main()
