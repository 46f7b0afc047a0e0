"""`tunefactory data check`: every problem of the configured datasets, without training.

Each dataset is read, converted and encoded exactly as training does it; instead of stopping at the first
malformed row, everything is counted: malformed rows (with row number and column), rows that training would drop
(roles out of order, empty assistant turns, nothing left after truncation, ...), rows truncated by cutoff_len and
the longest row, and dataset-level errors (unreadable files, columns missing, unknown names).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from tunefactory.data.loader import DatasetStats
from tunefactory.errors import DataError


@dataclass
class CheckReport:
    stats: list[DatasetStats] = field(default_factory=list)
    sources: dict[str, str] = field(default_factory=dict)  # dataset name -> where it was read from
    errors: list[tuple[str, str]] = field(default_factory=list)  # (dataset name, message)

    @property
    def problem_count(self) -> int:
        rows = sum(sum(s.dropped.values()) + s.truncated for s in self.stats)
        return rows + len(self.errors)

    def render(self) -> str:
        lines: list[str] = []
        for name, message in self.errors:
            lines.append(f"dataset {name!r}: cannot be used")
            lines += ["  " + line for line in message.splitlines()]
        for stats in self.stats:
            where = self.sources.get(stats.name, "")
            lines.append(f"dataset {stats.name!r}{f' ({where})' if where else ''}: {stats.rows} rows, "
                         f"{stats.kept} usable")
            if stats.malformed:
                lines.append(f"  malformed rows: {stats.malformed} (training stops at the first of them)")
            for kind, count in sorted(stats.dropped.items(), key=lambda item: -item[1]):
                lines.append(f"  {kind}: {count} row{'s' if count != 1 else ''}")
                shown = stats.examples.get(kind, [])
                lines += [f"    {text}" for text in shown]
                if count > len(shown):
                    lines.append(f"    ... and {count - len(shown)} more")
            if stats.truncated:
                lines.append(f"  truncated by cutoff_len {stats.cutoff_len}: {stats.truncated} row"
                             f"{'s' if stats.truncated != 1 else ''} (the longest has {stats.longest} tokens)")
            elif stats.rows:
                lines.append(f"  longest row: {stats.longest} tokens (cutoff_len {stats.cutoff_len})")
        count = self.problem_count
        lines.append(f"{count} problem{'s' if count != 1 else ''} found" if count else "no problems found")
        return "\n".join(lines)


def check_data(config: Any, tokenizer: Any, template: Any, stage: str | None = None,
               processor: Any = None) -> CheckReport:
    """Read, convert and encode every dataset of ``config`` (dataset and eval_dataset) and report what is wrong."""
    from tunefactory.data.dataset_info import get_dataset_attrs, split_names
    from tunefactory.data.loader import account, encoder_for, layout_for, process_one

    data = dataclasses.replace(config.data, streaming=False)
    config = dataclasses.replace(config, data=data)
    layout = layout_for(stage or config.finetuning.stage, config)
    encoder = encoder_for(config, tokenizer, template, layout, processor)
    report = CheckReport()
    names = split_names(data.dataset) + [n for n in split_names(data.eval_dataset) if n not in split_names(
        data.dataset)]
    if not names:
        report.errors.append(("", "no dataset given: set `dataset` in the config"))
    for name in names:
        try:
            attr = get_dataset_attrs([name], data.dataset_dir)[0]
            report.sources[name] = attr.source
            processed = process_one(attr, config, encoder)
            _, stats = account(processed, attr, data.cutoff_len, raise_fatal=False, log=False)
            report.stats.append(stats)
        except DataError as exc:
            report.errors.append((name, str(exc)))
    return report
