#!/usr/bin/env python3
"""SwiftVLA episodes <-> LeRobot v3.0 datasets (parquet + mp4 + meta JSON).

    lerobot_v3.py export SRC_DIR OUT_DIR
        SRC_DIR/manifest.json lists swiftvla-episode-v1 safetensors files (RobotData's own
        episode files); writes a LeRobot v3.0 dataset into OUT_DIR.
    lerobot_v3.py import LEROBOT_DIR OUT_DIR
        reads a LeRobot v3.x dataset; writes OUT_DIR/episodes/NNNNNN.safetensors (the same
        episode format) and OUT_DIR/manifest.json.

RobotData.LeRobotExchange runs this (`vla data export-lerobot` / `import-lerobot`). Needs
numpy, safetensors, pyarrow and av (scripts/bootstrap installs them). Prints one JSON summary
line on stdout; errors go to stderr with exit status 1.
"""

import json
import math
import sys
import time
import uuid
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from safetensors import safe_open
from safetensors.numpy import save_file

CODEBASE_VERSION = "v3.0"
EPISODE_FORMAT = "swiftvla-episode-v1"
MANIFEST_FORMAT = "swiftvla-lerobot-manifest-v1"
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
IMAGE_PREFIX = "observation.images."
UNIFIED_DIM = 64
# Foundation's Date counts seconds from 2001-01-01; Unix time from 1970-01-01.
REFERENCE_DATE_OFFSET = 978307200.0


class HelperError(Exception):
    pass


# ---------------------------------------------------------------- shared


def read_episode(path):
    """One RobotData episode file: (header dict, {tensor name: ndarray})."""
    with safe_open(str(path), framework="np") as f:
        metadata = f.metadata() or {}
        if "episode" not in metadata:
            raise HelperError(f"{path}: no 'episode' header (not a {EPISODE_FORMAT} file)")
        header = json.loads(metadata["episode"])
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    if header.get("format") != EPISODE_FORMAT:
        raise HelperError(f"{path}: format {header.get('format')!r}, expected {EPISODE_FORMAT}")
    return header, tensors


def fixed_list(values, width, dtype):
    """[rows, width] array -> an Arrow fixed-size list column (HF datasets' Sequence(length=width))."""
    flat = pa.array(np.ascontiguousarray(values, dtype=dtype).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, width)


def column_matrix(table, name, dtype):
    """A list column (fixed or variable size) or scalar column -> [rows, width] ndarray."""
    column = table.column(name).combine_chunks()
    rows = len(column)
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type) or pa.types.is_large_list(column.type):
        flat = np.asarray(column.flatten().to_numpy(zero_copy_only=False), dtype=dtype)
        return flat.reshape(rows, -1) if rows else flat.reshape(0, 0)
    return np.asarray(column.to_numpy(zero_copy_only=False), dtype=dtype).reshape(rows, 1)


def column_vector(table, name, dtype):
    return column_matrix(table, name, dtype).reshape(-1)


def feature_stats(values):
    """LeRobot's per-feature statistics over the first axis of a [N, ...] array."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    return {
        "min": values.min(axis=0).tolist(),
        "max": values.max(axis=0).tolist(),
        "mean": values.mean(axis=0).tolist(),
        "std": values.std(axis=0).tolist(),
        "count": [int(values.shape[0])],
    }


def image_stats(frames):
    """Per-channel stats of uint8 [N, H, W, 3] frames in [0, 1], shaped [3, 1, 1] as LeRobot keeps them."""
    x = np.asarray(frames, dtype=np.float64) / 255.0
    def per_channel(v):
        return [[[float(c)]] for c in v]
    return {
        "min": per_channel(x.min(axis=(0, 1, 2))),
        "max": per_channel(x.max(axis=(0, 1, 2))),
        "mean": per_channel(x.mean(axis=(0, 1, 2))),
        "std": per_channel(x.std(axis=(0, 1, 2))),
        "count": [int(x.shape[0])],
    }


def write_json(path, value):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=4, ensure_ascii=False) + "\n", encoding="utf-8")


# ---------------------------------------------------------------- export


class VideoWriter:
    """Frames of one camera, every episode appended, into one H.264 mp4 at a constant frame rate."""

    def __init__(self, path, width, height, fps, crf, pix_fmt):
        path.parent.mkdir(parents=True, exist_ok=True)
        self.container = av.open(str(path), mode="w")
        self.stream = self.container.add_stream("libx264", rate=fps)
        self.stream.width, self.stream.height = width, height
        self.stream.pix_fmt = pix_fmt
        self.stream.codec_context.time_base = Fraction(1, fps)
        # A keyframe every 2 frames, as LeRobot records: any frame decodes after one seek.
        self.stream.options = {"crf": str(crf), "g": "2", "preset": "medium"}
        self.count = 0

    def append(self, frames):
        for image in frames:
            frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")
            frame.pts = self.count
            frame.time_base = self.stream.codec_context.time_base
            for packet in self.stream.encode(frame):
                self.container.mux(packet)
            self.count += 1

    def close(self):
        for packet in self.stream.encode():
            self.container.mux(packet)
        self.container.close()


def infer_fps(timestamp_arrays):
    steps = np.concatenate([np.diff(t) for t in timestamp_arrays if len(t) > 1] or [np.array([], dtype=np.int64)])
    steps = steps[steps > 0]
    if len(steps) == 0:
        raise HelperError("cannot infer fps: no episode has two increasing timestamps (pass fps in the manifest)")
    return max(1, int(round(1e6 / float(np.median(steps)))))


def export_dataset(src_dir, out_dir):
    manifest_path = src_dir / "manifest.json"
    if not manifest_path.is_file():
        raise HelperError(f"{manifest_path} does not exist")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    if manifest.get("format") != MANIFEST_FORMAT:
        raise HelperError(f"{manifest_path}: format {manifest.get('format')!r}, expected {MANIFEST_FORMAT}")
    paths = [Path(p) if Path(p).is_absolute() else src_dir / p for p in manifest["episodes"]]
    if not paths:
        raise HelperError("the manifest lists no episodes")
    if (out_dir / "meta" / "info.json").exists():
        raise HelperError(f"{out_dir} already holds a dataset (meta/info.json); choose an empty directory")

    # Pass 1: headers and shapes only, so layouts are checked before anything is written.
    headers, layout = [], None
    timestamps = []
    for path in paths:
        header, tensors = read_episode(path)
        cams = {name: tuple(tensors[f"camera.{name}"].shape[1:3]) for name in header["cameras"]}
        this = (tensors["states"].shape[1], tensors["native_actions"].shape[1], cams)
        if layout is None:
            layout = this
        elif this != layout:
            raise HelperError(
                f"{path.name}: state/action widths and cameras {this} differ from the first episode's {layout}; "
                "a LeRobot dataset has one layout (export one embodiment at a time)")
        headers.append(header)
        timestamps.append(tensors["timestamps_us"].astype(np.int64))
    state_dim, action_dim, cameras = layout
    # yuv420p is what LeRobot writes and every player shows; yuv444p keeps full-resolution
    # colour (with crf 0 frames come back within rounding of the colour conversion).
    pix_fmt = manifest.get("pix_fmt", "yuv420p")
    if pix_fmt not in ("yuv420p", "yuv444p"):
        raise HelperError(f"pix_fmt {pix_fmt!r}: yuv420p or yuv444p")
    for name, (h, w) in cameras.items():
        if pix_fmt == "yuv420p" and (h % 2 or w % 2):
            raise HelperError(f"camera {name} is {h}x{w}; H.264 4:2:0 video needs even sides")
    fps = int(manifest.get("fps") or infer_fps(timestamps))
    crf = int(manifest.get("crf", 18))

    tasks = []
    for header in headers:
        if header["instruction"] not in tasks:
            tasks.append(header["instruction"])
    task_index = {t: i for i, t in enumerate(tasks)}

    camera_keys = {name: IMAGE_PREFIX + name for name in sorted(cameras)}
    writers = {
        name: VideoWriter(out_dir / VIDEO_PATH.format(video_key=key, chunk_index=0, file_index=0),
                          cameras[name][1], cameras[name][0], fps, crf, pix_fmt)
        for name, key in camera_keys.items()
    }

    columns = {k: [] for k in ("observation.state", "action", "timestamp", "frame_index", "episode_index", "index",
                               "task_index", "next.reward", "next.done", "swiftvla.unified_action", "swiftvla.source",
                               "swiftvla.intervention", "swiftvla.timestamp_us", "swiftvla.step_policy_version")}
    episode_rows = []
    image_samples = {name: [] for name in cameras}
    cursor = 0
    # Pass 2: one episode in memory at a time.
    for e, path in enumerate(paths):
        header, t = read_episode(path)
        n = t["states"].shape[0]
        sources = t["sources"].astype(np.uint8)
        versions = t["policy_versions"].astype(np.int64) if "policy_versions" in t else np.full(n, -1, np.int64)
        ts_us = t["timestamps_us"].astype(np.int64)
        columns["observation.state"].append(t["states"].astype(np.float32))
        columns["action"].append(t["native_actions"].astype(np.float32))
        columns["timestamp"].append((ts_us / 1e6).astype(np.float32))
        columns["frame_index"].append(np.arange(n, dtype=np.int64))
        columns["episode_index"].append(np.full(n, e, np.int64))
        columns["index"].append(np.arange(cursor, cursor + n, dtype=np.int64))
        columns["task_index"].append(np.full(n, task_index[header["instruction"]], np.int64))
        columns["next.reward"].append(t["rewards"].astype(np.float32))
        columns["next.done"].append(t["dones"].astype(bool))
        columns["swiftvla.unified_action"].append(t["unified_actions"].astype(np.float32))
        columns["swiftvla.source"].append(sources)
        columns["swiftvla.intervention"].append(sources == 1)
        columns["swiftvla.timestamp_us"].append(ts_us)
        columns["swiftvla.step_policy_version"].append(versions)
        row = {
            "episode_index": e, "tasks": [header["instruction"]], "length": n,
            "data/chunk_index": 0, "data/file_index": 0,
            "dataset_from_index": cursor, "dataset_to_index": cursor + n,
        }
        for name, key in camera_keys.items():
            frames = t[f"camera.{name}"]
            start = writers[name].count
            writers[name].append(frames)
            row[f"videos/{key}/chunk_index"] = 0
            row[f"videos/{key}/file_index"] = 0
            row[f"videos/{key}/from_timestamp"] = start / fps
            row[f"videos/{key}/to_timestamp"] = (start + n) / fps
            # Image stats from up to 32 evenly spaced frames per episode.
            image_samples[name].append(frames[np.unique(np.linspace(0, n - 1, min(n, 32)).round().astype(int))])
        for feature, values in (("observation.state", t["states"]), ("action", t["native_actions"])):
            for stat, value in feature_stats(values).items():
                row[f"stats/{feature}/{stat}"] = value
        row["meta/episodes/chunk_index"] = 0
        row["meta/episodes/file_index"] = 0
        row.update({
            "swiftvla.id": header["id"], "swiftvla.embodiment": header["embodiment"], "swiftvla.task": header["task"],
            "swiftvla.success": bool(header["success"]), "swiftvla.policy_version": int(header["policyVersion"]),
            "swiftvla.seed": header.get("seed"), "swiftvla.speed": header.get("speed"),
            "swiftvla.created_at": float(header["createdAt"]),
            "swiftvla.action_mask": t["action_mask"].astype(np.float32).tolist(),
        })
        episode_rows.append(row)
        cursor += n
    for writer in writers.values():
        writer.close()

    stacked = {k: np.concatenate(v) for k, v in columns.items()}
    widths = {"observation.state": state_dim, "action": action_dim, "swiftvla.unified_action": UNIFIED_DIM}
    data_table = pa.table({
        name: fixed_list(values, widths[name], np.float32) if name in widths else pa.array(values)
        for name, values in stacked.items()
    })
    data_file = out_dir / DATA_PATH.format(chunk_index=0, file_index=0)
    data_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(data_table, data_file)

    episodes_table = episodes_arrow(episode_rows)
    episodes_file = out_dir / EPISODES_PATH.format(chunk_index=0, file_index=0)
    episodes_file.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(episodes_table, episodes_file)

    write_tasks(out_dir / "meta" / "tasks.parquet", tasks)

    features = {}
    for name, key in camera_keys.items():
        h, w = cameras[name]
        features[key] = {
            "dtype": "video", "shape": [h, w, 3], "names": ["height", "width", "channels"],
            "info": {"video.height": h, "video.width": w, "video.codec": "h264", "video.pix_fmt": pix_fmt,
                     "video.is_depth_map": False, "video.fps": fps, "video.channels": 3, "has_audio": False},
        }
    state_names = manifest.get("state_names") or [f"state_{i}" for i in range(state_dim)]
    action_names = manifest.get("action_names") or [f"action_{i}" for i in range(action_dim)]
    if len(state_names) != state_dim or len(action_names) != action_dim:
        raise HelperError(f"names: {len(state_names)} state / {len(action_names)} action names for widths {state_dim} / {action_dim}")
    slot_names = manifest.get("unified_slot_names") or [f"slot_{i}" for i in range(UNIFIED_DIM)]
    features.update({
        "observation.state": {"dtype": "float32", "shape": [state_dim], "names": state_names},
        "action": {"dtype": "float32", "shape": [action_dim], "names": action_names},
        "next.reward": {"dtype": "float32", "shape": [1], "names": None},
        "next.done": {"dtype": "bool", "shape": [1], "names": None},
        "swiftvla.unified_action": {"dtype": "float32", "shape": [UNIFIED_DIM], "names": slot_names},
        "swiftvla.source": {"dtype": "uint8", "shape": [1], "names": None},
        "swiftvla.intervention": {"dtype": "bool", "shape": [1], "names": None},
        "swiftvla.timestamp_us": {"dtype": "int64", "shape": [1], "names": None},
        "swiftvla.step_policy_version": {"dtype": "int64", "shape": [1], "names": None},
        "timestamp": {"dtype": "float32", "shape": [1], "names": None},
        "frame_index": {"dtype": "int64", "shape": [1], "names": None},
        "episode_index": {"dtype": "int64", "shape": [1], "names": None},
        "index": {"dtype": "int64", "shape": [1], "names": None},
        "task_index": {"dtype": "int64", "shape": [1], "names": None},
    })
    embodiments = sorted({h["embodiment"] for h in headers})
    info = {
        "codebase_version": CODEBASE_VERSION,
        "robot_type": embodiments[0] if len(embodiments) == 1 else None,
        "total_episodes": len(paths),
        "total_frames": cursor,
        "total_tasks": len(tasks),
        "chunks_size": 1000,
        "data_files_size_in_mb": 100,
        "video_files_size_in_mb": 500,
        "fps": fps,
        "splits": {"train": f"0:{len(paths)}"},
        "data_path": DATA_PATH,
        "video_path": VIDEO_PATH if cameras else None,
        "features": features,
    }
    write_json(out_dir / "meta" / "info.json", info)

    stats = {name: feature_stats(values) for name, values in stacked.items()}
    for name, key in camera_keys.items():
        stats[key] = image_stats(np.concatenate(image_samples[name]))
    write_json(out_dir / "meta" / "stats.json", stats)

    return {"episodes": len(paths), "frames": cursor, "tasks": len(tasks), "fps": fps,
            "cameras": sorted(cameras), "pix_fmt": pix_fmt, "crf": crf, "out": str(out_dir)}


def episodes_arrow(rows):
    """Episode rows -> an Arrow table with explicit types (nullable seed/speed, list columns)."""
    def col(name):
        return [r[name] for r in rows]
    arrays = {}
    for name in rows[0]:
        values = col(name)
        if name == "tasks":
            arrays[name] = pa.array(values, type=pa.list_(pa.string()))
        elif name == "swiftvla.action_mask":
            arrays[name] = fixed_list(np.array(values), UNIFIED_DIM, np.float32)
        elif name == "swiftvla.seed":
            arrays[name] = pa.array(values, type=pa.uint64())
        elif name == "swiftvla.speed":
            arrays[name] = pa.array(values, type=pa.float32())
        elif name.startswith("stats/"):
            item = pa.int64() if name.endswith("/count") else pa.float64()
            arrays[name] = pa.array(values, type=pa.list_(item))
        elif name.endswith("_timestamp") or name == "swiftvla.created_at":
            arrays[name] = pa.array(values, type=pa.float64())
        elif name in ("swiftvla.id", "swiftvla.embodiment", "swiftvla.task"):
            arrays[name] = pa.array(values, type=pa.string())
        elif name == "swiftvla.success":
            arrays[name] = pa.array(values, type=pa.bool_())
        else:
            arrays[name] = pa.array(values, type=pa.int64())
    return pa.table(arrays)


def write_tasks(path, tasks):
    """meta/tasks.parquet as LeRobot writes it with pandas: the task string is the index, task_index a column.
    The pandas metadata lets pandas.read_parquet restore that index without pandas here."""
    table = pa.table({"task_index": pa.array(range(len(tasks)), type=pa.int64()),
                      "task": pa.array(tasks, type=pa.string())})
    pandas_meta = {
        "index_columns": ["task"],
        "column_indexes": [{"name": None, "field_name": None, "pandas_type": "unicode", "numpy_type": "object",
                            "metadata": {"encoding": "UTF-8"}}],
        "columns": [
            {"name": "task_index", "field_name": "task_index", "pandas_type": "int64", "numpy_type": "int64", "metadata": None},
            {"name": "task", "field_name": "task", "pandas_type": "unicode", "numpy_type": "object", "metadata": None},
        ],
        "creator": {"library": "pyarrow", "version": pa.__version__},
        "pandas_version": "2.2.3",
    }
    table = table.replace_schema_metadata({b"pandas": json.dumps(pandas_meta).encode()})
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path)


# ---------------------------------------------------------------- import


class VideoReader:
    """Sequential RGB frames of one mp4, by frame number (time × fps); reopens to go backwards."""

    def __init__(self, path, fps):
        self.path, self.fps = path, fps
        self._open()

    def _open(self):
        self.container = av.open(str(self.path))
        self.frames = self.container.decode(self.container.streams.video[0])
        self.next_index = 0  # frame number of the next decoded frame, counted from the first
        self.first_time = None

    def read(self, start, count):
        if start < self.next_index:
            self.container.close()
            self._open()
        out = []
        while len(out) < count:
            try:
                frame = next(self.frames)
            except StopIteration:
                raise HelperError(f"{self.path}: ends before frame {start + len(out)} ({self.next_index} frames)")
            index = int(round(frame.time * self.fps)) if frame.time is not None else self.next_index
            self.next_index = index + 1
            if index >= start:
                out.append(frame.to_ndarray(format="rgb24"))
        return np.stack(out)

    def close(self):
        self.container.close()


def storable_camera_name(name):
    cleaned = "".join(c if c.isascii() and (c.isalnum() or c in "_-.") else "_" for c in name)[:64]
    return cleaned or "camera"


def read_tasks(path):
    table = pq.read_table(path)
    index = column_vector(table, "task_index", np.int64)
    text_columns = [f.name for f in table.schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)]
    if not text_columns:
        raise HelperError(f"{path}: no task text column")
    name = "task" if "task" in text_columns else text_columns[0]
    return dict(zip(index.tolist(), table.column(name).to_pylist()))


def import_dataset(src_dir, out_dir):
    info_path = src_dir / "meta" / "info.json"
    if not info_path.is_file():
        raise HelperError(f"{src_dir} is not a LeRobot dataset (no meta/info.json)")
    info = json.loads(info_path.read_text(encoding="utf-8"))
    version = str(info.get("codebase_version", ""))
    if not version.startswith("v3."):
        raise HelperError(f"{src_dir}: codebase_version {version!r}; only LeRobot v3.x datasets are read")
    fps = info["fps"]
    features = info["features"]
    for key in ("observation.state", "action"):
        if key not in features:
            raise HelperError(f"{src_dir}: feature {key} is missing")
    unsupported = [k for k, f in features.items() if f.get("dtype") == "image"]
    if unsupported:
        raise HelperError(f"{src_dir}: image features {unsupported} (PNG in parquet) are not supported; only video")
    video_keys = [k for k, f in features.items() if f.get("dtype") == "video"]
    cameras = {key: storable_camera_name(key[len(IMAGE_PREFIX):] if key.startswith(IMAGE_PREFIX) else key)
               for key in video_keys}
    tasks = read_tasks(src_dir / "meta" / "tasks.parquet")
    episode_files = sorted((src_dir / "meta" / "episodes").glob("*/*.parquet"))
    if not episode_files:
        raise HelperError(f"{src_dir}: no meta/episodes/*/*.parquet")
    episodes = pa.concat_tables([pq.read_table(p) for p in episode_files], promote_options="default").to_pylist()
    episodes.sort(key=lambda r: r["episode_index"])

    (out_dir / "episodes").mkdir(parents=True, exist_ok=True)
    data_cache = {}
    readers = {}
    written = []
    frames_total = 0
    now = time.time() - REFERENCE_DATE_OFFSET
    for row in episodes:
        e = int(row["episode_index"])
        data_key = (int(row["data/chunk_index"]), int(row["data/file_index"]))
        if data_key not in data_cache:
            data_cache.clear()  # files are visited in order; keep one in memory
            table = pq.read_table(src_dir / info["data_path"].format(chunk_index=data_key[0], file_index=data_key[1]))
            data_cache[data_key] = (table, column_vector(table, "episode_index", np.int64))
        table, episode_of_row = data_cache[data_key]
        rows = np.nonzero(episode_of_row == e)[0]
        part = table.take(pa.array(rows))
        order = np.argsort(column_vector(part, "frame_index", np.int64), kind="stable")
        part = part.take(pa.array(order))
        n = part.num_rows
        if n == 0:
            raise HelperError(f"episode {e}: no rows in its data file")
        if int(row.get("length", n)) != n:
            raise HelperError(f"episode {e}: length {row['length']} but {n} rows")
        names = set(part.column_names)
        tensors = {
            "states": column_matrix(part, "observation.state", np.float32),
            "native_actions": column_matrix(part, "action", np.float32),
        }
        if "swiftvla.unified_action" in names:
            tensors["unified_actions"] = column_matrix(part, "swiftvla.unified_action", np.float32)
        else:  # foreign data: no unified layout known, every slot masked off
            tensors["unified_actions"] = np.zeros((n, UNIFIED_DIM), np.float32)
        mask = row.get("swiftvla.action_mask")
        tensors["action_mask"] = np.asarray(mask if mask is not None else np.zeros(UNIFIED_DIM), np.float32)
        tensors["rewards"] = (column_vector(part, "next.reward", np.float32) if "next.reward" in names
                              else np.zeros(n, np.float32))
        if "next.done" in names:
            tensors["dones"] = column_vector(part, "next.done", np.uint8)
        else:
            tensors["dones"] = (np.arange(n) == n - 1).astype(np.uint8)
        tensors["sources"] = (column_vector(part, "swiftvla.source", np.uint8) if "swiftvla.source" in names
                              else np.full(n, 2, np.uint8))  # foreign data counts as demonstrations
        if "swiftvla.timestamp_us" in names:
            tensors["timestamps_us"] = column_vector(part, "swiftvla.timestamp_us", np.int64)
        else:
            tensors["timestamps_us"] = np.round(column_vector(part, "timestamp", np.float64) * 1e6).astype(np.int64)
        if "swiftvla.step_policy_version" in names:
            versions = column_vector(part, "swiftvla.step_policy_version", np.int64)
            if (versions >= 0).all():
                tensors["policy_versions"] = versions
        for key, name in cameras.items():
            video_file = src_dir / info["video_path"].format(
                video_key=key, chunk_index=int(row[f"videos/{key}/chunk_index"]), file_index=int(row[f"videos/{key}/file_index"]))
            if video_file not in readers:
                readers[video_file] = VideoReader(video_file, fps)
            start = int(round(float(row[f"videos/{key}/from_timestamp"]) * fps))
            tensors[f"camera.{name}"] = readers[video_file].read(start, n)

        task_text = tasks.get(int(column_vector(part, "task_index", np.int64)[0])) if "task_index" in names else None
        instruction = task_text or (row.get("tasks") or [""])[0]
        success = row.get("swiftvla.success")
        if success is None:
            success = bool(column_vector(part, "next.success", np.uint8).any()) if "next.success" in names else False
        header = {
            "format": EPISODE_FORMAT,
            "id": row.get("swiftvla.id") or str(uuid.uuid5(uuid.NAMESPACE_URL, f"lerobot:{src_dir.resolve()}:{e}")).upper(),
            "embodiment": row.get("swiftvla.embodiment") or info.get("robot_type") or "lerobot",
            "task": row.get("swiftvla.task") or "lerobot",
            "instruction": instruction,
            "success": bool(success),
            "policyVersion": int(row.get("swiftvla.policy_version") or 0),
            "createdAt": float(row["swiftvla.created_at"]) if row.get("swiftvla.created_at") is not None else now,
            "cameras": sorted(cameras.values()),
        }
        if row.get("swiftvla.seed") is not None:
            header["seed"] = int(row["swiftvla.seed"])
        if row.get("swiftvla.speed") is not None:
            header["speed"] = float(row["swiftvla.speed"])
        name = f"{e:06d}.safetensors"
        save_file({k: np.ascontiguousarray(v) for k, v in tensors.items()}, str(out_dir / "episodes" / name),
                  metadata={"episode": json.dumps(header, sort_keys=True)})
        written.append(f"episodes/{name}")
        frames_total += n
    for reader in readers.values():
        reader.close()
    summary = {"format": MANIFEST_FORMAT, "episodes": written, "frames": frames_total, "fps": fps,
               "cameras": sorted(cameras.values())}
    write_json(out_dir / "manifest.json", summary)
    return {"episodes": len(written), "frames": frames_total, "fps": fps, "cameras": sorted(cameras.values()),
            "out": str(out_dir)}


def main(argv):
    if len(argv) != 4 or argv[1] not in ("export", "import"):
        print(__doc__, file=sys.stderr)
        return 2
    src, out = Path(argv[2]), Path(argv[3])
    try:
        summary = (export_dataset if argv[1] == "export" else import_dataset)(src, out)
    except HelperError as error:
        print(f"lerobot_v3 {argv[1]}: {error}", file=sys.stderr)
        return 1
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
