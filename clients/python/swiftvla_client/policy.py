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
        return np.asarray(r.actions, dtype=np.float32).reshape(r.horizon, r.action_dim)

    def close(self) -> None:
        self._socket.close()

    def __enter__(self) -> "WebSocketPolicyClient":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
