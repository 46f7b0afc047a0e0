"""Reading one dataset's rows: local files and folders, save_to_disk datasets, and hub datasets.

Rows come back as a `datasets.Dataset` (an `IterableDataset` when streaming) with the file's own columns; the
converters turn them into the internal format. Reading goes through `datasets.load_dataset`, which caches the
Arrow form of every file; when it fails, the file is scanned here to say where (file, line, column, row) and why.
"""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING, Any

from tunefactory.data.dataset_info import DatasetAttr
from tunefactory.errors import DataError

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

FILE_TYPES = {".json": "json", ".jsonl": "json", ".csv": "csv", ".parquet": "parquet", ".arrow": "arrow",
              ".txt": "text"}
HUBS = {"hf_hub": "Hugging Face Hub", "ms_hub": "ModelScope Hub", "om_hub": "Modelers Hub"}


def _file_type(path: str) -> str | None:
    return FILE_TYPES.get(os.path.splitext(path)[1].lower())


def is_saved_dataset(path: str) -> bool:
    """Whether ``path`` is a folder written by `Dataset.save_to_disk` / `DatasetDict.save_to_disk`."""
    return os.path.isdir(path) and (
        os.path.isfile(os.path.join(path, "dataset_dict.json"))
        or os.path.isfile(os.path.join(path, "state.json"))
    )


def data_files(path: str) -> tuple[str, list[str]]:
    """The builder name and the data files of a file or a folder of files (all of one type)."""
    if os.path.isfile(path):
        kind = _file_type(path)
        if kind is None:
            raise DataError(f"{path}: unknown file type; use one of {', '.join(sorted(FILE_TYPES))}")
        return kind, [path]
    if not os.path.isdir(path):
        raise DataError(f"{path}: no such file or folder")
    files = sorted(
        os.path.join(path, name) for name in os.listdir(path)
        if not name.startswith(".") and os.path.isfile(os.path.join(path, name))
    )
    kinds = {(_file_type(f) or "?") for f in files}
    if not files:
        raise DataError(f"{path}: the folder holds no data files")
    if "?" in kinds:
        odd = next(f for f in files if _file_type(f) is None)
        raise DataError(f"{odd}: unknown file type in a data folder; use one of {', '.join(sorted(FILE_TYPES))}")
    if len(kinds) != 1:
        raise DataError(f"{path}: the folder mixes file types ({', '.join(sorted(kinds))}); keep one type per folder")
    return kinds.pop(), files


def read_dataset(attr: DatasetAttr, config: RunConfig) -> Any:
    """The raw rows of one dataset (before conversion), sampled as num_samples and max_samples say."""
    streaming = bool(config.data.streaming)
    if attr.load_from == "file":
        dataset = _read_local(attr.source, attr, config, streaming)
    elif attr.load_from == "script":
        dataset = _read_script(attr, config, streaming)
    else:
        dataset = _read_hub(attr, config, streaming)
    return _sample(dataset, attr, config, streaming)


FAST_JSON_MAX_BYTES = 256 * 2**20  # JSON files up to this size (together) are parsed here, larger ones by datasets


def _read_local(path: str, attr: DatasetAttr, config: RunConfig, streaming: bool) -> Any:
    import datasets

    if is_saved_dataset(path):
        loaded = datasets.load_from_disk(path)
        if isinstance(loaded, datasets.DatasetDict):
            if attr.split not in loaded:
                raise DataError(f"{path}: the saved dataset has splits {', '.join(loaded)}, not {attr.split!r}; "
                                "set split in dataset_info.json")
            loaded = loaded[attr.split]
        return loaded.to_iterable_dataset() if streaming else loaded
    kind, files = data_files(path)
    if not streaming:
        for file in files:
            if os.path.getsize(file) == 0:
                raise DataError(f"{file}: the file is empty")
        if kind == "json" and sum(os.path.getsize(f) for f in files) <= FAST_JSON_MAX_BYTES:
            return read_json_files(files)
    try:
        return datasets.load_dataset(
            kind, data_files=files, split="train", cache_dir=config.model.cache_dir, streaming=streaming,
            num_proc=config.data.preprocessing_num_workers if len(files) > 1 and not streaming else None,
        )
    except DataError:
        raise
    except Exception as exc:  # the builders' errors do not say where; find it
        if kind == "json":
            for file in files:
                located = locate_json_problem(file)
                if located:
                    raise DataError(located) from None
        raise DataError(f"cannot read {', '.join(files)} as {kind}: {_short(exc)}") from None


def read_json_files(files: list[str]) -> Any:
    """JSON / JSON-lines files as one in-memory `datasets.Dataset`, parsed here (strictly: errors name the file,
    line and column, or the row and column) and fingerprinted by path, size and modification time, so that the
    processing of its rows is cached like that of any other file."""
    import hashlib

    import datasets
    import pyarrow as pa
    from datasets.table import InMemoryTable

    per_file = [(file, _parse_json(file)) for file in files]
    if not any(parsed for _, parsed in per_file):
        raise DataError(f"{', '.join(files)}: no rows")
    values: list[Any] = []
    for file, parsed in per_file:
        for where, row in parsed:
            if not isinstance(row, dict):
                raise DataError(f"{file}: {where} is a {_kind(row) or 'null'}, not an object of columns")
            values.append(row)
    keys = list(dict.fromkeys(key for row in values for key in row))
    try:
        table = pa.Table.from_pydict({key: [row.get(key) for row in values] for key in keys})
    except (pa.ArrowInvalid, pa.ArrowTypeError, pa.ArrowNotImplementedError) as exc:
        for file, parsed in per_file:
            located = _row_problem(file, parsed)
            if located:
                raise DataError(located) from None
        raise DataError(f"cannot make a table of {', '.join(files)}: {exc}") from None
    digest = hashlib.sha256(b"tunefactory-json-1")
    for file in files:
        stat = os.stat(file)
        digest.update(f"{os.path.abspath(file)}|{stat.st_size}|{stat.st_mtime_ns}".encode())
    return datasets.Dataset(InMemoryTable(table), fingerprint=digest.hexdigest()[:32])


def _short(exc: BaseException) -> str:
    cause = exc
    while cause.__cause__ is not None and not str(cause):
        cause = cause.__cause__
    text = str(cause) or type(cause).__name__
    if cause.__cause__ is not None and str(cause.__cause__) and str(cause.__cause__) not in text:
        text += f" ({cause.__cause__})"
    return text.splitlines()[0][:400]


def _kind(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    if isinstance(value, list):
        return "list"
    return "object"


def _parse_json(path: str) -> list[tuple[str, Any]]:
    """The rows of a JSON (a list of rows) or JSON-lines file, each with where it is; DataError names the line and
    column of a syntax error."""
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text (byte {exc.start}): {exc.reason}") from None
    except OSError as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise DataError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
        return [(f"row {i + 1}", row) for i, row in enumerate(data)]
    rows: list[tuple[str, Any]] = []
    for line_no, line in enumerate(text.splitlines(), 1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            if not rows and stripped.startswith("{"):
                _whole_document(path, text)
            raise DataError(f"{path}: invalid JSON at line {line_no}, column {exc.colno} (row {len(rows) + 1}): "
                            f"{exc.msg}") from None
        rows.append((f"row {len(rows) + 1} (line {line_no})", row))
    if not rows:
        raise DataError(f"{path}: no rows")
    return rows


def _whole_document(path: str, text: str) -> None:
    """Raise the right error for a file whose first line is not a whole JSON row."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    raise DataError(f"{path}: the top level is one object; give a list of rows, or one row per line")


def locate_json_problem(path: str) -> str | None:
    """Why a JSON or JSON-lines file cannot be a table, naming the line and column or the row; None if it can."""
    try:
        rows = _parse_json(path)
    except DataError as exc:
        return str(exc)
    return _row_problem(path, rows)


def _row_problem(path: str, rows: list[tuple[str, Any]]) -> str | None:
    if not rows:
        return f"{path}: no rows"
    first_seen: dict[str, tuple[str, str]] = {}  # column -> (kind, where)
    for where, row in rows:
        if not isinstance(row, dict):
            return f"{path}: {where} is a {_kind(row) or 'null'}, not an object of columns"
        for key, value in row.items():
            kind = _kind(value)
            if kind is None:
                continue
            seen = first_seen.setdefault(key, (kind, where))
            if seen[0] != kind:
                return (f"{path}: {where}: column {key!r} is a {kind} here but a {seen[0]} in {seen[1]}; "
                        "every row must give a column the same type")
            if kind == "list" and value and isinstance(value[0], dict):
                inner = _row_problem_in_list(key, value, where)
                if inner:
                    return f"{path}: {inner}"
    return None


def _row_problem_in_list(key: str, items: list[Any], where: str) -> str | None:
    """Messages in one list must all be objects (a string among them breaks the table)."""
    for index, item in enumerate(items):
        if not isinstance(item, dict):
            return f"{where}: column {key!r}, item {index + 1} is a {_kind(item) or 'null'}, not an object"
    return None


def _read_script(attr: DatasetAttr, config: RunConfig, streaming: bool) -> Any:
    if os.path.isdir(attr.source) and not any(name.endswith(".py") for name in os.listdir(attr.source)):
        return _read_local(attr.source, attr, config, streaming)  # a folder of data files
    raise DataError(
        f"dataset {attr.name!r}: script_url {attr.source!r} names a loading script; the installed datasets library "
        "no longer runs dataset scripts. Convert the data to json/jsonl/parquet files and use file_name"
    )


def _offline(exc: BaseException) -> bool:
    text = f"{type(exc).__name__} {exc} {exc.__cause__!r}"
    markers = ("Couldn't reach", "OfflineMode", "LocalEntryNotFound", "ConnectError", "ConnectionError",
               "Name or service not known", "Max retries", "timed out", "Network is unreachable")
    return isinstance(exc, (ConnectionError, TimeoutError)) or any(marker in text for marker in markers)


def _read_hub(attr: DatasetAttr, config: RunConfig, streaming: bool) -> Any:
    import datasets

    hub = HUBS[attr.load_from]
    try:
        if attr.load_from == "hf_hub":
            return datasets.load_dataset(
                attr.source, name=attr.subset, data_dir=attr.folder, split=attr.split,
                cache_dir=config.model.cache_dir, token=config.model.hf_hub_token, streaming=streaming,
            )
        folder = _resolve_with_hub_plugin(attr, config)
        local = os.path.join(folder, attr.folder) if attr.folder else folder
        if attr.subset and os.path.isdir(os.path.join(local, attr.subset)):
            local = os.path.join(local, attr.subset)
        return datasets.load_dataset(local, split=attr.split, cache_dir=config.model.cache_dir, streaming=streaming)
    except DataError:
        raise
    except Exception as exc:
        if _offline(exc):
            raise DataError(
                f"dataset {attr.name!r}: cannot reach the {hub} to load {attr.source!r} ({_short(exc)}). "
                "Without network access, use a local copy: download the dataset where the hub is reachable "
                f"(e.g. `huggingface-cli download --repo-type dataset {attr.source} --local-dir DIR`), then put its "
                "files in dataset_dir and set file_name in dataset_info.json (or give the file path in `dataset`)"
            ) from None
        raise DataError(f"dataset {attr.name!r}: cannot load {attr.source!r} from the {hub}: {_short(exc)}") from None


def _resolve_with_hub_plugin(attr: DatasetAttr, config: RunConfig) -> str:
    from tunefactory.registry import get_registry

    name = {"ms_hub": "modelscope", "om_hub": "modelers"}[attr.load_from]
    hub = get_registry().select("hub", name).load()()
    return hub.resolve_dataset(attr.source, config)


def _sample(dataset: Any, attr: DatasetAttr, config: RunConfig, streaming: bool) -> Any:
    """num_samples (dataset_info.json: sampled with the run's seed, repeating rows when it exceeds the data), then
    max_samples (the first rows)."""
    max_samples = config.data.max_samples
    if streaming:
        if attr.num_samples is not None:
            raise DataError(f"dataset {attr.name!r}: num_samples cannot be used with streaming")
        return dataset.take(max_samples) if max_samples is not None else dataset
    if attr.num_samples is not None:
        import numpy as np

        rng = np.random.default_rng(config.training.seed)
        total = len(dataset)
        if total == 0:
            raise DataError(f"dataset {attr.name!r} has no rows to sample num_samples from")
        indexes = rng.permutation(total)[: attr.num_samples]
        if attr.num_samples > total:
            indexes = np.concatenate([indexes, rng.integers(0, total, attr.num_samples - total)])
        dataset = dataset.select(indexes.tolist())
    if max_samples is not None and max_samples < len(dataset):
        dataset = dataset.select(range(max_samples))
    return dataset
