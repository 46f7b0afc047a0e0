"""load_tokenizer: the tokenizer options of reference section 1, added tokens, and the multimodal processor."""

from __future__ import annotations

import pytest
from tunefactory.errors import ConfigError
from tunefactory.model.tokenizer import (
    NEW_TOKENS_ATTR,
    TokenizerModule,
    comma_list,
    load_tokenizer,
    read_special_tokens_config,
)

from tests.model.conftest import make_config


def test_loads_the_tokenizer_of_a_local_model(tiny_llama):
    module = load_tokenizer(make_config(model_name_or_path=tiny_llama))
    assert isinstance(module, TokenizerModule)
    assert module.processor is None  # a text-only model has none
    assert module.new_tokens == ()
    assert module.path == tiny_llama
    tokenizer = module.tokenizer
    assert len(tokenizer) == 1024
    assert tokenizer.padding_side == "right"
    assert tokenizer.decode(tokenizer("The model reads", add_special_tokens=False)["input_ids"]) == "The model reads"


@pytest.mark.parametrize("fast", [True, False])
def test_use_fast_tokenizer_either_way_gives_a_working_tokenizer(tiny_qwen3, fast):
    tokenizer = load_tokenizer(make_config(model_name_or_path=tiny_qwen3, use_fast_tokenizer=fast)).tokenizer
    ids = tokenizer("<|im_start|>user\nhi<|im_end|>", add_special_tokens=False)["input_ids"]
    assert ids[0] == tokenizer.convert_tokens_to_ids("<|im_start|>")
    assert tokenizer.decode(ids) == "<|im_start|>user\nhi<|im_end|>"


def test_split_special_tokens(tiny_llama):
    whole = load_tokenizer(make_config(model_name_or_path=tiny_llama)).tokenizer
    split = load_tokenizer(make_config(model_name_or_path=tiny_llama, split_special_tokens=True)).tokenizer
    assert whole.tokenize("<|im_start|>hi") == ["<|im_start|>", "hi"]
    pieces = split.tokenize("<|im_start|>hi")
    assert "<|im_start|>" not in pieces and len(pieces) > 2


def test_add_tokens_are_ordinary_tokens(tiny_llama):
    module = load_tokenizer(make_config(model_name_or_path=tiny_llama, add_tokens="alphaword, betaword,alphaword"))
    tokenizer = module.tokenizer
    assert module.new_tokens == ("alphaword", "betaword")
    assert getattr(tokenizer, NEW_TOKENS_ATTR) == ("alphaword", "betaword")
    assert len(tokenizer) == 1026
    ids = tokenizer("x alphaword", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("alphaword") in ids
    assert "alphaword" in tokenizer.decode(ids, skip_special_tokens=True)  # not special: kept when decoding


def test_add_special_tokens_skips_those_already_there(tiny_llama):
    module = load_tokenizer(make_config(model_name_or_path=tiny_llama, add_special_tokens="<tool_x>,<|im_end|>"))
    tokenizer = module.tokenizer
    assert module.new_tokens == ("<tool_x>",)
    assert len(tokenizer) == 1025
    ids = tokenizer("a<tool_x>b", add_special_tokens=False)["input_ids"]
    assert tokenizer.convert_tokens_to_ids("<tool_x>") in ids
    assert "<tool_x>" not in tokenizer.decode(ids, skip_special_tokens=True)  # special: skipped when decoding
    assert "<|im_end|>" in tokenizer.all_special_tokens  # the special tokens it had are kept


def test_add_tokens_and_special_tokens_together(tiny_llama):
    module = load_tokenizer(make_config(model_name_or_path=tiny_llama, add_tokens="plainword",
                                        add_special_tokens="<s1>,<s2>"))
    assert module.new_tokens == ("plainword", "<s1>", "<s2>")
    assert len(module.tokenizer) == 1027


def test_special_tokens_config_takes_precedence(tiny_llama, tmp_path, caplog):
    described = tmp_path / "tokens.yaml"
    described.write_text("<think_a>: start of a thought\n'<think_b>': end of a thought\n<bare>:\n", encoding="utf-8")
    module = load_tokenizer(make_config(model_name_or_path=tiny_llama, add_special_tokens="<ignored>",
                                        new_special_tokens_config=str(described)))
    assert module.new_tokens == ("<think_a>", "<think_b>", "<bare>")
    assert "<ignored>" not in module.tokenizer.get_vocab()
    assert "add_special_tokens" in caplog.text and "ignored" in caplog.text


def test_reading_the_special_tokens_config(tmp_path):
    path = tmp_path / "tokens.yaml"
    path.write_text("# new tokens\n<a>: first token\n<b>: 'second: token'\n<c>: ~\n", encoding="utf-8")
    assert read_special_tokens_config(str(path)) == {"<a>": "first token", "<b>": "second: token", "<c>": ""}


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("<a>: fine\n<b>: 'unclosed\n", ["line 2", "malformed YAML"]),
        ("<a>: fine\n  <b>: wrongly indented\n", ["line 2", "malformed YAML"]),
        ("- <a>\n- <b>\n", ["line 1", "mapping", "not a list"]),
        ("just text\n", ["line 1", "mapping"]),
        ("<a>: fine\n<b>:\n  - not\n  - text\n", ["line 3", "description of '<b>' must be text"]),
        ("<a>: one\n<a>: two\n", ["line 2", "listed twice"]),
        ("", ["is empty"]),
    ],
)
def test_a_bad_special_tokens_config_names_the_file_and_line(tmp_path, tiny_llama, text, expected):
    path = tmp_path / "bad_tokens.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_tokenizer(make_config(model_name_or_path=tiny_llama, new_special_tokens_config=str(path)))
    rendered = raised.value.render()
    assert "new_special_tokens_config" in rendered and str(path) in rendered
    for part in expected:
        assert part in rendered, rendered


def test_a_missing_special_tokens_config(tmp_path, tiny_llama):
    with pytest.raises(ConfigError) as raised:
        load_tokenizer(make_config(model_name_or_path=tiny_llama,
                                   new_special_tokens_config=str(tmp_path / "missing.yaml")))
    assert "there is no file" in raised.value.render() and "missing.yaml" in raised.value.render()


def test_comma_lists():
    assert comma_list(None) == []
    assert comma_list(" a, b ,,a ") == ["a", "b"]
    assert comma_list(["x", " y "]) == ["x", "y"]


def test_cutoff_len_raises_a_short_model_max_length(copy_model, tiny_llama):
    import json

    folder = copy_model(tiny_llama)
    settings = json.loads((folder / "tokenizer_config.json").read_text())
    settings["model_max_length"] = 128
    (folder / "tokenizer_config.json").write_text(json.dumps(settings))
    tokenizer = load_tokenizer(make_config(model_name_or_path=str(folder), cutoff_len=512)).tokenizer
    assert tokenizer.model_max_length == 512


@pytest.fixture
def tiny_vlm(tiny_qwen2, copy_model, quiet_transformers):
    """The tiny Qwen2 folder with a Llava processor (CLIP image processor, PIL backend) saved beside it."""
    pytest.importorskip("PIL")
    from transformers import AutoTokenizer, CLIPImageProcessor, LlavaProcessor

    folder = copy_model(tiny_qwen2, "vlm")
    tokenizer = AutoTokenizer.from_pretrained(folder)
    LlavaProcessor(image_processor=CLIPImageProcessor(), tokenizer=tokenizer, patch_size=14).save_pretrained(folder)
    return str(folder)


def test_a_multimodal_model_gets_its_processor_sharing_the_tokenizer(tiny_vlm):
    from transformers import ProcessorMixin

    module = load_tokenizer(make_config(model_name_or_path=tiny_vlm, add_special_tokens="<region>"))
    assert isinstance(module.processor, ProcessorMixin)
    assert type(module.processor).__name__ == "LlavaProcessor"
    assert module.processor.tokenizer is module.tokenizer
    assert "<region>" in module.processor.tokenizer.get_vocab()
