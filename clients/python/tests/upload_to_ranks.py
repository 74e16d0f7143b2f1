#!/usr/bin/env python3
"""Registers robots with a data-parallel learner's rank 0 and uploads one toy arm7 episode per
robot; prints one JSON line: the ingest endpoint each registration named ("" = rank 0 itself)
and each upload's status. Run by Tests/FleetTests/DataParallelLearnerTests.swift.

    .venv/bin/python clients/python/tests/upload_to_ranks.py --port 50051 --robots 2
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from run_against_learner import ToyArmEnv  # noqa: E402
from swiftvla_client import FleetEnv, RobotClient  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--robots", type=int, default=2)
    parser.add_argument("--steps", type=int, default=12)
    args = parser.parse_args()
    endpoints, statuses = [], []
    for i in range(args.robots):
        with RobotClient(f"127.0.0.1:{args.port}", actor_id=f"py-robot-{i}", embodiment="arm7", tasks=["reach"]) as client:
            endpoints.append(client.register(retry_for=30).ingest_endpoint)
            toy = ToyArmEnv("arm7", steps=args.steps, cameras={"scene": (16, 16)})
            env = FleetEnv(toy, client)
            env.reset(seed=i)
            info = {}
            for _ in range(args.steps):
                _, _, terminated, truncated, info = env.step(toy.expert_action(), intervention=True)
                if terminated or truncated:
                    break
            statuses.append(info["fleet"]["status"])
    print(json.dumps({"endpoints": endpoints, "statuses": statuses}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
