"""`FleetEnv`: a gymnasium-style wrapper that records every episode of any env-like object and
uploads it to the learner when the episode ends. gymnasium itself is not needed: the wrapped
env only has to offer `reset()` and `step(action)` (gymnasium's 5-tuple or gym's 4-tuple).

    env = FleetEnv(MyRobotEnv(), client, instruction="reach the red block")
    obs, info = env.reset(seed=0)
    while True:
        takeover = operator.wants_control(obs)
        action = operator.action(obs) if takeover else policy(obs)
        obs, reward, terminated, truncated, info = env.step(action, intervention=takeover)
        if terminated or truncated:
            print(info["fleet"])   # upload outcome of the finished episode
            break

Observations: by default a dict with "state" (the native proprio vector) and optionally
"images" (camera name -> [H, W, 3] uint8), or a plain vector (the state, no cameras); pass
`state_fn` / `frames_fn` for anything else. Success: `info["success"]` or
`info["is_success"]` at the last step, or `success_fn(obs, reward, terminated, truncated, info)`.
"""

from __future__ import annotations

from typing import Any, Callable, Dict, Mapping, Optional, Tuple

import numpy as np

from .client import RobotClient, UploadResult
from .episode import Episode, EpisodeRecorder


def default_state(obs: Any) -> np.ndarray:
    if isinstance(obs, Mapping):
        if "state" not in obs:
            raise KeyError("observation dict has no 'state'; pass state_fn= to FleetEnv")
        return np.asarray(obs["state"], dtype=np.float32)
    return np.asarray(obs, dtype=np.float32)


def default_frames(obs: Any) -> Dict[str, np.ndarray]:
    if isinstance(obs, Mapping) and obs.get("images") is not None:
        return dict(obs["images"])
    return {}


def default_success(obs: Any, reward: float, terminated: bool, truncated: bool, info: Mapping) -> bool:
    return bool(info.get("success", info.get("is_success", False)))


class FleetEnv:
    """Wraps `env`; `reset()` / `step(action, intervention=False)` behave like gymnasium's and
    record the episode (state and frames of the observation the action was taken from, the
    action as the native command, reward, done, POLICY or OPERATOR source). At the episode's
    end it is submitted through `client` (queued until acked) and the outcome lands in
    `info["fleet"]`. Other attributes (`action_space`, ...) are forwarded to `env`."""

    def __init__(self, env: Any, client: RobotClient, *, instruction: Optional[str] = None, task: Optional[str] = None,
                 state_fn: Callable[[Any], Any] = default_state,
                 frames_fn: Callable[[Any], Mapping[str, np.ndarray]] = default_frames,
                 success_fn: Callable[..., bool] = default_success, upload: bool = True):
        self.env = env
        self.client = client
        self.instruction = instruction
        self.task = task
        self.state_fn = state_fn
        self.frames_fn = frames_fn
        self.success_fn = success_fn
        self.upload = upload
        self._recorder: Optional[EpisodeRecorder] = None
        self._obs: Any = None
        #: The last finished episode and its upload results (this one and any re-sent backlog).
        self.last_episode: Optional[Episode] = None
        self.last_upload: list = []
        #: Episodes abandoned by a reset() before they ended (not uploaded).
        self.discarded_episodes = 0

    def __getattr__(self, name: str) -> Any:
        # Only called for attributes FleetEnv lacks: action_space, observation_space, render, ...
        if name == "env":
            raise AttributeError(name)
        return getattr(self.env, name)

    def reset(self, *, seed: Optional[int] = None, options: Optional[dict] = None, **kwargs) -> Tuple[Any, dict]:
        """Starts an episode; always returns (obs, info)."""
        if self._recorder is not None and self._recorder.step_count > 0:
            self.discarded_episodes += 1
        call_kwargs = dict(kwargs)
        if seed is not None:
            call_kwargs["seed"] = seed
        if options is not None:
            call_kwargs["options"] = options
        try:
            result = self.env.reset(**call_kwargs)
        except TypeError:
            if not call_kwargs:
                raise
            result = self.env.reset()   # an old-style env without seed/options
        if isinstance(result, tuple) and len(result) == 2 and isinstance(result[1], Mapping):
            obs, info = result[0], dict(result[1])
        else:
            obs, info = result, {}
        instruction = self.instruction
        if instruction is None:
            instruction = str(info.get("instruction", getattr(self.env, "instruction", "")) or "")
        self._recorder = self.client.recorder(instruction, seed=seed, task=self.task)
        self._obs = obs
        return obs, info

    def step(self, action: Any, intervention: bool = False,
             policy_version: Optional[int] = None) -> Tuple[Any, float, bool, bool, dict]:
        """Executes `action` (the native command; an operator's when `intervention`).
        `policy_version`: the version that chose it, when versions change within an episode
        (a served policy following a learner); default the client's `policy_version`."""
        if self._recorder is None:
            raise RuntimeError("call reset() before step()")
        result = self.env.step(action)
        if len(result) == 5:
            obs, reward, terminated, truncated, info = result
        elif len(result) == 4:
            obs, reward, done, info = result
            truncated = bool(info.get("TimeLimit.truncated", False))
            terminated = bool(done) and not truncated
        else:
            raise ValueError(f"env.step returned {len(result)} values, expected 4 or 5")
        info = dict(info)
        terminated, truncated = bool(terminated), bool(truncated)
        done = terminated or truncated
        self._recorder.add_step(self.state_fn(self._obs), np.asarray(action, dtype=np.float32), float(reward), done,
                                frames=self.frames_fn(self._obs), operator=intervention, policy_version=policy_version)
        self._obs = obs
        if done:
            episode = self._recorder.finish(self.success_fn(obs, reward, terminated, truncated, info))
            self._recorder = None
            self.last_episode = episode
            info["fleet"] = self._finish(episode)
        return obs, reward, terminated, truncated, info

    def _finish(self, episode: Episode) -> Dict[str, Any]:
        summary: Dict[str, Any] = {"episode_id": episode.id, "steps": episode.step_count,
                                   "operator_steps": episode.operator_steps, "success": episode.success}
        if not self.upload:
            summary["status"] = "not_uploaded"
            return summary
        self.last_upload = self.client.submit(episode)
        mine: Optional[UploadResult] = next((r for r in self.last_upload if r.episode_id.upper() == episode.id.upper()), None)
        summary["status"] = mine.status if mine else "pending"
        if mine is not None and mine.error is not None:
            summary["error"] = str(mine.error)
        summary["pending"] = len(self.client.pending)
        return summary

    def close(self) -> None:
        close = getattr(self.env, "close", None)
        if close is not None:
            close()
