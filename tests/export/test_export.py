"""Whole exports of tiny models, each reloaded by plain transformers: adapters merged in order, shards and index,
the legacy format, dtypes, a resized vocabulary, a fully fine-tuned output folder, the hub push, the Modelfile."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch
from tunefactory.export.exporter import export, merged_model, plan, run
from tunefactory.export.target import MARKER

from tests.export.conftest import make_adapter, make_config
from tests.export.gotemplate import render

pytestmark = pytest.mark.slow

MESSAGES = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "I am TinyFactory."},
            {"role": "user", "content": "What can you do?"}]
SYSTEM = "You are TinyFactory, a small assistant."


def shards_of(folder: Path, index_name: str) -> list[str]:
    index = json.loads((folder / index_name).read_text())
    return sorted(set(index["weight_map"].values()))


def plain_logits(folder: Path, ids: list[int]) -> torch.Tensor:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(str(folder), dtype="auto")
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


# -- LoRA adapters merged, sharded safetensors, chatting through plain transformers ----------------------------------


@pytest.fixture(scope="module")
def lora_export(tiny_llama, tmp_path_factory):
    root = tmp_path_factory.mktemp("lora_export")
    make_adapter(tiny_llama, root / "adapters" / "a_first", seed=11)
    second = make_adapter(tiny_llama, root / "b_second", seed=12, targets=("q_proj", "v_proj", "down_proj"))
    config = make_config(model_name_or_path=tiny_llama, adapter_folder=str(root / "adapters"),
                         adapter_name_or_path=second, template="chatml", default_system=SYSTEM,
                         export_dir=str(root / "out"), export_size=0.0005)
    record = export(config)
    return config, record, root


def test_the_check_passes_and_is_recorded(lora_export):
    config, record, root = lora_export
    check = record["check"]
    assert check["passed"] and check["max_abs_logit_difference"] <= check["tolerance"] == 1e-4
    assert check["top1_agreement"] == 1.0 and check["chat_template"] is True
    saved = json.loads((root / "out" / MARKER).read_text())
    assert saved["tool"] == "tunefactory" and saved["status"] == "finished" and saved["check"] == check
    assert [a["action"] for a in saved["load_report"]["adapters"]] == ["merged", "merged"]
    assert set(saved["files"]) == {p.name for p in (root / "out").iterdir()}


def test_adapters_are_merged_in_order(lora_export, tiny_llama):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    _, _, root = lora_export
    ids = [1, 40, 77, 300, 12, 9, 500]
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    for adapter in (root / "adapters" / "a_first", root / "b_second"):
        model = PeftModel.from_pretrained(model, str(adapter)).merge_and_unload()
    with torch.no_grad():
        expected = model(torch.tensor([ids])).logits[0]
    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    with torch.no_grad():
        unmerged = base(torch.tensor([ids])).logits[0]
    exported = plain_logits(root / "out", ids)
    assert torch.allclose(exported, expected, atol=1e-5)
    assert not torch.allclose(exported, unmerged, atol=1e-3)  # the adapters changed something


def test_shards_stay_under_export_size_with_an_index(lora_export):
    from safetensors import safe_open

    _, record, root = lora_export
    out = root / "out"
    shards = shards_of(out, "model.safetensors.index.json")
    assert len(shards) > 2 and record["weights"] == shards
    assert not (out / "model.safetensors").exists()
    limit = 0.0005 * 10**9
    for name in shards:
        with safe_open(str(out / name), "pt") as handle:
            sizes = [handle.get_slice(k).get_shape() for k in handle.keys()]  # noqa: SIM118
        tensors = [4 * int(torch.Size(s).numel()) for s in sizes]
        assert sum(tensors) <= limit or len(tensors) == 1, (name, tensors)  # a tensor bigger than a shard stands alone
    assert oct(os.stat(out / shards[0]).st_mode & 0o777) == oct(os.stat(out / "config.json").st_mode & 0o777)


def test_chatting_through_plain_transformers_matches_the_merged_model(lora_export):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    config, _, root = lora_export
    in_memory_plan = plan(config)
    model, _ = merged_model(config, in_memory_plan)
    template, tokenizer = in_memory_plan.template, in_memory_plan.tokenizer
    prompt = template.encode_prompt(tokenizer, MESSAGES)
    from tunefactory.inference.components import stop_token_ids

    eos, _ = stop_token_ids(tokenizer, template)
    ours = model.generate(torch.tensor([prompt]), max_new_tokens=16, do_sample=False, eos_token_id=eos,
                          pad_token_id=tokenizer.pad_token_id)[0, len(prompt):].tolist()

    plain_tokenizer = AutoTokenizer.from_pretrained(str(root / "out"))
    plain_model = AutoModelForCausalLM.from_pretrained(str(root / "out"))
    text = plain_tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    plain_prompt = plain_tokenizer(text, add_special_tokens=False)["input_ids"]
    theirs = plain_model.generate(torch.tensor([plain_prompt]), max_new_tokens=16)[0, len(plain_prompt):].tolist()
    assert plain_prompt == prompt
    assert SYSTEM in text  # the template's default system prompt travels with the chat template
    assert theirs == ours and len(ours) > 0


def test_tokenizer_files_another_tool_needs(lora_export):
    from transformers import AutoTokenizer, GPT2Tokenizer

    config, _, root = lora_export
    out = root / "out"
    chat = (out / "chat_template.jinja").read_text()
    assert chat.startswith("{#- tunefactory chat template 'chatml'")
    tokenizer_config = json.loads((out / "tokenizer_config.json").read_text())
    assert tokenizer_config["chat_template"] == chat
    assert tokenizer_config["tokenizer_class"] == "PreTrainedTokenizerFast"  # known to transformers 4 and 5
    assert "<|im_end|>" in tokenizer_config["additional_special_tokens"]
    fast = AutoTokenizer.from_pretrained(str(out))
    slow = GPT2Tokenizer(vocab=str(out / "vocab.json"), merges=str(out / "merges.txt"))  # what a slow tokenizer reads
    text = "The model reads 一个问题 with great care.\n    return x + 1"
    assert slow(text, add_special_tokens=False)["input_ids"] == fast(text, add_special_tokens=False)["input_ids"]
    generation = json.loads((out / "generation_config.json").read_text())
    im_end = fast.convert_tokens_to_ids("<|im_end|>")
    assert im_end in (generation["eos_token_id"] if isinstance(generation["eos_token_id"], list)
                      else [generation["eos_token_id"]])


def test_the_modelfile_renders_like_the_chat_template(lora_export):
    config, _, root = lora_export
    text = (root / "out" / "Modelfile").read_text()
    lines = text.splitlines()
    assert "FROM ." in lines and 'PARAMETER stop "<|im_end|>"' in lines
    assert f'SYSTEM """{SYSTEM}"""' in text
    go = text.split('TEMPLATE """', 1)[1].split('"""', 1)[0]
    in_memory_plan = plan(config)
    ollama_messages = [{"Role": m["role"], "Content": m["content"]} for m in MESSAGES]
    rendered = render(go, {"System": SYSTEM, "Messages": ollama_messages})
    assert rendered == in_memory_plan.template.render(in_memory_plan.tokenizer, MESSAGES, add_generation_prompt=True)


# -- legacy .bin, bf16, tied embeddings, a vocabulary grown by add_special_tokens ------------------------------------


def test_legacy_bf16_export_with_added_tokens(tiny_qwen3, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    out = tmp_path / "out"
    config = make_config(model_name_or_path=tiny_qwen3, template="qwen3", export_dir=str(out),
                         export_legacy_format=True, infer_dtype="bfloat16", export_device="auto",
                         add_special_tokens="<task_a>,<task_b>", export_size=0.0001)
    record = export(config)
    assert record["check"]["passed"] and record["check"]["dtype"] == "bfloat16", record["check"]
    assert record["format"] == "bin" and all(name.endswith(".bin") for name in record["weights"])
    assert not list(out.glob("*.safetensors")) and (out / "pytorch_model.bin.index.json").is_file()
    assert shards_of(out, "pytorch_model.bin.index.json") == record["weights"]
    tokenizer = AutoTokenizer.from_pretrained(str(out))
    model = AutoModelForCausalLM.from_pretrained(str(out), dtype="auto")
    assert model.dtype == torch.bfloat16 and model.config.tie_word_embeddings
    assert tokenizer.convert_tokens_to_ids("<task_b>") < model.get_input_embeddings().weight.shape[0]
    assert model.get_input_embeddings().weight.shape[0] == record["load_report"]["vocab"]["rows_after"] > 1024


# -- a LoRA adapter trained with added tokens (its embeddings saved whole, padded as on a GPU) ----------------------


def test_an_adapter_with_a_resized_vocabulary(tiny_llama, tmp_path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    tokenizer.add_special_tokens({"extra_special_tokens": ["<tool_a>", "<tool_b>"]},
                                 replace_extra_special_tokens=False)
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", seed=5, tokenizer=tokenizer, rows=1088)
    config = make_config(model_name_or_path=tiny_llama, adapter_name_or_path=adapter, template="chatml",
                         add_special_tokens="<tool_a>,<tool_b>", export_dir=str(tmp_path / "out"))
    record = export(config)
    assert record["check"]["passed"], record["check"]
    model = AutoModelForCausalLM.from_pretrained(str(tmp_path / "out"))
    assert model.get_input_embeddings().weight.shape[0] == 1088
    saved = AutoTokenizer.from_pretrained(str(tmp_path / "out"))
    assert saved.convert_tokens_to_ids("<tool_b>") == tokenizer.convert_tokens_to_ids("<tool_b>")
    from peft import PeftModel

    base = AutoModelForCausalLM.from_pretrained(tiny_llama)
    base.resize_token_embeddings(1088, mean_resizing=False)
    expected = PeftModel.from_pretrained(base, adapter).merge_and_unload()
    ids = [1, saved.convert_tokens_to_ids("<tool_a>"), 40, 77]
    with torch.no_grad():
        assert torch.allclose(plain_logits(tmp_path / "out", ids), expected(torch.tensor([ids])).logits[0],
                              atol=1e-5)


# -- a fully fine-tuned (or freeze-tuned) output folder, exported by the command's runner, then pushed ---------------


@pytest.fixture
def full_output(tiny_qwen2, tmp_path):
    """What a full or freeze fine-tuning run leaves in output_dir: the whole model (changed, with a grown
    vocabulary), the tokenizer with the template's chat_template, the manifest and a checkpoint."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "saves" / "full"
    tokenizer = AutoTokenizer.from_pretrained(tiny_qwen2)
    tokenizer.add_special_tokens({"extra_special_tokens": ["<answer>"]}, replace_extra_special_tokens=False)
    model = AutoModelForCausalLM.from_pretrained(tiny_qwen2)
    model.resize_token_embeddings(len(tokenizer), pad_to_multiple_of=64, mean_resizing=False)
    torch.manual_seed(7)
    with torch.no_grad():
        model.model.layers[1].mlp.down_proj.weight.add_(torch.randn_like(model.model.layers[1].mlp.down_proj.weight))
    model.save_pretrained(str(folder))
    tokenizer.save_pretrained(str(folder))
    (folder / "run_manifest.json").write_text(json.dumps({"status": "finished", "finetuning_type": "full"}))
    shutil.copytree(folder, folder / "checkpoint-2", ignore=shutil.ignore_patterns("checkpoint-*"))
    return folder, model


def test_a_full_fine_tuned_output_is_exported_and_pushed(full_output, tmp_path, monkeypatch, capsys):
    import huggingface_hub
    import tunefactory.export.hub as hub

    folder, model = full_output
    uploads = []

    class FakeApi:
        def __init__(self, endpoint=None, token=None):
            uploads.append(("token", token))

        def create_repo(self, repo_id, exist_ok=False):
            uploads.append(("create", repo_id, exist_ok))
            return huggingface_hub.RepoUrl(f"https://huggingface.co/{repo_id}")

        def upload_folder(self, repo_id, folder_path, commit_message=None):
            uploads.append(("upload", repo_id, sorted(os.listdir(folder_path))))

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(hub, "unreachable", lambda url: None)
    monkeypatch.setattr(huggingface_hub, "HfApi", FakeApi)
    out = tmp_path / "exported"
    config = make_config(model_name_or_path=str(folder), template="qwen", export_dir=str(out),
                         export_hub_model_id="someone/tiny-full", hf_hub_token="hf_test")
    assert run(config) == 0
    printed = capsys.readouterr().out
    assert f"exported {folder} to {out}: 1 safetensors shard(s), float32" in printed
    assert "check passed" in printed and "pushed to https://huggingface.co/someone/tiny-full" in printed
    assert uploads[0] == ("token", "hf_test") and uploads[1] == ("create", "someone/tiny-full", True)
    assert uploads[2][0] == "upload" and {"model.safetensors", "Modelfile", MARKER} <= set(uploads[2][2])
    ids = [5, 40, 77, 300]
    with torch.no_grad():
        assert torch.allclose(plain_logits(out, ids), model(torch.tensor([ids])).logits[0], atol=1e-5)
    assert "checkpoint-2" not in os.listdir(out) and "run_manifest.json" not in os.listdir(out)


@pytest.mark.gpu
def test_export_device_auto_merges_on_the_accelerator(tiny_llama, tmp_path):
    adapter = make_adapter(tiny_llama, tmp_path / "adapter", seed=21)
    config = make_config(model_name_or_path=tiny_llama, adapter_name_or_path=adapter, template="chatml",
                         export_device="auto", infer_dtype="bfloat16", export_dir=str(tmp_path / "out"))
    record = export(config)
    assert record["load_report"]["device_map"] == "auto" and record["dtype"] == "bfloat16"
    assert record["check"]["passed"], record["check"]
