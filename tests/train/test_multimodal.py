"""Multimodal fine-tuning: which parts of a tiny LLaVA train under the media options, and a whole sft run with
images through the command line, then a chat about an image with the trained adapter."""

from __future__ import annotations

import json

import pytest
from tunefactory.registry import get_registry
from tunefactory.train.adapters import prepare_model

from .conftest import make_config


@pytest.fixture
def llava(tiny_multimodal):
    return tiny_multimodal("llava")


@pytest.fixture
def model(llava):
    from transformers import AutoModelForImageTextToText

    return AutoModelForImageTextToText.from_pretrained(llava)


def template():
    return get_registry().select("template", "llava").load()()


def trainable(model) -> set[str]:
    return {name.removeprefix("base_model.model.") for name, p in model.named_parameters() if p.requires_grad}


def parts(names: set[str]) -> set[str]:
    """Which of tower, projector, language the trainable names fall in."""
    found = set()
    for name in names:
        if name.startswith("model.vision_tower."):
            found.add("tower")
        elif name.startswith("model.multi_modal_projector."):
            found.add("projector")
        else:
            found.add("language")
    return found


def prepared(model, path, tmp_path, **options):
    return prepare_model(model, make_config(path, tmp_path, template="llava", **options), template())


def test_lora_trains_the_language_model_only_by_default(model, llava, tmp_path):
    names = trainable(prepared(model, llava, tmp_path, lora_target="all"))
    assert parts(names) == {"language"} and all("lora_" in n for n in names)


def test_lora_reaches_into_an_unfrozen_vision_tower_but_never_the_projector(model, llava, tmp_path):
    names = trainable(prepared(model, llava, tmp_path, lora_target="all", freeze_vision_tower=False))
    assert parts(names) == {"language", "tower"} and all("lora_" in n for n in names)


def test_an_unfrozen_projector_trains_whole_under_lora(model, llava, tmp_path):
    names = trainable(prepared(model, llava, tmp_path, lora_target="q_proj,v_proj",
                               freeze_multi_modal_projector=False))
    projector = {n for n in names if n.startswith("model.multi_modal_projector.")}
    assert projector and all("lora_" not in n for n in projector)
    assert parts(names) == {"language", "projector"}


def test_full_tuning_freezes_the_tower_and_projector_by_default(model, llava, tmp_path):
    assert parts(trainable(prepared(model, llava, tmp_path, finetuning_type="full"))) == {"language"}


def test_train_mm_proj_only_trains_the_projector_alone(model, llava, tmp_path):
    names = trainable(prepared(model, llava, tmp_path, finetuning_type="full", train_mm_proj_only=True))
    assert parts(names) == {"projector"}


def test_freeze_tuning_picks_language_layers_and_keeps_the_tower_frozen(model, llava, tmp_path):
    names = trainable(prepared(model, llava, tmp_path, finetuning_type="freeze", freeze_trainable_layers=1))
    assert parts(names) == {"language"} and all(".layers.1." in n for n in names)
    names = trainable(prepared(model, llava, tmp_path, finetuning_type="freeze", freeze_trainable_layers=1,
                               freeze_vision_tower=False))
    assert parts(names) == {"language", "tower"}


def test_train_mm_proj_only_needs_full_tuning(llava, tmp_path):
    from tunefactory.config.validate import validation_problems

    problems = validation_problems(make_config(llava, tmp_path, train_mm_proj_only=True))
    assert [p.key for p in problems] == ["train_mm_proj_only"]
    assert "finetuning_type: full" in problems[0].hint


def write_dataset(folder, media_samples, rows=None):
    import shutil

    for name in ("image.png", "wide.png"):
        shutil.copy(media_samples / name, folder / name)
    rows = rows or [
        {"messages": [{"role": "user", "content": "<image>Describe the picture."},
                      {"role": "assistant", "content": "A gradient with a square."}], "images": ["image.png"]},
        {"messages": [{"role": "user", "content": "What is this <image>?"},
                      {"role": "assistant", "content": "A wide banner."}], "images": ["wide.png"]},
    ] * 4
    (folder / "pictures.json").write_text(json.dumps(rows))
    info = {"pictures": {"file_name": "pictures.json", "formatting": "sharegpt",
                         "columns": {"messages": "messages", "images": "images"},
                         "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user",
                                  "assistant_tag": "assistant"}}}
    (folder / "dataset_info.json").write_text(json.dumps(info))


@pytest.mark.slow
def test_multimodal_sft_then_chat_about_an_image(llava, media_samples, tmp_path, cli):
    data = tmp_path / "data"
    data.mkdir()
    write_dataset(data, media_samples)
    out = tmp_path / "out"
    result = cli("train", f"model_name_or_path={llava}", "stage=sft", "do_train=true", "finetuning_type=lora",
                 "lora_target=all", "freeze_multi_modal_projector=false", "template=llava", "dataset=pictures",
                 f"dataset_dir={data}", "cutoff_len=256", f"output_dir={out}", "per_device_train_batch_size=2",
                 "num_train_epochs=3", "learning_rate=5e-3", "logging_steps=1", "save_strategy=no", "use_cpu=true",
                 "report_to=none", "disable_tqdm=true", "image_max_pixels=4096", timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished"
    losses = [json.loads(line)["loss"] for line in (out / "trainer_log.jsonl").read_text().splitlines()
              if "loss" in json.loads(line)]
    assert len(losses) == 12 and losses[-1] < losses[0], losses
    assert (out / "adapter_model.safetensors").is_file() and (out / "processor_config.json").is_file()
    adapter = json.loads((out / "adapter_config.json").read_text())
    assert any("multi_modal_projector" in name for name in adapter["modules_to_save"])

    from tunefactory.inference.chat_model import ChatModel

    with ChatModel({"model_name_or_path": llava, "adapter_name_or_path": str(out), "template": "llava",
                    "max_new_tokens": 8}) as chat:
        answers = chat.chat([{"role": "user", "content": "Describe the picture."}],
                            images=[str(media_samples / "image.png")])
    assert answers and answers[0].prompt_length > 16 and answers[0].response_length > 0


def test_a_missing_image_names_the_file_and_the_row(llava, media_samples, tmp_path, cli):
    data = tmp_path / "data"
    data.mkdir()
    rows = [{"messages": [{"role": "user", "content": "<image>Hi"}, {"role": "assistant", "content": "Hello."}],
             "images": ["image.png"]},
            {"messages": [{"role": "user", "content": "<image>Hi"}, {"role": "assistant", "content": "Hello."}],
             "images": ["nowhere.png"]}]
    write_dataset(data, media_samples, rows)
    result = cli("train", f"model_name_or_path={llava}", "stage=sft", "do_train=true", "template=llava",
                 "dataset=pictures", f"dataset_dir={data}", f"output_dir={tmp_path / 'out'}", "use_cpu=true",
                 "report_to=none", "preprocessing_num_workers=1", timeout=300)
    assert result.returncode == 2, result.stderr[-2000:]
    assert "nowhere.png" in result.stderr and "row 2" in result.stderr, result.stderr[-2000:]


@pytest.mark.slow
def test_multimodal_dpo_feeds_the_images_to_policy_and_reference(llava, media_samples, tmp_path, cli):
    import shutil

    data = tmp_path / "data"
    data.mkdir()
    shutil.copy(media_samples / "image.png", data / "image.png")
    rows = [{"conversations": [{"from": "human", "value": "<image>What is shown?"}],
             "chosen": {"from": "gpt", "value": "A gradient with a square."},
             "rejected": {"from": "gpt", "value": "Nothing at all."}, "images": ["image.png"]}] * 4
    (data / "prefs.json").write_text(json.dumps(rows))
    info = {"prefs": {"file_name": "prefs.json", "formatting": "sharegpt", "ranking": True,
                      "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected",
                                  "images": "images"}}}
    (data / "dataset_info.json").write_text(json.dumps(info))
    out = tmp_path / "out"
    result = cli("train", f"model_name_or_path={llava}", "stage=dpo", "do_train=true", "finetuning_type=lora",
                 "template=llava", "dataset=prefs", f"dataset_dir={data}", f"output_dir={out}",
                 "per_device_train_batch_size=2", "max_steps=2", "logging_steps=1", "save_strategy=no",
                 "use_cpu=true", "report_to=none", "disable_tqdm=true", timeout=600)
    assert result.returncode == 0, result.stderr[-4000:]
    logs = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines()]
    assert any("rewards/chosen" in entry or "loss" in entry for entry in logs)


@pytest.mark.slow
def test_the_multimodal_example_trains(tmp_path, cli):
    from pathlib import Path

    if not Path("examples/models/tiny-qwen2-vl/config.json").is_file():
        pytest.skip("the bundled tiny Qwen2-VL is not built (python examples/build_tiny_model.py)")
    out = tmp_path / "mllm"
    result = cli("train", "examples/mllm_demo.yaml", f"output_dir={out}", "disable_tqdm=true", timeout=900)
    assert result.returncode == 0, result.stderr[-4000:]
    manifest = json.loads((out / "run_manifest.json").read_text())
    assert manifest["status"] == "finished" and manifest["template"] == "qwen2_vl"
    assert manifest["final_loss"] < 1.0, manifest["final_loss"]
    assert (out / "processor_config.json").is_file() and (out / "training_loss.png").is_file()


def test_media_options_out_of_range_are_config_problems(llava, tmp_path):
    from tunefactory.config.validate import validation_problems

    config = make_config(llava, tmp_path, image_min_pixels=10**7, video_fps=0, video_maxlen=0,
                         audio_sampling_rate=-1)
    keys = [p.key for p in validation_problems(config)]
    assert keys == ["image_min_pixels", "video_fps", "video_maxlen", "audio_sampling_rate"]
