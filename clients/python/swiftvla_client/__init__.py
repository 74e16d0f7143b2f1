"""Python robot client for the SwiftVLA fleet learner (SOP's actor-learner loop over gRPC).

`RobotClient` registers a robot, streams episodes with intervention flags to the learner and
receives new policy versions; `FleetEnv` wraps any gymnasium-style env and uploads each episode
when it ends; `PolicyClient` runs a served policy remotely (`vla serve`). The gRPC modules `fleet_pb2` / `fleet_pb2_grpc` are generated from
Protos/swiftvla/fleet/v1/fleet.proto by clients/python/generate.sh.
"""

from .client import ClientStats, HeartbeatResult, Registration, RobotClient, UploadResult
from .embodiments import EMBODIMENTS, UNIFIED_DIMENSION, EmbodimentLayout, layout_for
from .episode import DEMO, OPERATOR, POLICY, Episode, EpisodeRecorder, new_episode_id
from .errors import EpisodeRejected, FleetError, LearnerUnavailable, RegistrationRefused, WeightTransferError
from .gym import FleetEnv
from .policy import MsgpackPolicyClient, PolicyClient, PolicyRequestRefused, ServerInfo, WebSocketPolicyClient
from .weights import PolicyVersion, WeightAssembler, apply_delta, read_safetensors

__all__ = [
    "RobotClient", "Registration", "UploadResult", "ClientStats", "HeartbeatResult",
    "EMBODIMENTS", "UNIFIED_DIMENSION", "EmbodimentLayout", "layout_for",
    "Episode", "EpisodeRecorder", "POLICY", "OPERATOR", "DEMO", "new_episode_id",
    "FleetError", "EpisodeRejected", "LearnerUnavailable", "RegistrationRefused", "WeightTransferError",
    "FleetEnv", "PolicyVersion", "WeightAssembler", "apply_delta", "read_safetensors",
    "PolicyClient", "PolicyRequestRefused", "ServerInfo", "WebSocketPolicyClient", "MsgpackPolicyClient",
]
__version__ = "0.1.0"
