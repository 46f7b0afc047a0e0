"""Checkpoints that count only once fully written, resuming from them, and what an output folder already holds.

transformers writes ``checkpoint-N`` piece by piece (weights, optimizer, scheduler, RNG, trainer state); a process
killed half-way leaves a folder that looks like a checkpoint. tunefactory writes ``checkpoint_complete.json`` into
the folder, atomically, after every piece is on disk, and resumes only from folders that have it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tunefactory.errors import ConfigError, Problem, TunefactoryError

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

COMPLETE_MARKER = "checkpoint_complete.json"
MANIFEST = "run_manifest.json"
CHECKPOINT_RE = re.compile(r"^checkpoint-(\d+)$")


class OutputDirError(TunefactoryError):
    exit_code = 2
    title = "output folder"


def write_json_atomic(path: str | os.PathLike, data: Any) -> None:
    """Write JSON so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    with open(tmp, "w", encoding="utf-8") as handle:
        json.dump(data, handle, indent=2, ensure_ascii=False, default=str)
        handle.write("\n")
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _fsync_tree(folder: Path) -> None:
    for path in folder.rglob("*"):
        if path.is_file():
            try:
                fd = os.open(path, os.O_RDONLY)
            except OSError:
                continue
            try:
                os.fsync(fd)
            finally:
                os.close(fd)


def mark_complete(folder: str | os.PathLike, step: int) -> None:
    folder = Path(folder)
    _fsync_tree(folder)
    files = sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())
    write_json_atomic(folder / COMPLETE_MARKER, {"step": step, "files": files, "time": time.time()})


def is_complete(folder: str | os.PathLike) -> bool:
    marker = Path(folder) / COMPLETE_MARKER
    if not marker.is_file():
        return False
    try:
        info = json.loads(marker.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return False
    return all((Path(folder) / name).exists() for name in info.get("files", []))


def checkpoints(output_dir: str | os.PathLike) -> list[tuple[int, Path]]:
    """Every ``checkpoint-N`` folder, oldest first."""
    root = Path(output_dir)
    if not root.is_dir():
        return []
    found = []
    for child in root.iterdir():
        match = CHECKPOINT_RE.match(child.name)
        if match and child.is_dir():
            found.append((int(match.group(1)), child))
    return sorted(found)


def newest_complete(output_dir: str | os.PathLike) -> Path | None:
    for _, folder in reversed(checkpoints(output_dir)):
        if is_complete(folder):
            return folder
    return None


def rotate(output_dir: str | os.PathLike, limit: int | None, keep: str | None = None) -> None:
    """Keep the newest ``limit`` complete checkpoints (and ``keep``, the best one); never delete the only good one."""
    if not limit or limit <= 0:
        return
    complete = [folder for _, folder in checkpoints(output_dir) if is_complete(folder)]
    keep_path = Path(keep).resolve() if keep else None
    excess = len(complete) - limit
    for folder in complete:
        if excess <= 0:
            break
        if keep_path is not None and folder.resolve() == keep_path:
            continue
        logger.info("deleting older checkpoint %s (save_total_limit %d)", folder, limit)
        shutil.rmtree(folder, ignore_errors=True)
        excess -= 1


def read_manifest(output_dir: str | os.PathLike) -> dict | None:
    path = Path(output_dir) / MANIFEST
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None


def _wants_newest(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def resolve_resume(config: RunConfig) -> str | None:
    """The checkpoint this run resumes from, after checking what ``output_dir`` holds.

    - ``resume_from_checkpoint: true``: the newest complete checkpoint in output_dir (an error if there is none).
    - a path: it must be a complete checkpoint (or one written by another tool, with trainer_state.json).
    - unset: output_dir must be empty unless ``overwrite_output_dir``, which clears its old checkpoints.
    """
    training = config.training
    output_dir = Path(training.output_dir)
    value = training.resume_from_checkpoint
    if value in (None, False, "") or (isinstance(value, str) and value.strip().lower() in ("false", "none")):
        value = None
    if not training.do_train:
        return None
    if _wants_newest(value):
        newest = newest_complete(output_dir)
        if newest is None:
            partial = [str(f) for _, f in checkpoints(output_dir)]
            found = f"; {', '.join(partial)} never finished writing" if partial else ""
            raise OutputDirError(f"resume_from_checkpoint is true but {output_dir} holds no complete checkpoint"
                                 f"{found}. Drop resume_from_checkpoint to start afresh (with overwrite_output_dir), "
                                 "or give the path of a checkpoint")
        skipped = [f.name for step, f in checkpoints(output_dir) if step > _step(newest)]
        if skipped:
            logger.warning("ignoring incomplete checkpoint(s) %s: they never finished writing", ", ".join(skipped))
        logger.info("resuming from %s, the newest complete checkpoint", newest)
        return str(newest)
    if value is not None:
        path = Path(value)
        if not path.is_dir():
            raise ConfigError([Problem("resume_from_checkpoint", f"{value} is not a folder",
                                       "give a checkpoint-N folder, or true for the newest in output_dir")])
        if not is_complete(path):
            if (path / COMPLETE_MARKER).exists() or not (path / "trainer_state.json").is_file():
                raise ConfigError([Problem("resume_from_checkpoint", f"{value} is not a complete checkpoint "
                                           "(it never finished writing)",
                                           "give an older checkpoint, or true for the newest complete one")])
            logger.warning("%s has no completion marker (written by another tool?); resuming from it", value)
        return str(path)
    _check_fresh_output_dir(output_dir, training.overwrite_output_dir)
    return None


def _step(folder: Path) -> int:
    match = CHECKPOINT_RE.match(folder.name)
    return int(match.group(1)) if match else -1


def _check_fresh_output_dir(output_dir: Path, overwrite: bool) -> None:
    if not output_dir.is_dir() or not any(output_dir.iterdir()):
        return
    if overwrite:
        for _, folder in checkpoints(output_dir):
            shutil.rmtree(folder, ignore_errors=True)
        (output_dir / MANIFEST).unlink(missing_ok=True)
        logger.info("overwrite_output_dir: cleared the old checkpoints in %s", output_dir)
        return
    manifest = read_manifest(output_dir)
    complete = newest_complete(output_dir)
    if manifest and manifest.get("status") == "finished":
        what = (f"a finished run ({manifest.get('global_step', '?')} steps, stage {manifest.get('stage', '?')}, "
                f"finished {manifest.get('finished_at', '?')})")
    elif complete is not None:
        what = f"an unfinished run whose newest complete checkpoint is {complete.name}"
    else:
        what = f"files ({', '.join(sorted(p.name for p in output_dir.iterdir())[:5])})"
    hint = "set resume_from_checkpoint: true to continue it, " if complete is not None else ""
    raise OutputDirError(f"output_dir {output_dir} already holds {what}. To train again, {hint}set "
                         "overwrite_output_dir: true to replace it, or choose another output_dir")
