"""Reload an export with plain transformers and score a conversation; run as a script, in its own process.

    python reload_check.py REQUEST.json

This file imports nothing from tunefactory (the point is to see the export as another tool sees it), and it records
whether anything did. The request names the export folder, the conversation (or plain text, for a model without a
chat template), the model class, the device map, the attention implementation and where to write the result: the
token ids, the text the saved chat template rendered, the logits (float32) and the perplexity of the sequence.
"""

import json
import math
import sys


def peak_rss() -> int | None:
    """This process's peak resident memory since it started (VmHWM; not counting the parent's pages at fork)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def main(request_path: str) -> None:
    import torch
    import transformers

    with open(request_path, encoding="utf-8") as handle:
        request = json.load(handle)
    folder = request["export_dir"]
    trust = bool(request.get("trust_remote_code"))
    tokenizer = transformers.AutoTokenizer.from_pretrained(folder, trust_remote_code=trust)
    if request.get("messages") is not None:
        text = tokenizer.apply_chat_template(request["messages"], tokenize=False)
        ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    else:
        text = request["text"]
        ids = tokenizer(text)["input_ids"]
    cls = getattr(transformers, request.get("model_class") or "AutoModelForCausalLM")
    kwargs = {"dtype": "auto", "trust_remote_code": trust, "device_map": request.get("device_map") or "cpu"}
    if request.get("attn_implementation"):
        kwargs["attn_implementation"] = request["attn_implementation"]
    model = cls.from_pretrained(folder, **kwargs).eval()
    device = model.get_input_embeddings().weight.device
    if device.type == "meta":  # offloaded to disk: accelerate's hooks bring it in
        device = torch.device("cpu")
    with torch.no_grad():
        inputs = torch.tensor([ids], device=device)
        logits = model(input_ids=inputs).logits[0].float().cpu()
    nll = torch.nn.functional.cross_entropy(logits[:-1], torch.tensor(ids[1:]))
    result = {
        "ids": ids,
        "text": text,
        "perplexity": math.exp(float(nll)),
        "dtype": str(next(model.parameters()).dtype).removeprefix("torch."),
        "quantization": getattr(model.config, "quantization_config", None) is not None,
        "transformers": transformers.__version__,
        "imported_tunefactory": any(name == "tunefactory" or name.startswith("tunefactory.")
                                    for name in sys.modules),
    }
    result["peak_rss_bytes"] = peak_rss()
    if request.get("logits_path"):
        torch.save(logits, request["logits_path"])
    with open(request["result_path"], "w", encoding="utf-8") as handle:
        json.dump(result, handle)


if __name__ == "__main__":
    main(sys.argv[1])
