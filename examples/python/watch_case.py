"""Wait for the final decision on one case, the way an onboarding screen would.

Generate the stubs once (from the repository root):
    python -m grpc_tools.protoc -I proto --python_out=examples/python \
        --grpc_python_out=examples/python proto/verdict/v1/case_service.proto
Then:
    python examples/python/watch_case.py <scanRef> [grpc address]
"""

import sys

import grpc

from verdict.v1 import case_service_pb2 as pb
from verdict.v1 import case_service_pb2_grpc as rpc


def main() -> None:
    scan_ref = sys.argv[1]
    address = sys.argv[2] if len(sys.argv) > 2 else "127.0.0.1:50051"
    with grpc.insecure_channel(address) as channel:
        cases = rpc.CaseServiceStub(channel)

        # A point read: NOT_FOUND until the first webhook for this case arrived.
        try:
            case = cases.GetCase(pb.GetCaseRequest(scan_ref=scan_ref)).case
            print(f"now: revision {case.revision}, {pb.Decision.Name(case.decision)}")
        except grpc.RpcError as e:
            if e.code() != grpc.StatusCode.NOT_FOUND:
                raise
            print("no webhook yet; waiting")

        # The stream: current snapshot, then every newer revision, ending after the final one.
        # On UNAVAILABLE (a replica shutting down) reconnect with from_revision = last seen.
        last = 0
        while True:
            try:
                request = pb.WatchCaseRequest(scan_ref=scan_ref, from_revision=last, until_final=True)
                for message in cases.WatchCase(request):
                    if message.WhichOneof("event") != "case":
                        continue  # heartbeat
                    last = message.case.revision
                    print(f"revision {last}: {pb.Decision.Name(message.case.decision)}"
                          f" final={message.case.final}")
                return
            except grpc.RpcError as e:
                if e.code() != grpc.StatusCode.UNAVAILABLE:
                    raise
                print("server went away; resuming")


if __name__ == "__main__":
    main()
