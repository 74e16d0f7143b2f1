"""One recorded robot episode, in the shape the learner ingests (see Episode.swift)."""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from . import fleet_pb2 as pb
from .embodiments import UNIFIED_DIMENSION, EmbodimentLayout

#: Who chose a step's action (the wire values of `StepSource`).
POLICY = pb.STEP_SOURCE_POLICY
OPERATOR = pb.STEP_SOURCE_OPERATOR
DEMO = pb.STEP_SOURCE_DEMO


def new_episode_id() -> str:
    """A fresh UUID, upper-case like Swift's `UUID().uuidString` (the learner's dedup key)."""
    return str(uuid.uuid4()).upper()


@dataclass
class Episode:
    """T steps of one embodiment on one task.

    Per step t: `frames[name][t]` is `[H, W, 3]` uint8 RGB of camera `name`, `states[t]` the
    native proprio state, `native_actions[t]` the command executed, `unified_actions[t]` the
    same command in the 64 unified slots, `sources[t]` POLICY or OPERATOR (an intervention),
    `timestamps[t]` seconds since the episode started. `step_policy_versions[t]`, when set, is
    the policy version that chose step t (e.g. a served policy that swapped versions mid-episode;
    0 reads as `policy_version`, the newest that acted); None: every step ran `policy_version`.
    """

    embodiment: str
    task: str
    instruction: str
    cameras: Dict[str, np.ndarray]      # name -> [T, H, W, 3] uint8
    states: np.ndarray                  # [T, state_dim] float32
    native_actions: np.ndarray          # [T, action_dim] float32
    unified_actions: np.ndarray         # [T, 64] float32
    rewards: np.ndarray                 # [T] float32
    dones: np.ndarray                   # [T] bool
    sources: np.ndarray                 # [T] int (StepSource wire values)
    timestamps: np.ndarray              # [T] float64
    success: bool
    policy_version: int = 0
    seed: Optional[int] = None
    id: str = field(default_factory=new_episode_id)
    step_policy_versions: Optional[np.ndarray] = None   # [T] int64

    @property
    def step_count(self) -> int:
        return int(self.states.shape[0])

    @property
    def operator_steps(self) -> int:
        """Steps where an operator acted (interventions)."""
        return int(np.count_nonzero(self.sources == OPERATOR))


class EpisodeRecorder:
    """Collects steps of one episode, checking shapes as they come (values are left to the
    learner, which refuses NaN/inf with INVALID_ARGUMENT).

    Record the observation *before* the action with the action taken from it, like the Swift
    actor: `add_step(state=obs_state, action=a, reward=r, done=d, frames=obs_frames)`.
    """

    def __init__(self, layout: EmbodimentLayout, task: str, instruction: str = "", *,
                 policy_version: int = 0, seed: Optional[int] = None, episode_id: Optional[str] = None):
        self.layout = layout
        self.task = task
        self.instruction = instruction
        self.policy_version = int(policy_version)
        self.seed = seed
        self.id = episode_id or new_episode_id()
        self._frames: Dict[str, List[np.ndarray]] = {}
        self._camera_shapes: Optional[Dict[str, tuple]] = None
        self._states: List[np.ndarray] = []
        self._native: List[np.ndarray] = []
        self._unified: List[np.ndarray] = []
        self._rewards: List[float] = []
        self._dones: List[bool] = []
        self._sources: List[int] = []
        self._timestamps: List[float] = []
        self._versions: List[int] = []
        self._started: Optional[float] = None

    @property
    def step_count(self) -> int:
        return len(self._states)

    @property
    def operator_steps(self) -> int:
        return sum(1 for s in self._sources if s == OPERATOR)

    def add_step(self, state: Sequence[float], action: Sequence[float], reward: float = 0.0, done: bool = False, *,
                 frames: Optional[Mapping[str, np.ndarray]] = None, operator: bool = False,
                 source: Optional[int] = None, timestamp: Optional[float] = None,
                 policy_version: Optional[int] = None) -> None:
        """Appends one step. `operator=True` marks an intervention (source OPERATOR);
        `source` overrides it (POLICY, OPERATOR or DEMO). `timestamp` defaults to the wall
        time since the first step. `policy_version`: the version that chose this step when it
        differs within the episode (default: the recorder's `policy_version`)."""
        if policy_version is not None and int(policy_version) < 0:
            raise ValueError(f"step {self.step_count}: negative policy version {policy_version}")
        state = np.asarray(state, dtype=np.float32).reshape(-1)
        if state.shape[0] != self.layout.state_dim:
            raise ValueError(f"{self.layout.name}: state has {state.shape[0]} values, expected {self.layout.state_dim}")
        native = np.asarray(action, dtype=np.float32).reshape(-1)
        unified = self.layout.unified_action(native)   # checks the width
        frames = dict(frames or {})
        shapes = {}
        for name, image in frames.items():
            image = np.asarray(image)
            if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3 or image.shape[0] == 0 or image.shape[1] == 0:
                raise ValueError(f"camera {name!r}: frames must be [H, W, 3] uint8, got {image.shape} {image.dtype}")
            frames[name] = image
            shapes[name] = image.shape
        if self._camera_shapes is None:
            self._camera_shapes = shapes
            self._frames = {name: [] for name in shapes}
        elif shapes != self._camera_shapes:
            raise ValueError(f"step {self.step_count}: cameras {shapes} differ from the first step's {self._camera_shapes}")
        now = time.monotonic()
        if self._started is None:
            self._started = now
        if source is None:
            source = OPERATOR if operator else POLICY
        for name, image in frames.items():
            self._frames[name].append(np.ascontiguousarray(image))
        self._states.append(state)
        self._native.append(native)
        self._unified.append(unified)
        self._rewards.append(float(reward))
        self._dones.append(bool(done))
        self._sources.append(int(source))
        self._timestamps.append(float(now - self._started) if timestamp is None else float(timestamp))
        self._versions.append(self.policy_version if policy_version is None else int(policy_version))

    def finish(self, success: bool) -> Episode:
        """The episode so far (at least one step)."""
        if not self._states:
            raise ValueError("an episode needs at least one step")
        return Episode(
            embodiment=self.layout.name, task=self.task, instruction=self.instruction,
            cameras={name: np.stack(images) for name, images in self._frames.items()},
            states=np.stack(self._states), native_actions=np.stack(self._native),
            unified_actions=np.stack(self._unified).reshape(-1, UNIFIED_DIMENSION),
            rewards=np.asarray(self._rewards, dtype=np.float32), dones=np.asarray(self._dones, dtype=bool),
            sources=np.asarray(self._sources, dtype=np.int32), timestamps=np.asarray(self._timestamps, dtype=np.float64),
            success=bool(success), policy_version=max([self.policy_version] + self._versions), seed=self.seed, id=self.id,
            step_policy_versions=(None if all(v == self.policy_version for v in self._versions)
                                  else np.asarray(self._versions, dtype=np.int64)))
