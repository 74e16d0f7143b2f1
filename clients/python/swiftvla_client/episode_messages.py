"""Episode -> the messages of one UploadEpisode call: header, step chunks, end.

Mirrors Sources/Fleet/EpisodeMessages.swift: cameras in sorted name order, contiguous
chunks of at most `steps_per_chunk` steps, an end carrying the step count.
"""

from __future__ import annotations

from typing import List, Optional

from . import fleet_pb2 as pb
from .episode import Episode


def approximate_bytes(request: pb.UploadEpisodeRequest) -> int:
    """The learner's cheap size estimate of one message (EpisodeMessages.approximateBytes)."""
    kind = request.WhichOneof("kind")
    if kind == "header":
        h = request.header
        return (64 + len(h.episode_id.encode()) + len(h.actor_id.encode()) + len(h.embodiment.encode())
                + len(h.task.encode()) + len(h.instruction.encode())
                + sum(16 + len(c.name.encode()) for c in h.cameras))
    if kind == "chunk":
        return 8 + sum(_step_bytes(s) for s in request.chunk.steps)
    if kind == "end":
        return 8
    return 0


def _step_bytes(s: pb.Step) -> int:
    return (32 + sum(4 + len(f) for f in s.frames)
            + 4 * (len(s.state) + len(s.native_action) + len(s.unified_action)))


def encode(episode: Episode, actor_id: str, steps_per_chunk: int = 16,
           max_message_bytes: Optional[int] = None) -> List[pb.UploadEpisodeRequest]:
    """The upload stream of `episode`. With `max_message_bytes` (from the registration
    response) a chunk is also closed early so its estimated size stays under the learner's
    limit; a single step above the limit still goes alone (and is refused as too large)."""
    names = sorted(episode.cameras)
    t = episode.step_count
    header = pb.EpisodeHeader(
        episode_id=episode.id, actor_id=actor_id, embodiment=episode.embodiment, task=episode.task,
        instruction=episode.instruction, policy_version=int(episode.policy_version),
        cameras=[pb.CameraSpec(name=n, height=int(episode.cameras[n].shape[1]), width=int(episode.cameras[n].shape[2]))
                 for n in names],
        state_dim=int(episode.states.shape[1]), action_dim=int(episode.native_actions.shape[1]))
    if episode.seed is not None:
        header.seed_known = True
        header.seed = int(episode.seed)
    messages = [pb.UploadEpisodeRequest(header=header)]
    per_chunk = max(1, int(steps_per_chunk))
    budget = None if max_message_bytes is None else int(max_message_bytes * 0.9)
    chunk: Optional[pb.StepChunk] = None
    size = 0
    for i in range(t):
        step = pb.Step(
            frames=[episode.cameras[n][i].tobytes() for n in names],
            state=episode.states[i].tolist(), native_action=episode.native_actions[i].tolist(),
            unified_action=episode.unified_actions[i].tolist(), reward=float(episode.rewards[i]),
            done=bool(episode.dones[i]), source=int(episode.sources[i]), timestamp=float(episode.timestamps[i]))
        if episode.step_policy_versions is not None:
            step.policy_version = int(episode.step_policy_versions[i])
        step_size = _step_bytes(step)
        if chunk is not None and (len(chunk.steps) >= per_chunk or (budget is not None and size + step_size > budget)):
            messages.append(pb.UploadEpisodeRequest(chunk=chunk))
            chunk = None
        if chunk is None:
            chunk = pb.StepChunk(first_step=i)
            size = 8
        chunk.steps.append(step)
        size += step_size
    if chunk is not None:
        messages.append(pb.UploadEpisodeRequest(chunk=chunk))
    messages.append(pb.UploadEpisodeRequest(end=pb.EpisodeEnd(success=bool(episode.success), step_count=t)))
    return messages
