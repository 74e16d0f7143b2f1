"""`PolicyClient`: run a SwiftVLA policy remotely (`vla serve --checkpoint C`).

    policy = PolicyClient("127.0.0.1:50061")
    info = policy.info()                       # embodiments, image size, horizon, ...
    chunk = policy.predict("arm7", "reach the red block",
                           cameras={"scene": rgb, "a_wrist": wrist}, state=joints)
    for action in chunk[: info.execute_steps]:
        robot.step(action)                     # native actions, [horizon, action_dim]
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Mapping, Optional, Sequence, Tuple

import grpc
import numpy as np

from . import fleet_pb2 as pb
from . import fleet_pb2_grpc as pb_grpc


@dataclass(frozen=True)
class ServerInfo:
    model: str
    checkpoint_step: int
    embodiments: Tuple[str, ...]
    image_size: int             # cameras must be image_size x image_size RGB uint8
    horizon: int
    execute_steps: int
    requests: int
    rejected: int


def _predict_request(embodiment: str, instruction: str, cameras: Mapping[str, np.ndarray],
                     state: Sequence[float], seed: Optional[int]) -> pb.PredictChunkRequest:
    frames = []
    for name, image in sorted(cameras.items()):
        image = np.ascontiguousarray(image, dtype=np.uint8)
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"camera {name}: expected [H, W, 3] RGB, got shape {image.shape}")
        frames.append(pb.CameraFrame(name=name, height=image.shape[0], width=image.shape[1], rgb=image.tobytes()))
    request = pb.PredictChunkRequest(embodiment=embodiment, instruction=instruction, cameras=frames,
                                     state=[float(x) for x in state])
    if seed is not None:
        request.seed_known = True
        request.seed = int(seed)
    return request


def _server_info(r: pb.ServerInfo) -> ServerInfo:
    return ServerInfo(r.model, r.checkpoint_step, tuple(r.embodiments), r.image_size, r.horizon,
                      r.execute_steps, r.requests, r.rejected)


class PolicyClient:
    """Observation in, native action chunk out. Bad observations raise `grpc.RpcError` with
    INVALID_ARGUMENT and the server's reason; the server keeps serving."""

    def __init__(self, target: str, timeout: float = 30.0) -> None:
        self._channel = grpc.insecure_channel(target)
        self._stub = pb_grpc.PolicyServerStub(self._channel)
        self._timeout = timeout
        self.last_inference_ms: Optional[float] = None
        # The learner version whose weights answered the last request (0: the checkpoint's own).
        self.last_policy_version: Optional[int] = None

    def info(self) -> ServerInfo:
        return _server_info(self._stub.GetServerInfo(pb.ServerInfoRequest(), timeout=self._timeout))

    def predict(self, embodiment: str, instruction: str, cameras: Mapping[str, np.ndarray],
                state: Sequence[float], seed: Optional[int] = None) -> np.ndarray:
        """Native actions `[horizon, action_dim]` (float32). `cameras` maps names ("scene",
        "a_wrist", "l_wrist", "r_wrist") to `[S, S, 3]` uint8 images; `seed` fixes the
        sampler's noise (same seed and observation, same chunk)."""
        request = _predict_request(embodiment, instruction, cameras, state, seed)
        r = self._stub.PredictChunk(request, timeout=self._timeout)
        self.last_inference_ms = r.inference_ms
        self.last_policy_version = int(r.policy_version)
        return np.asarray(r.actions, dtype=np.float32).reshape(r.horizon, r.action_dim)

    def close(self) -> None:
        self._channel.close()

    def __enter__(self) -> "PolicyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class PolicyRequestRefused(Exception):
    """The WebSocket server refused a request (`code`, e.g. "invalid_argument", and its reason)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message


class WebSocketPolicyClient:
    """`PolicyClient` over `vla serve --websocket-port P` (ws://HOST:P/policy, proto3 JSON
    frames) for environments without gRPC; needs the `websockets` package. Same `info()` and
    `predict()`; a refused request raises `PolicyRequestRefused` and the connection stays open."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        from websockets.sync.client import connect  # optional dependency
        from google.protobuf import json_format

        self._json = json_format
        self._socket = connect(url, max_size=1 << 24, open_timeout=timeout)
        self._timeout = timeout
        self._info = _server_info(self._json.Parse(self._socket.recv(timeout=timeout), pb.ServerInfo()))
        self.last_inference_ms: Optional[float] = None
        self.last_policy_version: Optional[int] = None

    def info(self) -> ServerInfo:
        """What the server sent on connect."""
        return self._info

    def predict(self, embodiment: str, instruction: str, cameras: Mapping[str, np.ndarray],
                state: Sequence[float], seed: Optional[int] = None) -> np.ndarray:
        request = _predict_request(embodiment, instruction, cameras, state, seed)
        self._socket.send(self._json.MessageToJson(request, indent=None))
        reply = json.loads(self._socket.recv(timeout=self._timeout))
        if "error" in reply:
            raise PolicyRequestRefused(reply["error"]["code"], reply["error"]["message"])
        r = self._json.ParseDict(reply, pb.PredictChunkResponse())
        self.last_inference_ms = r.inference_ms
        self.last_policy_version = int(r.policy_version)
        return np.asarray(r.actions, dtype=np.float32).reshape(r.horizon, r.action_dim)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "WebSocketPolicyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _pack_numpy(obj):
    """msgpack `default` hook: NumPy arrays as openpi sends them (binary keys, raw bytes)."""
    if isinstance(obj, np.ndarray):
        if obj.dtype.kind in "OVc":
            raise TypeError(f"cannot send a {obj.dtype} array")
        array = np.ascontiguousarray(obj)
        return {b"__ndarray__": True, b"data": array.tobytes(), b"dtype": array.dtype.str, b"shape": list(array.shape)}
    if isinstance(obj, np.generic):
        return obj.item()
    raise TypeError(f"cannot pack {type(obj).__name__}")


def _unpack_numpy(obj):
    """msgpack `object_hook`: such maps back into NumPy arrays."""
    if b"__ndarray__" in obj:
        return np.frombuffer(obj[b"data"], dtype=np.dtype(obj[b"dtype"])).reshape(obj[b"shape"])
    return obj


class MsgpackPolicyClient:
    """The policy server over `vla serve --websocket-port P` at ws://HOST:P/ in MessagePack
    binary frames, openpi's wire format (needs `websockets` and `msgpack`). `metadata()` is what
    the server sent on connect; `infer(obs)` sends an observation dict — `embodiment`, `prompt`,
    `state`, `images` (camera name → uint8 [H, W, 3]), optional `seed` — and returns the reply
    dict with `actions` (float32 [horizon, action_dim]) and `policy_version` (the learner
    version that answered, 0: the checkpoint's own). A refused request raises
    `PolicyRequestRefused` and the connection stays open."""

    def __init__(self, url: str, timeout: float = 30.0) -> None:
        import msgpack  # optional dependency
        from websockets.sync.client import connect

        self._msgpack = msgpack
        self._socket = connect(url, max_size=1 << 24, open_timeout=timeout)
        self._timeout = timeout
        self._metadata = self._unpack(self._socket.recv(timeout=timeout))

    def _unpack(self, frame: bytes):
        return self._msgpack.unpackb(frame, object_hook=_unpack_numpy)

    def metadata(self) -> dict:
        return self._metadata

    def infer(self, obs: Mapping) -> dict:
        self._socket.send(self._msgpack.packb(dict(obs), default=_pack_numpy))
        reply = self._unpack(self._socket.recv(timeout=self._timeout))
        if "error" in reply:
            raise PolicyRequestRefused(reply["error"]["code"], reply["error"]["message"])
        return reply

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "MsgpackPolicyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
