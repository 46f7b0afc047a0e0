"""`get_dataset`: from the data options to tokenized training and evaluation sets.

For each dataset named in `dataset` / `eval_dataset`: read (readers) → convert and encode in one batched pass
(converters + processors, cached by `datasets`) → count and drop the rows with problems (a malformed row stops the
run and is named) → mix (mix_strategy) → pack (packing) → split off val_size. With tokenized_path, the result is
saved there and later runs load it instead of doing the work again.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from tunefactory.data.converters import Converter, detect_format
from tunefactory.data.dataset_info import DatasetAttr, get_dataset_attrs
from tunefactory.data.media import MediaOptions
from tunefactory.data.processors import AUX_COLUMNS, Encoder, RowProcessor, decode_problem, features_of
from tunefactory.errors import DataError

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)

STAGE_LAYOUTS = {"pt": "pt", "sft": "supervised", "rm": "pairwise", "dpo": "pairwise", "kto": "kto",
                 "ppo": "unsupervised"}
LAYOUT_NAMES = ("pt", "supervised", "pairwise", "kto", "unsupervised")
TOKENIZED_META = "tunefactory_tokenized.json"
SHOWN_PROBLEMS = 5


@dataclass
class DatasetStats:
    """What happened to one dataset's rows."""

    name: str
    rows: int = 0
    kept: int = 0
    dropped: dict[str, int] = field(default_factory=dict)  # kind -> rows
    examples: dict[str, list[str]] = field(default_factory=dict)  # kind -> the first few such problems, rendered
    malformed: int = 0  # rows that stop a run (a column missing or of the wrong type, an unknown role)
    truncated: int = 0  # rows longer than cutoff_len (kept, truncated)
    longest: int = 0  # tokens of the longest row before truncation
    cutoff_len: int = 0


@dataclass
class DatasetModule:
    """What the training runner takes: the training set, the evaluation set, and each named evaluation set.

    Also: ``predict_dataset`` (sft with do_predict and predict_with_generate: the eval sets as generation prompts),
    ``data_collator`` (the stage's collator) and ``stats`` (what happened to each dataset's rows).
    """

    train_dataset: Any = None
    eval_dataset: Any = None
    eval_datasets: dict[str, Any] = field(default_factory=dict)
    predict_dataset: Any = None
    data_collator: Any = None
    stats: list[DatasetStats] = field(default_factory=list)


def layout_for(stage: str, config: RunConfig | None = None) -> str:
    """The processor layout of a stage; sft predicting with generation uses the unsupervised layout."""
    if stage in LAYOUT_NAMES:
        return stage
    if stage not in STAGE_LAYOUTS:
        raise DataError(f"unknown stage {stage!r} for the data pipeline; use one of {', '.join(STAGE_LAYOUTS)}")
    if stage == "sft" and config is not None:
        training = config.training
        if getattr(training, "predict_with_generate", False) and not getattr(training, "do_train", False):
            return "unsupervised"
    return STAGE_LAYOUTS[stage]


def packing_mode(layout: str, config: RunConfig) -> str | None:
    """None (no packing), "plain" or "neat"; pre-training packs unless packing is false."""
    data = config.data
    packing = data.packing if data.packing is not None else layout == "pt"
    if data.neat_packing:
        packing = True
    if not packing:
        return None
    if layout not in ("pt", "supervised"):
        raise DataError(f"packing works for the pt and sft stages only (this stage uses {layout} rows); "
                        "set packing and neat_packing to false")
    return "neat" if data.neat_packing else "plain"


def _workers(config: RunConfig, rows: int | None) -> int | None:
    workers = config.data.preprocessing_num_workers
    if not workers or workers <= 1 or (rows is not None and rows < 2 * workers):
        return None
    return workers


def _column_names(raw: Any) -> tuple[list[str], dict[str, Any] | None]:
    names = raw.column_names
    first = None
    if names is None or raw.__class__.__name__ == "IterableDataset":
        try:
            first = next(iter(raw))
        except StopIteration:
            raise DataError("the dataset has no rows") from None
        names = names or list(first)
    elif len(raw):
        first = raw[0]
    return list(names), first


def encoder_for(config: RunConfig, tokenizer: Any, template: Any, layout: str, processor: Any = None) -> Encoder:
    data = config.data
    return Encoder(template, tokenizer, layout, cutoff_len=data.cutoff_len, train_on_prompt=data.train_on_prompt,
                   mask_history=data.mask_history, processor=processor,
                   media_options=MediaOptions.from_config(config))


def process_one(attr: DatasetAttr, config: RunConfig, encoder: Encoder, *, raw: Any = None) -> Any:
    """One dataset read, converted and encoded, with the bookkeeping columns still in (see `account`)."""
    from tunefactory.data.readers import read_dataset

    data = config.data
    if raw is None:
        raw = read_dataset(attr, config)
    names, first = _column_names(raw)
    if attr.formatting == "auto":
        detect_format(attr, names, first)
    converter = Converter(attr, encoder.layout, data.media_dir or data.dataset_dir)
    converter.check_columns(names)
    streaming = raw.__class__.__name__ == "IterableDataset"
    workers = None if streaming else _workers(config, len(raw))
    function = RowProcessor(converter, encoder, strict=streaming, batch_tokenize=workers is None)
    kwargs: dict[str, Any] = {"batched": True, "with_indices": True, "batch_size": data.preprocessing_batch_size,
                              "remove_columns": names, "features": features_of(encoder.layout)}
    if not streaming:
        kwargs.update(num_proc=workers, load_from_cache_file=not data.overwrite_cache,
                      desc=f"Converting and tokenizing {attr.name}")
        if not raw.cache_files:  # rows read into memory (JSON): the result still goes to a cache file
            kwargs.update(_cache_target(raw, function, kwargs, config))
    return raw.map(function, **kwargs)


def _cache_target(raw: Any, function: Any, kwargs: dict[str, Any], config: RunConfig) -> dict[str, Any]:
    """A cache file and fingerprint for mapping an in-memory dataset, derived from its fingerprint and the work."""
    import datasets
    from datasets.fingerprint import Hasher

    fingerprint = Hasher.hash([raw._fingerprint, function, kwargs["batch_size"], kwargs["remove_columns"],
                               kwargs["features"]])
    folder = os.path.join(config.model.cache_dir or str(datasets.config.HF_DATASETS_CACHE), "tunefactory")
    os.makedirs(folder, exist_ok=True)
    return {"cache_file_name": os.path.join(folder, f"processed-{fingerprint}.arrow"), "new_fingerprint": fingerprint}


def account(processed: Any, attr: DatasetAttr, cutoff_len: int, *, raise_fatal: bool = True,
            log: bool = True) -> tuple[Any, DatasetStats]:
    """Count the problems and truncations of a processed dataset, drop the rows with problems, remove the
    bookkeeping columns. A malformed row raises DataError (with ``raise_fatal``)."""
    import pyarrow.compute as pc

    stats = DatasetStats(attr.name, rows=len(processed), cutoff_len=cutoff_len)
    table = processed.select_columns(list(AUX_COLUMNS)).with_format("arrow")[:]  # in order, whatever the mapping
    problem_col, row_col, length_col = table.column("_problem"), table.column("_row"), table.column("_length")
    if len(table):
        stats.longest = int(pc.max(length_col).as_py() or 0)
        over = pc.greater(length_col, cutoff_len)
    has_problem = pc.not_equal(problem_col, "")
    bad_texts = pc.filter(problem_col, has_problem).to_pylist() if len(table) else []
    bad_rows = pc.filter(row_col, has_problem).to_pylist() if len(table) else []
    fatal: list[str] = []
    for text, row in zip(bad_texts, bad_rows, strict=True):
        problem = decode_problem(text)
        rendered = problem.render(row)
        if problem.fatal:
            stats.malformed += 1
            if len(fatal) < SHOWN_PROBLEMS:
                fatal.append(rendered)
        stats.dropped[problem.kind] = stats.dropped.get(problem.kind, 0) + 1
        shown = stats.examples.setdefault(problem.kind, [])
        if len(shown) < SHOWN_PROBLEMS:
            shown.append(rendered)
    if len(table):
        kept_mask = pc.invert(has_problem)
        stats.truncated = int(pc.sum(pc.and_(over, kept_mask)).as_py() or 0)
    stats.kept = stats.rows - len(bad_texts)
    where = f"dataset {attr.name!r} ({attr.source})"
    if fatal and raise_fatal:
        count = stats.malformed
        more = f"\n  ... and {count - len(fatal)} more" if count > len(fatal) else ""
        raise DataError(f"{where} has {count} malformed row{'s' if count != 1 else ''}:\n  "
                        + "\n  ".join(fatal) + more)
    if bad_texts:
        keep = pc.indices_nonzero(pc.invert(has_problem)).to_pylist()
        processed = processed.select(keep)
        if log:
            logger.warning("%s: dropped %d of %d rows: %s", where, len(bad_texts), stats.rows, _reasons(stats))
    if stats.truncated and log:
        logger.info("%s: %d rows are longer than cutoff_len %d and were truncated (longest: %d tokens)", where,
                    stats.truncated, cutoff_len, stats.longest)
    processed = processed.remove_columns(list(AUX_COLUMNS))
    if raise_fatal and stats.rows and not stats.kept:
        raise DataError(f"{where} has no rows left: all {stats.rows} were dropped: {_reasons(stats)}")
    if raise_fatal and not stats.rows:
        raise DataError(f"{where} has no rows")
    return processed, stats


def _reasons(stats: DatasetStats) -> str:
    parts = [f"{count} {kind} (first: {stats.examples[kind][0]})" for kind, count in
             Counter(stats.dropped).most_common()]
    text = "; ".join(parts)
    if stats.longest:
        text += f"; the longest row has {stats.longest} tokens"
    return text


def _drop_streaming(processed: Any) -> Any:
    return processed.filter(lambda problem: not problem, input_columns="_problem").remove_columns(list(AUX_COLUMNS))


def _pack(dataset: Any, layout: str, config: RunConfig) -> Any:
    from tunefactory.data.packing import PretrainGrouper, SupervisedPacker, packed_features

    mode = packing_mode(layout, config)
    data = config.data
    streaming = dataset.__class__.__name__ == "IterableDataset"
    kwargs: dict[str, Any] = {"batched": True, "batch_size": data.preprocessing_batch_size,
                              "remove_columns": dataset.column_names}
    if not streaming:
        kwargs.update(num_proc=_workers(config, len(dataset)), load_from_cache_file=not data.overwrite_cache)
    if layout == "pt":
        grouping = {"neat": "neat", "plain": "concat", None: "truncate"}[mode]
        kwargs["features"] = packed_features(False)
        if not streaming:
            kwargs["desc"] = "Grouping texts" if grouping != "truncate" else "Truncating texts"
        return dataset.map(PretrainGrouper(data.cutoff_len, grouping), **kwargs)
    if mode is None:
        return dataset
    kwargs["features"] = packed_features(True)
    if not streaming:
        kwargs["desc"] = "Packing"
    return dataset.map(SupervisedPacker(data.cutoff_len), **kwargs)


def _prepare(attrs: list[DatasetAttr], config: RunConfig, encoder: Encoder, stats: list[DatasetStats]) -> list[Any]:
    prepared = []
    for attr in attrs:
        processed = process_one(attr, config, encoder)
        if processed.__class__.__name__ == "IterableDataset":
            prepared.append(_drop_streaming(processed))
            continue
        processed, one = account(processed, attr, config.data.cutoff_len)
        stats.append(one)
        prepared.append(processed)
    return prepared


def get_dataset(config: RunConfig, tokenizer: Any, template: Any, stage: str, *, processor: Any = None
                ) -> DatasetModule:
    """The tokenized training and evaluation sets the data options describe, for a stage (pt, sft, rm, dpo, kto,
    ppo; or a layout name)."""
    from tunefactory.data.collators import get_collator
    from tunefactory.data.split import mix, split_validation

    if hasattr(tokenizer, "tokenizer") and not hasattr(tokenizer, "encode"):  # a TokenizerModule
        processor = processor if processor is not None else getattr(tokenizer, "processor", None)
        tokenizer = tokenizer.tokenizer
    data = config.data
    layout = layout_for(stage, config)
    collator = get_collator(stage, config, tokenizer, template=template, processor=processor,
                            pad_to_multiple_of=8 if getattr(config.training, "do_train", False) else None)
    if data.tokenized_path and os.path.isdir(data.tokenized_path) and not data.overwrite_cache:
        module = load_tokenized(data.tokenized_path, layout)
        module.data_collator = collator
        return module
    if data.tokenized_path and data.streaming:
        raise DataError("tokenized_path cannot be used with streaming; turn one of them off")
    train_attrs = get_dataset_attrs(data.dataset, data.dataset_dir)
    eval_attrs = get_dataset_attrs(data.eval_dataset, data.dataset_dir)
    if not train_attrs and not eval_attrs:
        raise DataError("no dataset given: set `dataset` (and optionally `eval_dataset`) to names from "
                        f"{os.path.join(data.dataset_dir, 'dataset_info.json')} or to data file paths")
    if data.val_size and eval_attrs:
        raise DataError("val_size splits the training data into a validation set, and eval_dataset gives one; "
                        "set only one of them")
    packing_mode(layout, config)  # a bad combination fails before any work
    encoder = encoder_for(config, tokenizer, template, layout, processor)
    seed = config.training.seed
    module = DatasetModule(data_collator=collator)
    if train_attrs:
        train = mix(_prepare(train_attrs, config, encoder, module.stats), data.mix_strategy, data.interleave_probs,
                    seed)
        module.train_dataset = _pack(train, layout, config)
    for attr in eval_attrs:
        module.eval_datasets[attr.name] = _pack(_prepare([attr], config, encoder, module.stats)[0], layout, config)
    if module.eval_datasets:
        import datasets

        sets = list(module.eval_datasets.values())
        module.eval_dataset = sets[0] if len(sets) == 1 else datasets.concatenate_datasets(sets)
    if data.streaming and module.train_dataset is not None:
        module.train_dataset = module.train_dataset.shuffle(buffer_size=data.buffer_size, seed=seed)
    if not module.eval_datasets and data.val_size and module.train_dataset is not None:
        module.train_dataset, module.eval_dataset = split_validation(module.train_dataset, data.val_size, seed,
                                                                     bool(data.streaming))
    training = config.training
    if (layout == "supervised" and eval_attrs and getattr(training, "do_predict", False)
            and getattr(training, "predict_with_generate", False)):
        predict_encoder = encoder_for(config, tokenizer, template, "unsupervised", processor)
        module.predict_dataset = mix(_prepare(eval_attrs, config, predict_encoder, []), "concat", None, seed)
    if module.train_dataset is not None and not data.streaming:
        _log_example(module.train_dataset, tokenizer, layout)
    if data.tokenized_path:
        save_tokenized(module, data.tokenized_path, layout)
    return module


def _log_example(dataset: Any, tokenizer: Any, layout: str) -> None:
    if not logger.isEnabledFor(logging.INFO) or not len(dataset):
        return
    row = dataset[0]
    key = "chosen_input_ids" if layout == "pairwise" else "input_ids"
    try:
        text = tokenizer.decode(row[key], skip_special_tokens=False)
    except Exception:  # a tokenizer that cannot decode must not stop training
        return
    logger.info("first training example (%d tokens): %s", len(row[key]), text[:500] + ("..." if len(text) > 500
                                                                                        else ""))


def save_tokenized(module: DatasetModule, path: str, layout: str) -> None:
    """Save the tokenized sets to ``path`` (a DatasetDict) for later runs."""
    import datasets

    parts: dict[str, Any] = {}
    if module.train_dataset is not None:
        parts["train"] = module.train_dataset
    eval_names = list(module.eval_datasets)
    for index, name in enumerate(eval_names):
        parts[f"eval_{index}"] = module.eval_datasets[name]
    if not eval_names and module.eval_dataset is not None:
        parts["validation"] = module.eval_dataset
    datasets.DatasetDict(parts).save_to_disk(path)
    meta = {"layout": layout, "eval_names": eval_names}
    with open(os.path.join(path, TOKENIZED_META), "w", encoding="utf-8") as handle:
        json.dump(meta, handle)
    logger.info("saved the tokenized datasets to %s; runs with tokenized_path: %s reuse them "
                "(set overwrite_cache: true to rebuild)", path, path)


def load_tokenized(path: str, layout: str) -> DatasetModule:
    """The sets `save_tokenized` wrote; the dataset options are not read again."""
    import datasets

    meta_path = os.path.join(path, TOKENIZED_META)
    if not os.path.isfile(meta_path):
        raise DataError(f"tokenized_path {path} exists but was not written by tunefactory (no {TOKENIZED_META}); "
                        "point tokenized_path at a new folder, or set overwrite_cache: true to replace it")
    with open(meta_path, encoding="utf-8") as handle:
        meta = json.load(handle)
    if meta.get("layout") != layout:
        raise DataError(f"tokenized_path {path} holds {meta.get('layout')} data but this stage needs {layout} data; "
                        "use another tokenized_path, or set overwrite_cache: true to rebuild it")
    saved = datasets.load_from_disk(path)
    module = DatasetModule(train_dataset=saved.get("train"))
    for index, name in enumerate(meta.get("eval_names", [])):
        module.eval_datasets[name] = saved[f"eval_{index}"]
    if module.eval_datasets:
        sets = list(module.eval_datasets.values())
        module.eval_dataset = sets[0] if len(sets) == 1 else datasets.concatenate_datasets(sets)
    else:
        module.eval_dataset = saved.get("validation")
    logger.info("loaded the tokenized datasets from %s (dataset options are not read again; set overwrite_cache: "
                "true to rebuild)", path)
    return module
