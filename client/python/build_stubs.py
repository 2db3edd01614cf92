#!/usr/bin/python3
"""Generates the gRPC/protobuf stubs of the ffibroker Python package.

Used by both builds: CMake (a custom command, into the build tree) and
setup.py (`pip install ./client/python`, into the wheel). It runs the
*system* protoc (protobuf-compiler, 3.21 on bookworm) with
/usr/bin/grpc_python_plugin (protobuf-compiler-grpc), never the protoc that
Debian's python3-grpc-tools bundles: that one is protoc 3.5.1, which rejects
broker.proto's `optional int32 errno_value` ("Explicit 'optional' labels are
disallowed in the Proto3 syntax").

    build_stubs.py --proto-dir=proto --out=build/client/python

writes OUT/ffibroker/v1/{types,broker,policy,confinement}_pb2.py,
OUT/ffibroker/v1/broker_pb2_grpc.py and OUT/ffibroker/_rpc/{status,
error_details,health}_pb2.py (google.rpc and grpc.health.v1, kept inside the
package so they shadow nothing).
"""
import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile

PUBLIC = ["ffibroker/v1/types.proto", "ffibroker/v1/policy.proto",
          "ffibroker/v1/confinement.proto", "ffibroker/v1/calls.proto",
          "ffibroker/v1/broker.proto"]
PRIVATE = ["google/rpc/status.proto", "google/rpc/error_details.proto",
           "grpc/health/v1/health.proto"]
# protoc learned proto3 `optional` in 3.12 (and needs no flag from 3.15).
MIN_PROTOC = (3, 15)


def protoc_version(protoc):
    out = subprocess.run([protoc, "--version"], check=True, capture_output=True,
                         text=True).stdout
    match = re.search(r"(\d+)\.(\d+)", out)
    if not match:
        sys.exit(f"build_stubs: cannot read the version of {protoc}: {out!r}")
    return tuple(int(x) for x in match.groups())


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--proto-dir", required=True)
    parser.add_argument("--out", required=True, help="directory holding ffibroker/")
    parser.add_argument("--protoc", default=shutil.which("protoc") or "/usr/bin/protoc")
    parser.add_argument("--plugin", default="/usr/bin/grpc_python_plugin")
    args = parser.parse_args()

    version = protoc_version(args.protoc)
    if version < MIN_PROTOC:
        sys.exit(f"build_stubs: {args.protoc} is protoc {version[0]}.{version[1]}, older than "
                 f"{MIN_PROTOC[0]}.{MIN_PROTOC[1]}: it cannot read broker.proto. Use Debian's "
                 "protobuf-compiler (/usr/bin/protoc), not python3-grpc-tools' bundled 3.5.1.")
    if not os.access(args.plugin, os.X_OK):
        sys.exit(f"build_stubs: {args.plugin} is missing: apt-get install protobuf-compiler-grpc")

    package = os.path.join(args.out, "ffibroker")
    os.makedirs(os.path.join(package, "v1"), exist_ok=True)
    os.makedirs(os.path.join(package, "_rpc"), exist_ok=True)
    subprocess.run([args.protoc, f"--proto_path={args.proto_dir}", f"--python_out={args.out}",
                    f"--grpc_python_out={args.out}",
                    f"--plugin=protoc-gen-grpc_python={args.plugin}"] +
                   [os.path.join(args.proto_dir, p) for p in PUBLIC], check=True)
    # broker_pb2_grpc only: the other files declare no services.
    for proto in PUBLIC[:-1]:
        stem = os.path.splitext(os.path.basename(proto))[0]
        os.remove(os.path.join(package, "v1", f"{stem}_pb2_grpc.py"))
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([args.protoc, f"--proto_path={args.proto_dir}", f"--python_out={tmp}"] +
                       [os.path.join(args.proto_dir, p) for p in PRIVATE], check=True)
        for proto in PRIVATE:
            generated = os.path.splitext(proto)[0] + "_pb2.py"
            shutil.move(os.path.join(tmp, generated),
                        os.path.join(package, "_rpc", os.path.basename(generated)))
    for sub in ("v1", "_rpc"):
        init = os.path.join(package, sub, "__init__.py")
        if not os.path.exists(init):
            open(init, "w").close()


if __name__ == "__main__":
    main()
