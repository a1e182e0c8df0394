"""A pump client in Python: the cameras, a camera's newest poses and its sets, over gRPC.

Stubs, once, from the repository root (pip install grpcio grpcio-tools):

    python -m grpc_tools.protoc -I proto --python_out=gen --grpc_python_out=gen proto/pump/v1/*.proto

Then:

    PYTHONPATH=gen python examples/python/client.py [--addr 127.0.0.1:50051] [--token TOKEN] CAMERA

One JSON line per camera, then the camera's newest poses, then its sets (docs/API.md says what
each field means). A failed call is one line on stderr with its gRPC code, exit 1.
"""

import argparse
import json
import sys

import grpc

from pump.v1 import query_pb2, query_pb2_grpc


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("camera")
    parser.add_argument("--addr", default="127.0.0.1:50051", help="the gateway's gRPC address")
    parser.add_argument("--token", help="the gateway's token, when it has one")
    args = parser.parse_args()

    stub = query_pb2_grpc.PoseQueryStub(grpc.insecure_channel(args.addr))
    metadata = [("authorization", f"Bearer {args.token}")] if args.token else []
    try:
        cameras = stub.ListCameras(query_pb2.ListCamerasRequest(), metadata=metadata, timeout=10)
        for c in cameras.cameras:
            print(json.dumps({"type": "camera", "camera": c.camera, "pose_fps": c.pose_fps, "ended": c.ended}))
        poses = stub.GetLatestPoses(query_pb2.GetLatestPosesRequest(camera=args.camera), metadata=metadata, timeout=10)
        people = [{"score": p.score, "keypoints": [[k.x, k.y, k.confidence] for k in p.keypoints]} for p in poses.people]
        print(json.dumps({"type": "poses", "camera": poses.camera, "frame_id": poses.frame_id, "people": people}))
        sets = stub.ListSets(query_pb2.ListSetsRequest(camera=args.camera), metadata=metadata, timeout=10)
        for s in sets.sets:
            print(json.dumps({
                "type": "set", "set_id": s.set_id, "reps": s.reps, "exercise": s.exercise, "pending": s.pending,
                "start_unix_ns": s.start_unix_ns, "rep_depths_deg": list(s.rep_depths_deg),
                "rep_durations_s": list(s.rep_durations_s),
            }))
    except grpc.RpcError as e:
        print(f"pump client: {e.code().name}: {e.details()}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
