"""The check after saving: does the export, loaded by plain transformers, behave like the merged model in memory?

Before anything is saved (and before a quantized export quantizes), the merged model scores a short conversation
rendered by the chat template that will be saved (plain text for a model without one). After saving, a separate
process loads the export with transformers alone (`reload_check.py`), renders the same conversation with the saved
tokenizer and chat template, and scores it. The check passes when

- the saved tokenizer and chat template give exactly the token ids the in-memory ones gave;
- unquantized: the logits agree within a tolerance for the dtype, relative to the largest logit;
- quantized: the perplexity of the conversation is reported beside the unquantized model's (no threshold: a random
  or tiny model says little through it).

The result goes to ``export_check.json`` and is printed.
"""

from __future__ import annotations

import json
import logging
import math
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

# relative tolerance of the logits, by dtype: max |difference| <= TOLERANCE * max(1, max |logit|)
TOLERANCE = {"float32": 1e-4, "float16": 5e-3, "bfloat16": 3e-2}
CHECK_TIMEOUT_S = 3600

CONVERSATION = [
    {"role": "system", "content": "You are a helpful assistant."},
    {"role": "user", "content": "Who are you?"},
    {"role": "assistant", "content": "I am an assistant exported by tunefactory. 我可以回答问题。"},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "The answer is 5."},
]
PLAIN_TEXT = "The model reads the question with great care, and then answers it in plain English."


@dataclass
class Reference:
    """What the merged in-memory model gave for the check sequence."""

    messages: list[dict[str, Any]] | None
    text: str
    ids: list[int]
    logits: Any  # torch.Tensor (sequence x vocabulary), float32 on the CPU
    perplexity: float
    dtype: str


def _render(tokenizer: Any, chat_template: str | None) -> tuple[list[dict[str, Any]] | None, str, list[int]]:
    if chat_template is None:
        return None, PLAIN_TEXT, list(tokenizer(PLAIN_TEXT)["input_ids"])
    for messages in (CONVERSATION, CONVERSATION[1:]):  # some templates refuse a system prompt
        try:
            text = tokenizer.apply_chat_template(messages, chat_template=chat_template, tokenize=False)
        except Exception as exc:  # the template's own refusal (raise_exception) or a rendering error
            last = exc
            continue
        return messages, text, list(tokenizer(text, add_special_tokens=False)["input_ids"])
    raise RuntimeError(f"the chat template cannot render the check conversation: {last}")


def perplexity(logits: Any, ids: list[int]) -> float:
    import torch

    nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    return math.exp(float(nll))


def reference(model: Any, tokenizer: Any, chat_template: str | None) -> Reference:
    """Score the check sequence with ``model`` (call it before saving or quantizing)."""
    import torch

    messages, text, ids = _render(tokenizer, chat_template)
    device = model.get_input_embeddings().weight.device  # where the inputs go, also when spread over devices
    if device.type == "meta":  # offloaded to disk: accelerate's hooks bring it in
        device = torch.device("cpu")
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=device)).logits[0].float().cpu()
    dtype = str(next(model.parameters()).dtype).removeprefix("torch.")
    return Reference(messages, text, ids, logits, perplexity(logits, ids), dtype)


def reload(export_dir: str | Path, ref: Reference, *, model_class: str, device_map: Any, attn_implementation: str |
           None, trust_remote_code: bool, want_logits: bool) -> tuple[dict[str, Any], Any]:
    """Run `reload_check.py` in a fresh interpreter; returns its result and the logits (or None)."""
    import torch

    script = Path(__file__).with_name("reload_check.py").read_text(encoding="utf-8")
    with tempfile.TemporaryDirectory(prefix="tunefactory-export-check-") as scratch:
        folder = Path(scratch)
        request = {
            "export_dir": str(Path(export_dir).resolve()),
            "messages": ref.messages,
            "text": ref.text,
            "model_class": model_class,
            "device_map": device_map,
            "attn_implementation": attn_implementation,
            "trust_remote_code": trust_remote_code,
            "result_path": str(folder / "result.json"),
            "logits_path": str(folder / "logits.pt") if want_logits else None,
        }
        (folder / "request.json").write_text(json.dumps(request), encoding="utf-8")
        # -c with the working folder a scratch one: nothing of tunefactory (or of the user's folder) on sys.path
        process = subprocess.run([sys.executable, "-c", script, str(folder / "request.json")], cwd=scratch,
                                 capture_output=True, text=True, timeout=CHECK_TIMEOUT_S)
        if process.returncode != 0:
            tail = "\n".join((process.stderr or process.stdout).strip().splitlines()[-15:])
            return {"error": f"plain transformers could not load and run the export:\n{tail}"}, None
        result = json.loads((folder / "result.json").read_text(encoding="utf-8"))
        logits = torch.load(folder / "logits.pt") if want_logits else None
    return result, logits


def compare(ref: Reference, result: dict[str, Any], logits: Any, *, quantized: bool) -> dict[str, Any]:
    """The check's verdict from the reference and the reloaded model's result."""
    record: dict[str, Any] = {"sequence_tokens": len(ref.ids), "dtype": ref.dtype,
                              "reference_perplexity": ref.perplexity}
    if "error" in result:
        return {**record, "passed": False, "reason": result["error"]}
    record.update(reloaded_dtype=result["dtype"], reloaded_perplexity=result["perplexity"],
                  reloaded_by=f"transformers {result['transformers']}", chat_template=ref.messages is not None,
                  reload_peak_rss_bytes=result.get("peak_rss_bytes"))
    if result.get("imported_tunefactory"):
        return {**record, "passed": False, "reason": "the reload imported tunefactory; it must use transformers alone"}
    if result["ids"] != ref.ids:
        first = next((i for i, (a, b) in enumerate(zip(result["ids"], ref.ids, strict=False)) if a != b),
                     min(len(result["ids"]), len(ref.ids)))
        return {**record, "passed": False,
                "reason": f"the saved tokenizer and chat template give other token ids (first difference at token "
                          f"{first}: {len(result['ids'])} ids against {len(ref.ids)})"}
    if quantized:
        record["perplexity_change"] = result["perplexity"] / ref.perplexity - 1
        return {**record, "passed": True}
    scale = max(1.0, float(ref.logits.abs().max()))
    difference = float((logits - ref.logits).abs().max())
    tolerance = TOLERANCE.get(ref.dtype, 1e-2) * scale
    agreement = float((logits.argmax(-1) == ref.logits.argmax(-1)).float().mean())
    record.update(max_abs_logit_difference=difference, tolerance=tolerance, top1_agreement=agreement)
    if difference > tolerance:
        return {**record, "passed": False,
                "reason": f"the reloaded model's logits differ by up to {difference:.3g} (tolerance {tolerance:.3g})"}
    return {**record, "passed": True}


def summary(check: dict[str, Any]) -> str:
    """One line for the terminal."""
    if not check.get("passed"):
        return f"check FAILED: {check.get('reason', 'unknown reason')}"
    if "perplexity_change" in check:
        return (f"check passed: plain transformers reloads the quantized export; perplexity "
                f"{check['reloaded_perplexity']:.4g} against {check['reference_perplexity']:.4g} unquantized "
                f"({check['perplexity_change']:+.1%})")
    return (f"check passed: plain transformers reloads the export and its logits match the merged model "
            f"(max |difference| {check['max_abs_logit_difference']:.3g} <= {check['tolerance']:.3g}, "
            f"top-1 agreement {check['top1_agreement']:.0%})")
