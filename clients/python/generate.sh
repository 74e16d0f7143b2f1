#!/usr/bin/env bash
# Regenerates swiftvla_client/fleet_pb2.py and fleet_pb2_grpc.py from the fleet .proto.
# Run by hand after editing Protos/swiftvla/fleet/v1/fleet.proto; the output is committed
# (never generated at install or test time), like the Swift code in Sources/Fleet/Generated.
#
# Uses $GEN_PYTHON if it already has grpc_tools, else a throwaway venv with the pinned
# grpcio-tools. Keep GRPCIO_TOOLS_VERSION in step with the grpcio/protobuf floors in
# pyproject.toml: the generated modules refuse to import under an older runtime.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
ROOT="$(cd "$HERE/../.." && pwd)"
GRPCIO_TOOLS_VERSION=1.85.1

PY="${GEN_PYTHON:-}"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
if [ -z "$PY" ] || ! "$PY" -c 'import grpc_tools' 2>/dev/null; then
  python3 -m venv "$WORK/venv"
  "$WORK/venv/bin/python" -m pip install -q --disable-pip-version-check "grpcio-tools==$GRPCIO_TOOLS_VERSION"
  PY="$WORK/venv/bin/python"
fi

# -I Protos keeps the descriptor's file name "swiftvla/fleet/v1/fleet.proto", the same the
# Swift side registers; the output lands in $WORK/out/swiftvla/fleet/v1/.
mkdir -p "$WORK/out"
"$PY" -m grpc_tools.protoc -I "$ROOT/Protos" \
  --python_out="$WORK/out" --grpc_python_out="$WORK/out" \
  "$ROOT/Protos/swiftvla/fleet/v1/fleet.proto"

GEN="$WORK/out/swiftvla/fleet/v1"
# The service module imports its messages by the proto's package path; inside this package
# they sit next to it.
sed -i 's/^from swiftvla\.fleet\.v1 import fleet_pb2 as /from . import fleet_pb2 as /' "$GEN/fleet_pb2_grpc.py"
grep -q '^from \. import fleet_pb2 as ' "$GEN/fleet_pb2_grpc.py" || { echo "generate.sh: import fix did not apply" >&2; exit 1; }
cp "$GEN/fleet_pb2.py" "$GEN/fleet_pb2_grpc.py" "$HERE/swiftvla_client/"
echo "generate.sh: wrote swiftvla_client/fleet_pb2.py and fleet_pb2_grpc.py (grpcio-tools $("$PY" -c 'import importlib.metadata as m; print(m.version("grpcio-tools"))'))"
