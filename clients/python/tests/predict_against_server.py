#!/usr/bin/env python3
"""Drives swiftvla_client.PolicyClient against a running `vla serve` policy server and prints
one JSON summary line (run by Tests/FleetTests/PolicyServerTests.swift, which starts the server
with a tiny arm7 policy and sends the observation in --observation, a JSON file).

    .venv/bin/python clients/python/tests/predict_against_server.py --port 50061 --observation obs.json
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import grpc  # noqa: E402
import numpy as np  # noqa: E402

from swiftvla_client import MsgpackPolicyClient, PolicyClient, PolicyRequestRefused, WebSocketPolicyClient  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--observation", required=True)
    parser.add_argument("--websocket-port", type=int, help="also ask ws://127.0.0.1:PORT/policy")
    args = parser.parse_args()
    with open(args.observation) as f:
        obs = json.load(f)
    size = obs["image_size"]
    cameras = {name: np.asarray(pixels, dtype=np.uint8).reshape(size, size, 3) for name, pixels in obs["cameras"].items()}
    with PolicyClient(f"127.0.0.1:{args.port}") as policy:
        info = policy.info()
        chunk = policy.predict(obs["embodiment"], obs["instruction"], cameras, obs["state"], seed=obs["seed"])
        # A state of the wrong width is refused; the server keeps serving.
        try:
            policy.predict(obs["embodiment"], obs["instruction"], cameras, obs["state"][:2], seed=1)
            refused = None
        except grpc.RpcError as error:
            refused = error.code().name
        again = policy.predict(obs["embodiment"], obs["instruction"], cameras, obs["state"], seed=obs["seed"])
        summary = {
            "embodiments": list(info.embodiments), "image_size": info.image_size, "horizon": info.horizon,
            "execute_steps": info.execute_steps, "chunk": chunk.tolist(), "shape": list(chunk.shape),
            "refused": refused, "repeatable": bool(np.array_equal(chunk, again)),
            "inference_ms": policy.last_inference_ms,
        }
    if args.websocket_port:
        # The same observation over the WebSocket JSON endpoint, with a refused one in between.
        with WebSocketPolicyClient(f"ws://127.0.0.1:{args.websocket_port}/policy") as ws:
            first = ws.predict(obs["embodiment"], obs["instruction"], cameras, obs["state"], seed=obs["seed"])
            try:
                ws.predict("arm9", obs["instruction"], cameras, obs["state"], seed=1)
                ws_refused = None
            except PolicyRequestRefused as error:
                ws_refused = error.code
            second = ws.predict(obs["embodiment"], obs["instruction"], cameras, obs["state"], seed=obs["seed"])
            summary["websocket"] = {"image_size": ws.info().image_size, "chunk": first.tolist(),
                                    "refused": ws_refused, "repeatable": bool(np.array_equal(first, second))}
        # And over the MessagePack endpoint (openpi's format): arrays in, arrays out.
        with MsgpackPolicyClient(f"ws://127.0.0.1:{args.websocket_port}/") as mp:
            request = {"embodiment": obs["embodiment"], "prompt": obs["instruction"], "images": cameras,
                       "state": np.asarray(obs["state"], dtype=np.float32), "seed": obs["seed"]}
            reply = mp.infer(request)
            try:
                mp.infer({**request, "state": np.zeros(2, dtype=np.float32)})
                mp_refused = None
            except PolicyRequestRefused as error:
                mp_refused = error.code
            again = mp.infer(request)
            summary["msgpack"] = {"image_size": mp.metadata()["image_size"], "chunk": reply["actions"].tolist(),
                                  "dtype": reply["actions"].dtype.str, "refused": mp_refused,
                                  "repeatable": bool(np.array_equal(reply["actions"], again["actions"]))}
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
