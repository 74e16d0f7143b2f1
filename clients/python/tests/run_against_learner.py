#!/usr/bin/env python3
"""Drives swiftvla_client against a running SwiftVLA learner and prints one JSON summary line
on stdout (diagnostics go to stderr). Run by Tests/FleetTests/PythonClientTests.swift, which
starts the learner (arm7, arm6 and bimanual on the task "reach", a published policy v1) and
checks the summary against what the learner stored and counted.

    .venv/bin/python clients/python/tests/run_against_learner.py --port 50051

What it does, in order:
  1. registers an arm7 robot and watches policies on a thread; waits for the first version
     (verified size and CRC-32) and acts with it (a = W s + b of the linear policy);
  2. runs three episodes of a toy arm7 env through `FleetEnv`, with operator takeovers flagged
     by `step(action, intervention=True)`; each is uploaded at its end;
  3. re-sends one acked episode (the learner answers duplicate and stores it once);
  4. uploads an episode while every call times out (it stays queued), then flushes it for real;
  5. one arm6 episode (explicit register) and one bimanual episode with no cameras (the client
     registers on first use);
  6. submits an arm7 episode with a NaN in its state: refused with INVALID_ARGUMENT, dropped;
  7. sends a heartbeat.
Along the way it checks locally how per-step policy versions are encoded (a served policy that
swapped v1 -> v2 mid-episode; an episode on one version sends none) and that a received version with one flipped bit is refused.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import threading
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import numpy as np  # noqa: E402

from swiftvla_client import (EMBODIMENTS, EpisodeRejected, FleetEnv, PolicyVersion, RobotClient,  # noqa: E402
                             WeightAssembler, WeightTransferError, layout_for)
from swiftvla_client import fleet_pb2 as pb  # noqa: E402
from swiftvla_client.episode_messages import encode  # noqa: E402


class ToyArmEnv:
    """A duck-typed gymnasium-style env with an embodiment's native widths: the first entries
    of the state move with the action; cameras are small deterministic RGB frames."""

    def __init__(self, embodiment: str, steps: int, cameras: dict):
        self.layout = layout_for(embodiment)
        self.steps = steps
        self.cameras = cameras
        self.t = 0
        self.state = np.zeros(self.layout.state_dim, dtype=np.float32)

    def reset(self, seed=None, options=None):
        rng = np.random.default_rng(seed)
        self.t = 0
        self.state = rng.uniform(-0.5, 0.5, self.layout.state_dim).astype(np.float32)
        return self._obs(), {"instruction": "reach the red block"}

    def step(self, action):
        a = np.asarray(action, dtype=np.float32).reshape(-1)
        n = min(len(a), len(self.state))
        self.state[:n] = np.clip(self.state[:n] + 0.05 * np.clip(a[:n], -1, 1), -2, 2)
        self.t += 1
        terminated = self.t >= self.steps
        reward = 1.0 if terminated else 0.0
        return self._obs(), reward, terminated, False, {"success": terminated}

    def expert_action(self):
        return np.linspace(-0.3, 0.3, self.layout.action_dim, dtype=np.float32) * (1 + 0.01 * self.t)

    def _obs(self):
        images = {}
        for k, (name, (h, w)) in enumerate(sorted(self.cameras.items())):
            idx = np.arange(h * w * 3, dtype=np.int64).reshape(h, w, 3)
            images[name] = ((idx * (k + 3) + self.t * 7) % 251).astype(np.uint8)
        return {"state": self.state.copy(), "images": images}


def corrupt_copy_is_refused(policy: PolicyVersion) -> bool:
    """Re-chunks the received version locally: intact it reassembles, with one flipped bit the
    CRC-32 check refuses it."""
    def updates(data: bytes):
        size = 100
        manifest = pb.PolicyManifest()
        manifest.CopyFrom(policy.manifest)
        manifest.chunk_count = (len(data) + size - 1) // size
        yield pb.PolicyUpdate(manifest=manifest)
        for i in range(manifest.chunk_count):
            yield pb.PolicyUpdate(chunk=pb.WeightChunk(version=policy.version, index=i, data=data[i * size:(i + 1) * size]))

    def assemble(data: bytes):
        assembler, done = WeightAssembler(), None
        for u in updates(data):
            done = assembler.consume(u) or done
        return done

    if assemble(policy.data).data != policy.data:
        return False
    damaged = bytearray(policy.data)
    damaged[len(damaged) // 2] ^= 0x10
    try:
        assemble(bytes(damaged))
    except WeightTransferError as e:
        return "checksum" in str(e)
    return False


def log(*args):
    print(*args, file=sys.stderr, flush=True)


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--token", default="")
    args = parser.parse_args()
    target = f"{args.host}:{args.port}"
    summary: dict = {"layouts": {name: {"state_dim": l.state_dim, "action_slots": list(l.action_slots)}
                                 for name, l in EMBODIMENTS.items()},
                     "episodes": []}

    def uploaded(episode, status, operator_steps):
        # operator_steps: counted from the intervention flags this script passed.
        assert operator_steps == episode.operator_steps, (operator_steps, episode.operator_steps)
        summary["episodes"].append({"id": episode.id, "embodiment": episode.embodiment, "steps": episode.step_count,
                                    "operator_steps": operator_steps, "policy_version": episode.policy_version,
                                    "cameras": len(episode.cameras), "status": status})

    arm7 = RobotClient(target, actor_id="py-arm7", embodiment="arm7", tasks=["reach"], token=args.token,
                       steps_per_chunk=8, retry_for=60)   # generous: the test suite loads both cores
    registration = arm7.register()
    log("registered:", registration)
    summary["registration"] = {"task": registration.task, "policy_version": registration.policy_version,
                               "max_steps_per_chunk": registration.max_steps_per_chunk}

    # 1. policy versions on a thread.
    versions: list = []
    arrived = threading.Event()

    def watch():
        try:
            for v in arm7.watch_policy():
                versions.append(v)
                arrived.set()
        except Exception as e:  # reported through the summary
            log("watch ended:", repr(e))
            arrived.set()

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    if not arrived.wait(60) or not versions:
        raise RuntimeError("no policy version arrived within 60 s")
    policy: PolicyVersion = versions[0]
    m = policy.manifest
    tensors = policy.tensors()
    W, b = tensors["linear.weight"].astype(np.float64), tensors["linear.bias"].astype(np.float64)
    probe = np.linspace(-1, 1, W.shape[1])
    summary["policy"] = {
        "version": policy.version, "total_bytes": len(policy.data), "manifest_bytes": int(m.total_bytes),
        "crc32": int(m.crc32), "crc_ok": (zlib.crc32(policy.data) & 0xFFFFFFFF) == m.crc32,
        "chunks": int(m.chunk_count), "model": m.model,
        "tensors": {name: list(t.shape) for name, t in sorted(tensors.items())},
        "probe_action": (W @ probe + b).tolist()}
    arm7.policy_version = policy.version
    summary["corrupt_refused"] = corrupt_copy_is_refused(policy)

    def act(obs):
        return (W @ obs["state"].astype(np.float64) + b).astype(np.float32)

    # 2. three arm7 episodes through the gym wrapper, with operator takeovers.
    plans = [(20, lambda t: (t // 4) % 3 == 1), (37, lambda t: 10 <= t < 25), (9, lambda t: False)]
    toy = ToyArmEnv("arm7", steps=1, cameras={"scene": (6, 8), "a_wrist": (4, 4)})
    env = FleetEnv(toy, arm7)
    finished = []
    for k, (steps, takeover) in enumerate(plans):
        toy.steps = steps
        obs, info = env.reset(seed=k)
        operator_steps = 0
        for t in range(steps):
            operator = takeover(t)
            operator_steps += operator
            action = toy.expert_action() if operator else act(obs)
            obs, reward, terminated, truncated, info = env.step(action, intervention=operator)
            if terminated or truncated:
                break
        fleet = info["fleet"]
        log(f"arm7 episode {k}:", fleet)
        finished.append(env.last_episode)
        uploaded(env.last_episode, fleet["status"], operator_steps)
    summary["forwarded_attribute"] = env.steps == toy.steps   # FleetEnv forwards env attributes

    # 3. a deliberate re-send of an acked episode.
    again = arm7.upload_episode(finished[1])
    summary["resend"] = {"id": finished[1].id, "status": again.status}
    log("re-sent:", summary["resend"])

    # 4. every upload call times out: the episode stays queued; then it goes through.
    recorder = arm7.recorder("reach the red block", seed=99)
    toy.steps = 5
    obs, _ = toy.reset(seed=99)
    flags = [False, True, True, False, False]
    for t, operator in enumerate(flags):
        action = toy.expert_action() if operator else act(obs)
        next_obs, reward, terminated, _, _ = toy.step(action)
        recorder.add_step(obs["state"], action, reward, terminated, frames=obs["images"], operator=operator)
        obs = next_obs
    slow = recorder.finish(success=True)
    retries_before = arm7.stats.retries
    arm7.upload_timeout = 1e-6
    first = arm7.submit(slow, retry_for=0.3)
    queued = len(arm7.pending)
    arm7.upload_timeout = 30.0
    final = arm7.flush()
    summary["transient"] = {"id": slow.id, "first_status": first[-1].status, "queued": queued,
                            "retries": arm7.stats.retries - retries_before,
                            "final_status": final[-1].status if final else "none"}
    log("timed-out upload:", summary["transient"])
    uploaded(slow, final[-1].status if final else "none", sum(flags))

    # 5. the other embodiments: arm6 (explicit register), bimanual (registers on first use, no cameras).
    arm6 = RobotClient(target, actor_id="py-arm6", embodiment="arm6", tasks=["reach"], token=args.token)
    arm6.register()
    toy6 = ToyArmEnv("arm6", steps=12, cameras={"scene": (5, 7)})
    obs, _ = toy6.reset(seed=6)
    rec6 = arm6.recorder("reach the blue block", seed=6)
    ops6 = 0
    for t in range(12):
        operator = t in (3, 4, 5)
        ops6 += operator
        action = toy6.expert_action() if operator else np.full(7, 0.1, dtype=np.float32)
        next_obs, reward, terminated, _, _ = toy6.step(action)
        rec6.add_step(obs["state"], action, reward, terminated, frames=obs["images"], operator=operator)
        obs = next_obs
    ep6 = rec6.finish(success=False)
    uploaded(ep6, arm6.submit(ep6)[-1].status, ops6)

    bimanual = RobotClient(target, actor_id="py-bimanual", embodiment="bimanual", tasks=["reach"], token=args.token)
    recb = bimanual.recorder("reach the green block")
    opsb = 0
    for t in range(6):
        operator = t >= 4
        opsb += operator
        recb.add_step(np.full(17, 0.01 * t, dtype=np.float32), np.linspace(-1, 1, 17, dtype=np.float32), 0.0, t == 5,
                      operator=operator)
    epb = recb.finish(success=False)
    uploaded(epb, bimanual.submit(epb)[-1].status, opsb)
    summary["lazy_registration"] = bimanual.stats.registrations

    # 6. a malformed episode: NaN in a state.
    bad = arm7.recorder("reach the red block")
    obs, _ = toy.reset(seed=7)
    for t in range(4):
        state = obs["state"].copy()
        if t == 2:
            state[3] = np.nan
        bad.add_step(state, act(obs), 0.0, t == 3, frames=obs["images"])
    bad_episode = bad.finish(success=False)
    outcome = arm7.submit(bad_episode)[-1]
    error = outcome.error
    summary["rejected"] = {"id": bad_episode.id, "status": outcome.status,
                           "code": error.code.name if isinstance(error, EpisodeRejected) else None,
                           "reason": error.reason if isinstance(error, EpisodeRejected) else None}
    log("malformed:", summary["rejected"])

    # Per-step versions (encoded locally, not uploaded): recorded at version 1, the last two
    # steps chosen by v2 (a served policy swapped mid-episode).
    swapped = arm7.recorder("reach the red block", seed=8)
    steady = arm7.recorder("reach the red block", seed=8)
    state, action = np.zeros(toy.layout.state_dim, dtype=np.float32), np.zeros(toy.layout.action_dim, dtype=np.float32)
    for t in range(4):
        swapped.add_step(state, action, policy_version=1 if t < 2 else 2)
        steady.add_step(state, action, policy_version=1)

    def wire(episode):
        messages = encode(episode, "py-arm7")
        return {"header": messages[0].header.policy_version,
                "steps": [s.policy_version for m in messages if m.HasField("chunk") for s in m.chunk.steps]}

    summary["step_versions"] = {"swapped": wire(swapped.finish(success=True)), "steady": wire(steady.finish(success=True))}

    # 7. heartbeat with this robot's counters.
    beat = arm7.heartbeat()
    summary["heartbeat"] = {"latest_policy_version": beat.latest_policy_version, "task": beat.task}
    summary["stats"] = vars(arm7.stats)
    summary["pending"] = len(arm7.pending) + len(arm6.pending) + len(bimanual.pending)
    summary["versions_received"] = [v.version for v in versions]

    for c in (arm7, arm6, bimanual):
        c.close()
    watcher.join(5)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
