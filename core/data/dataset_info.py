"""The dataset registry: `dataset_dir/dataset_info.json` in LLaMA-Factory's format, and the names a config gives.

Each name in `dataset` / `eval_dataset` is looked up in dataset_info.json; a name that is not there but is the path
of a file or folder (absolute, or relative to the working directory or to dataset_dir) is read directly, its format
told from its columns. Keys are checked: a misspelt key gets a did-you-mean, an undefined name lists the defined ones.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

from tunefactory.errors import DataError
from tunefactory.suggest import did_you_mean, ranked

INFO_FILE = "dataset_info.json"
SHOWN_NAMES = 25  # defined names listed when a name is unknown
FORMATTINGS = ("alpaca", "sharegpt", "openai")
LOAD_FROM = ("hf_hub", "ms_hub", "om_hub", "script", "file")
SOURCE_KEYS = {"hf_hub": "hf_hub_url", "ms_hub": "ms_hub_url", "om_hub": "om_hub_url", "script": "script_url",
               "file": "file_name"}
TOP_KEYS = (
    "hf_hub_url", "ms_hub_url", "om_hub_url", "script_url", "cloud_file_name", "file_name", "file_sha1", "load_from",
    "formatting", "ranking", "subset", "split", "folder", "num_samples", "columns", "tags",
)
COLUMN_KEYS = (
    "prompt", "query", "response", "history", "messages", "system", "tools", "images", "videos", "audios", "chosen",
    "rejected", "kto_tag",
)
TAG_KEYS = ("role_tag", "content_tag", "user_tag", "assistant_tag", "observation_tag", "function_tag", "system_tag")

# columns each formatting reads when dataset_info.json does not name them
DEFAULT_COLUMNS: dict[str, dict[str, str]] = {
    "alpaca": {"prompt": "instruction", "query": "input", "response": "output"},
    "sharegpt": {"messages": "conversations"},
    "openai": {"messages": "messages"},
}
DEFAULT_TAGS: dict[str, dict[str, str]] = {
    "sharegpt": {"role_tag": "from", "content_tag": "value", "user_tag": "human", "assistant_tag": "gpt",
                 "observation_tag": "observation", "function_tag": "function_call", "system_tag": "system"},
    "openai": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
               "observation_tag": "tool", "function_tag": "function_call", "system_tag": "system"},
}


@dataclass
class DatasetAttr:
    """One dataset as dataset_info.json (or a bare path) describes it."""

    name: str
    load_from: str  # hf_hub | ms_hub | om_hub | script | file
    source: str  # hub id, script folder, or file/folder path (resolved for files)
    formatting: str = "alpaca"  # alpaca | sharegpt | openai | auto (a bare path: told from the columns)
    ranking: bool = False
    subset: str | None = None
    split: str = "train"
    folder: str | None = None
    num_samples: int | None = None
    columns: dict[str, str] = field(default_factory=dict)  # internal name -> column, as written
    tags: dict[str, str] = field(default_factory=dict)
    where: str = ""  # where it is defined, for messages

    def column(self, key: str) -> str | None:
        """The data column for internal name ``key``: named in dataset_info.json, else the formatting's default."""
        if key in self.columns:
            return self.columns[key]
        if key in ("chosen", "rejected") and self.ranking:
            return key
        return DEFAULT_COLUMNS.get(self.formatting, {}).get(key)

    def named(self, key: str) -> bool:
        """Whether dataset_info.json names the column explicitly (a missing named column is an error)."""
        return key in self.columns

    def tag(self, key: str) -> str:
        return self.tags.get(key) or DEFAULT_TAGS.get(self.formatting, DEFAULT_TAGS["sharegpt"])[key]

    def __str__(self) -> str:
        return self.name


def split_names(value: str | list[str] | None) -> list[str]:
    """`dataset: a, b` (or a YAML list) as a list of names."""
    if value is None:
        return []
    items = value if isinstance(value, (list, tuple)) else str(value).split(",")
    return [str(item).strip() for item in items if str(item).strip()]


def read_dataset_info(dataset_dir: str) -> dict[str, Any] | None:
    """The parsed dataset_info.json of dataset_dir; None when there is none."""
    path = os.path.join(dataset_dir, INFO_FILE)
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            info = json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"cannot read {path}: {exc}") from None
    if not isinstance(info, dict):
        raise DataError(f"{path}: the top level must be an object mapping dataset names to their descriptions")
    return info


def _local_path(name: str, dataset_dir: str) -> str | None:
    for candidate in (name, os.path.join(dataset_dir, name)):
        if os.path.exists(candidate):
            return os.path.abspath(candidate)
    return None


def _check_keys(where: str, entry: dict[str, Any], allowed: tuple[str, ...], section: str) -> list[str]:
    problems = []
    for key in entry:
        if key not in allowed:
            hint = did_you_mean(key, allowed)
            label = f"{section}.{key}" if section else key
            problems.append(f"{where}: unknown key {label!r}" + (f" ({hint})" if hint else "")
                            + f"; known keys: {', '.join(allowed)}")
    return problems


def _parse_entry(name: str, entry: Any, dataset_dir: str, info_path: str) -> DatasetAttr:
    where = f"{info_path}, dataset {name!r}"
    if not isinstance(entry, dict):
        raise DataError(f"{where}: the description must be an object, got {type(entry).__name__}")
    problems = _check_keys(where, entry, TOP_KEYS, "")
    for section, allowed in (("columns", COLUMN_KEYS), ("tags", TAG_KEYS)):
        value = entry.get(section, {})
        if not isinstance(value, dict):
            problems.append(f"{where}: {section!r} must be an object")
            continue
        problems += _check_keys(where, value, allowed, section)
        for key, column in value.items():
            if column is not None and not isinstance(column, str):
                problems.append(f"{where}: {section}.{key} must be a string, got {column!r}")
    formatting = entry.get("formatting", "alpaca")
    if formatting not in FORMATTINGS:
        hint = did_you_mean(str(formatting), FORMATTINGS)
        problems.append(f"{where}: formatting {formatting!r} is not one of {', '.join(FORMATTINGS)}"
                        + (f" ({hint})" if hint else ""))
    if not isinstance(entry.get("ranking", False), bool):
        problems.append(f"{where}: ranking must be true or false, got {entry['ranking']!r}")
    num_samples = entry.get("num_samples")
    if num_samples is not None and (not isinstance(num_samples, int) or isinstance(num_samples, bool)
                                    or num_samples <= 0):
        problems.append(f"{where}: num_samples must be a positive integer, got {num_samples!r}")
    load_from = _load_from(entry, where, problems)
    if problems:
        raise DataError("\n".join(problems))
    source = entry[SOURCE_KEYS[load_from]]
    if load_from == "file":
        source = os.path.join(dataset_dir, source)
    elif load_from == "script":
        local = os.path.join(dataset_dir, source)
        source = local if os.path.exists(local) else source
    columns = {k: v for k, v in (entry.get("columns") or {}).items() if v}
    tags = {k: v for k, v in (entry.get("tags") or {}).items() if v}
    return DatasetAttr(
        name=name, load_from=load_from, source=source, formatting=formatting, ranking=bool(entry.get("ranking")),
        subset=entry.get("subset"), split=entry.get("split") or "train", folder=entry.get("folder"),
        num_samples=num_samples, columns=columns, tags=tags, where=where,
    )


def _load_from(entry: dict[str, Any], where: str, problems: list[str]) -> str:
    """Where the dataset comes from, with LLaMA-Factory's precedence: hub urls, then script_url, then file_name."""
    explicit = entry.get("load_from")
    if explicit is not None:
        if explicit not in LOAD_FROM:
            hint = did_you_mean(str(explicit), LOAD_FROM)
            problems.append(f"{where}: load_from {explicit!r} is not one of {', '.join(LOAD_FROM)}"
                            + (f" ({hint})" if hint else ""))
            return "file"
        if not entry.get(SOURCE_KEYS[explicit]):
            problems.append(f"{where}: load_from {explicit!r} needs {SOURCE_KEYS[explicit]!r}")
        return explicit
    has = {key: bool(entry.get(SOURCE_KEYS[key])) for key in LOAD_FROM}
    use_ms = os.environ.get("USE_MODELSCOPE_HUB", "0").lower() in ("1", "true")
    use_om = os.environ.get("USE_OPENMIND_HUB", "0").lower() in ("1", "true")
    if has["ms_hub"] and (use_ms or not has["hf_hub"]):
        return "ms_hub"
    if has["om_hub"] and (use_om or not has["hf_hub"]):
        return "om_hub"
    if has["hf_hub"]:
        return "hf_hub"
    if has["script"]:
        return "script"
    if has["file"]:
        return "file"
    if entry.get("cloud_file_name"):
        problems.append(f"{where}: cloud_file_name (S3/GCS) is not supported; download the file and use file_name")
    else:
        problems.append(f"{where}: says nowhere to read the data from; give file_name (a file or folder in the "
                        "dataset_dir) or hf_hub_url / ms_hub_url / om_hub_url / script_url")
    return "file"


def get_dataset_attrs(names: str | list[str] | None, dataset_dir: str) -> list[DatasetAttr]:
    """The descriptions of the named datasets, in order; raises DataError for an unknown name or a bad entry."""
    names = split_names(names)
    if not names:
        return []
    info = read_dataset_info(dataset_dir)
    info_path = os.path.join(dataset_dir, INFO_FILE)
    attrs = []
    for name in names:
        if info is not None and name in info:
            attrs.append(_parse_entry(name, info[name], dataset_dir, info_path))
            continue
        local = _local_path(name, dataset_dir)
        if local is not None:
            attrs.append(DatasetAttr(name=name, load_from="file", source=local, formatting="auto", where=local))
            continue
        if info is None:
            raise DataError(
                f"dataset {name!r} is neither a file nor defined: there is no {info_path}; "
                "give the path of a data file, or set dataset_dir to the folder holding dataset_info.json"
            )
        defined = ranked(name, info)
        listed = ", ".join(defined[:SHOWN_NAMES]) if defined else "none"
        if len(defined) > SHOWN_NAMES:
            listed += f", ... ({len(defined) - SHOWN_NAMES} more)"
        hint = did_you_mean(name, info)
        raise DataError(
            f"dataset {name!r} is not defined in {info_path} and is not a file"
            + (f" ({hint})" if hint else "")
            + f"; defined datasets (nearest first): {listed}"
        )
    return attrs
