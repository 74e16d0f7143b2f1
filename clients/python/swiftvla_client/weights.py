"""Reassembling published policy versions (manifest, then in-order weight chunks) and reading
the safetensors file they carry. Mirrors Sources/Fleet/WeightAssembler.swift."""

from __future__ import annotations

import json
import struct
import zlib
from typing import Dict, List, NamedTuple, Optional, Tuple

import numpy as np

from . import fleet_pb2 as pb
from .errors import WeightTransferError


class PolicyVersion(NamedTuple):
    """A verified policy version: `for version, manifest, data in client.watch_policy()`."""

    version: int
    manifest: pb.PolicyManifest
    data: bytes   # the whole safetensors file

    def tensors(self) -> Dict[str, np.ndarray]:
        """The weights as numpy arrays (name -> array)."""
        return read_safetensors(self.data)


_DTYPES = {
    "F64": np.float64, "F32": np.float32, "F16": np.float16,
    "I64": np.int64, "I32": np.int32, "I16": np.int16, "I8": np.int8,
    "U64": np.uint64, "U32": np.uint32, "U16": np.uint16, "U8": np.uint8, "BOOL": np.bool_,
}


def _header(data: bytes) -> Tuple[dict, int]:
    if len(data) < 8:
        raise WeightTransferError("file shorter than its header")
    (length,) = struct.unpack("<Q", data[:8])
    if length > len(data) - 8:
        raise WeightTransferError(f"header length {length} beyond the file")
    try:
        table = json.loads(data[8:8 + length])
    except ValueError as e:
        raise WeightTransferError(f"header is not JSON: {e}") from None
    if not isinstance(table, dict):
        raise WeightTransferError("header is not a JSON object")
    return table, 8 + length


def tensor_table(data: bytes) -> List[Tuple[str, str, Tuple[int, ...]]]:
    """(name, dtype, shape) of every tensor in a safetensors file, sorted by name."""
    table, _ = _header(data)
    out = []
    for name in sorted(k for k in table if k != "__metadata__"):
        info = table[name]
        try:
            out.append((name, str(info["dtype"]), tuple(int(d) for d in info["shape"])))
        except (KeyError, TypeError, ValueError):
            raise WeightTransferError(f"bad header entry for {name}") from None
    return out


def read_safetensors(data: bytes) -> Dict[str, np.ndarray]:
    """Decodes a safetensors file into numpy arrays (BF16 is widened to float32)."""
    table, start = _header(data)
    out = {}
    for name, info in table.items():
        if name == "__metadata__":
            continue
        begin, end = (int(x) for x in info["data_offsets"])
        shape = tuple(int(d) for d in info["shape"])
        raw = data[start + begin:start + end]
        dtype = info["dtype"]
        if dtype == "BF16":
            bits = np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16
            out[name] = bits.view(np.float32).reshape(shape)
        elif dtype in _DTYPES:
            out[name] = np.frombuffer(raw, dtype=np.dtype(_DTYPES[dtype]).newbyteorder("<")).reshape(shape).copy()
        else:
            raise WeightTransferError(f"{name}: unsupported dtype {dtype}")
    return out


def _read_varint(coded: bytes, i: int) -> Tuple[int, int]:
    value, shift = 0, 0
    while True:
        if i >= len(coded) or shift >= 63:
            raise WeightTransferError("truncated delta count")
        b = coded[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def apply_delta(payload: bytes, base: bytes) -> bytes:
    """The safetensors file a `WeightDelta` payload describes against `base` (the file of the
    manifest's `delta_base_version`). Mirrors Sources/Fleet/WeightDelta.swift: u64 header
    length, the new header, then the XOR of the data regions in 4-byte-word byte planes coded
    as (zero run, literal run, literals) with LEB128 counts."""
    if len(payload) < 8:
        raise WeightTransferError("delta shorter than its header length")
    (length,) = struct.unpack("<Q", payload[:8])
    if length > len(payload) - 8:
        raise WeightTransferError(f"delta header length {length} beyond the payload")
    header = payload[8:8 + length]
    _, base_start = _header(base)
    base_data = np.frombuffer(base, dtype=np.uint8, offset=base_start)
    n = len(base_data)
    planes = np.zeros(n, dtype=np.uint8)
    coded, i, o = payload[8 + length:], 0, 0
    while i < len(coded):
        zeros, i = _read_varint(coded, i)
        literals, i = _read_varint(coded, i)
        if zeros > n - o or literals > n - o - zeros or literals > len(coded) - i:
            raise WeightTransferError(f"delta runs exceed the base's {n} data bytes")
        o += zeros
        if literals:
            planes[o:o + literals] = np.frombuffer(coded, dtype=np.uint8, count=literals, offset=i)
        o += literals
        i += literals
    if o != n:
        raise WeightTransferError(f"delta covers {o} of the base's {n} data bytes")
    words = n // 4
    xor = planes.copy()
    xor[:4 * words] = planes[:4 * words].reshape(4, words).T.reshape(-1)
    return struct.pack("<Q", len(header)) + header + (base_data ^ xor).tobytes()


class WeightAssembler:
    """Feeds `PolicyUpdate`s; returns a `PolicyVersion` when one is complete and verified:
    chunks in order after their manifest, total size, CRC-32 (zlib.crc32) and the tensor table
    all as the manifest says. A new manifest replaces an unfinished version (newest wins). The
    last completed file is kept, so a version sent as a delta against it (manifest
    `delta_base_version`, a stream that asked with `accept_delta`) is rebuilt and then checked
    the same way."""

    def __init__(self, max_bytes: int = 2 << 30):
        self.max_bytes = max_bytes
        self._manifest: Optional[pb.PolicyManifest] = None
        self._parts: List[bytes] = []
        self._received = 0
        self._next = 0
        self._base: Optional[PolicyVersion] = None

    @staticmethod
    def _payload_bytes(m: pb.PolicyManifest) -> int:
        # Learners before deltas left payload_bytes unset: the chunks carry the file.
        return m.total_bytes if m.payload_bytes == 0 and m.delta_base_version == 0 else m.payload_bytes

    def consume(self, update: pb.PolicyUpdate) -> Optional[PolicyVersion]:
        kind = update.WhichOneof("kind")
        if kind == "manifest":
            m = update.manifest
            self._manifest = None
            if max(m.total_bytes, self._payload_bytes(m)) > self.max_bytes:
                raise WeightTransferError(f"policy of {m.total_bytes} bytes exceeds the limit {self.max_bytes}")
            if m.delta_base_version != 0 and (self._base is None or self._base.version != m.delta_base_version):
                held = f"v{self._base.version}" if self._base else "no version"
                raise WeightTransferError(f"v{m.version} is a delta against v{m.delta_base_version}, holding {held}")
            self._manifest, self._parts, self._received, self._next = m, [], 0, 0
            return self._complete() if m.chunk_count == 0 else None
        if kind == "chunk":
            c, m = update.chunk, self._manifest
            if m is None:
                raise WeightTransferError(f"chunk {c.index} without a manifest")
            if c.version != m.version or c.index != self._next:
                raise WeightTransferError(f"got v{c.version} #{c.index}, expected v{m.version} #{self._next}")
            if self._received + len(c.data) > self._payload_bytes(m):
                raise WeightTransferError(f"chunks exceed the manifest's {self._payload_bytes(m)} bytes")
            self._parts.append(bytes(c.data))
            self._received += len(c.data)
            self._next += 1
            return self._complete() if self._next == m.chunk_count else None
        raise WeightTransferError("empty update")

    def _complete(self) -> PolicyVersion:
        m = self._manifest
        payload = b"".join(self._parts)
        self._manifest, self._parts, self._received, self._next = None, [], 0, 0
        if len(payload) != self._payload_bytes(m):
            raise WeightTransferError(f"received {len(payload)} bytes, manifest says {self._payload_bytes(m)}")
        data = apply_delta(payload, self._base.data) if m.delta_base_version != 0 else payload
        if len(data) != m.total_bytes:
            raise WeightTransferError(f"rebuilt {len(data)} bytes, manifest says {m.total_bytes}")
        crc = zlib.crc32(data) & 0xFFFFFFFF
        if crc != m.crc32:
            raise WeightTransferError(f"weights checksum mismatch: manifest crc32 {m.crc32:08x}, received {crc:08x}")
        expected = sorted((t.name, t.dtype, tuple(int(d) for d in t.shape)) for t in m.tensors)
        if tensor_table(data) != expected:
            raise WeightTransferError("tensor table differs from the manifest")
        self._base = PolicyVersion(int(m.version), m, data)
        return self._base
