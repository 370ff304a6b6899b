"""Read back what an offline W&B run logged, from its ``run-<id>.wandb`` file.

wandb 0.31 writes the file from its Go core and ships no Python reader, so this follows the
format: a 7-byte header (``:W&B``, magic 0xBEE1, version) and then LevelDB-log records of
protobuf ``wandb_internal_pb2.Record`` (4-byte CRC, 2-byte length, 1-byte type; full, first,
middle, last) in 32 KiB blocks.
"""

from __future__ import annotations

import json
import struct
import time
from collections.abc import Iterator
from pathlib import Path

from wandb.proto import wandb_internal_pb2

BLOCK_SIZE = 32768
HEADER_SIZE = 7  # both the file header and each record header
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path) -> Iterator[wandb_internal_pb2.Record]:
    """Every record of a ``.wandb`` file, in the order written."""
    data = path.read_bytes()
    assert data[:4] == b":W&B", f"{path} is not a W&B datastore file"
    position, pending = HEADER_SIZE, b""
    while position + HEADER_SIZE <= len(data):
        left_in_block = BLOCK_SIZE - position % BLOCK_SIZE
        if left_in_block < HEADER_SIZE:  # blocks end in zero padding when a header does not fit
            position += left_in_block
            continue
        _crc, length, kind = struct.unpack("<IHB", data[position : position + HEADER_SIZE])
        if kind == 0 or position + HEADER_SIZE + length > len(data):
            break  # the end, or a record still being written
        pending += data[position + HEADER_SIZE : position + HEADER_SIZE + length]
        position += HEADER_SIZE + length
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            pending = b""
            yield record


def finished_records(path: Path, timeout_s: float = 60.0) -> list[wandb_internal_pb2.Record]:
    """The records of a finished run. ``wandb.finish()`` can return before wandb's core process has
    flushed the file, so this waits (up to `timeout_s`) for the closing ``exit`` record."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = list(records(path)) if path.stat().st_size >= HEADER_SIZE else []
        if any(record.WhichOneof("record_type") == "exit" for record in found) or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


class OfflineRun:
    """The history rows, config, run settings and artifacts of one offline run directory."""

    def __init__(self, run_dir: Path) -> None:
        self.dir = run_dir
        (datastore,) = run_dir.glob("run-*.wandb")
        self.history: list[dict] = []
        self.config: dict = {}
        self.artifacts: list = []
        self.run = None
        for record in finished_records(datastore):
            kind = record.WhichOneof("record_type")
            if kind == "history":
                self.history.append({_key(item): json.loads(item.value_json) for item in record.history.item})
            elif kind == "config":
                self.config.update({_key(item): json.loads(item.value_json) for item in record.config.update})
            elif kind == "run":
                self.run = record.run
            elif kind == "artifact":
                self.artifacts.append(record.artifact)

    def values(self, key: str) -> list:
        """Every logged value of `key`, in logging order."""
        return [row[key] for row in self.history if key in row]


def _key(item) -> str:
    return item.key or "/".join(item.nested_key)


def offline_runs(save_dir: Path) -> list[OfflineRun]:
    """Every offline run under ``<save_dir>/wandb/``."""
    return [OfflineRun(path) for path in sorted((save_dir / "wandb").glob("offline-run-*"))]
