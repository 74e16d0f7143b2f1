"""Reads a TensorBoard event file with TensorBoard's own reader and re-encodes every record with
TensorBoard's protos and record writer; prints the scalars and whether the bytes match.

Usage: read_tensorboard.py EVENT_FILE  → JSON {"scalars": {tag: [[step, value], ...]},
"file_version": str, "records": n, "bytes_equal": bool}
"""
import io
import json
import sys

from tensorboard.backend.event_processing import event_file_loader
from tensorboard.compat.proto import event_pb2
from tensorboard.summary.writer.record_writer import RecordWriter

path = sys.argv[1]
scalars, file_version, records = {}, None, 0
reencoded = io.BytesIO()
writer = RecordWriter(reencoded)
# RawEventFileLoader checks both CRCs of every record (DataLossError otherwise).
for raw in event_file_loader.RawEventFileLoader(path).Load():
    records += 1
    event = event_pb2.Event.FromString(raw)
    writer.write(event.SerializeToString())
    if event.HasField("file_version"):
        file_version = event.file_version
    for value in event.summary.value:
        scalars.setdefault(value.tag, []).append([event.step, value.simple_value, event.wall_time])
with open(path, "rb") as f:
    original = f.read()
print(json.dumps({"scalars": scalars, "file_version": file_version, "records": records,
                  "bytes_equal": reencoded.getvalue() == original}))
