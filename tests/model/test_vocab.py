"""resize_vocab and init_special_tokens: embeddings fitted to the tokenizer, new rows started sensibly, saved and
reloaded."""

from __future__ import annotations

import pytest
import torch
from tunefactory.model.loader import load_model
from tunefactory.model.tokenizer import load_tokenizer
from tunefactory.model.vocab import CPU_MULTIPLE, GPU_MULTIPLE, pad_multiple

from tests.model.conftest import make_config


def load(**options):
    config = make_config(**options)
    module = load_tokenizer(config)
    model, report = load_model(config, module.tokenizer, is_trainable=False)
    return module.tokenizer, model, report


def base_rows(model, rows=1024):
    return model.get_input_embeddings().weight[:rows].float()


def test_multiples():
    assert pad_multiple("cpu") == CPU_MULTIPLE == 8
    assert pad_multiple("cuda") == GPU_MULTIPLE == 64


def test_nothing_changes_without_new_tokens(tiny_llama):
    _, model, report = load(model_name_or_path=tiny_llama, resize_vocab=True)
    assert report.vocab is None
    assert model.get_input_embeddings().weight.shape[0] == 1024


def test_added_tokens_grow_both_matrices_to_a_multiple_of_8_on_cpu(tiny_llama, caplog):
    tokenizer, model, report = load(model_name_or_path=tiny_llama, add_special_tokens="<n1>,<n2>,<n3>")
    assert len(tokenizer) == 1027
    assert model.get_input_embeddings().weight.shape[0] == 1032
    assert model.get_output_embeddings().weight.shape[0] == 1032
    assert model.config.vocab_size == 1032
    assert report.vocab.rows_before == 1024 and report.vocab.rows_after == 1032 and report.vocab.tokenizer_size == 1027
    assert report.vocab.initialised == {"<n1>": "noise_init", "<n2>": "noise_init", "<n3>": "noise_init"}
    assert "as resize_vocab: true would" in caplog.text  # resize_vocab was off: the resize is said aloud
    ids = tokenizer("hi <n2>", return_tensors="pt")
    assert model(**ids).logits.shape[-1] == 1032


def test_tied_embeddings_stay_tied(tiny_qwen2):
    _, model, _ = load(model_name_or_path=tiny_qwen2, add_tokens="newword", resize_vocab=True)
    assert model.get_output_embeddings().weight.data_ptr() == model.get_input_embeddings().weight.data_ptr()
    assert model.get_input_embeddings().weight.shape[0] == 1032


def test_noise_init_is_the_mean_plus_small_noise(tiny_llama):
    tokenizer, model, _ = load(model_name_or_path=tiny_llama, add_special_tokens="<n1>,<n2>",
                               init_special_tokens="noise_init")
    ids = tokenizer.convert_tokens_to_ids(["<n1>", "<n2>"])
    for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        old = weight[:1024].float()
        mean, spread = old.mean(0), old.std()
        new = weight[ids].float()
        assert not torch.equal(new[0], new[1])  # each token its own row
        for row in new:
            assert (row - mean).std() < spread * 0.5  # close to the mean, closer than a typical token is
            assert not torch.allclose(row, mean)
        assert (weight[1024:].float() - mean).abs().max() < spread * 2  # padding rows too


def described(tmp_path, text):
    path = tmp_path / "tokens.yaml"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_desc_init_is_the_mean_of_the_description(tiny_llama, tmp_path):
    tokens = described(tmp_path, "<answer>: the answer is\n<plain>:\n")
    tokenizer, model, report = load(model_name_or_path=tiny_llama, new_special_tokens_config=tokens,
                                    init_special_tokens="desc_init", resize_vocab=True)
    assert report.vocab.initialised == {"<answer>": "desc_init", "<plain>": "noise_init"}
    description = tokenizer("the answer is", add_special_tokens=False)["input_ids"]
    row = tokenizer.convert_tokens_to_ids("<answer>")
    for weight in (model.get_input_embeddings().weight, model.get_output_embeddings().weight):
        expected = weight[description].float().mean(0)
        assert torch.allclose(weight[row].float(), expected, atol=1e-6)


def test_desc_init_w_noise_is_near_the_description_mean(tiny_llama, tmp_path):
    tokens = described(tmp_path, "<answer>: the answer is\n")
    tokenizer, model, report = load(model_name_or_path=tiny_llama, new_special_tokens_config=tokens,
                                    init_special_tokens="desc_init_w_noise", resize_vocab=True)
    assert report.vocab.initialised == {"<answer>": "desc_init_w_noise"}
    weight = model.get_input_embeddings().weight
    expected = weight[tokenizer("the answer is", add_special_tokens=False)["input_ids"]].float().mean(0)
    row = weight[tokenizer.convert_tokens_to_ids("<answer>")].float()
    assert not torch.allclose(row, expected)
    assert (row - expected).std() < weight[:1024].float().std() * 0.5


def test_tokens_already_in_the_vocabulary_keep_their_rows(tiny_llama):
    _, plain, _ = load(model_name_or_path=tiny_llama)
    tokenizer, model, report = load(model_name_or_path=tiny_llama, add_special_tokens="<|im_end|>,<fresh>")
    im_end = tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert list(report.vocab.initialised) == ["<fresh>"]
    assert torch.equal(model.get_input_embeddings().weight[:1024], plain.get_input_embeddings().weight[:1024])
    assert torch.equal(model.get_input_embeddings().weight[im_end], plain.get_input_embeddings().weight[im_end])


def test_new_tokens_inside_a_padded_embedding_are_initialised_without_resizing(tiny_llama, tmp_path):
    """Like Qwen checkpoints: the embedding has spare rows beyond the tokenizer; new tokens take those rows."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    folder = tmp_path / "padded"
    model = AutoModelForCausalLM.from_pretrained(tiny_llama)
    model.resize_token_embeddings(1040, mean_resizing=False)
    with torch.no_grad():
        model.get_input_embeddings().weight[1024:] = 5.0  # untrained rows, far from every real token
    model.save_pretrained(folder)
    AutoTokenizer.from_pretrained(tiny_llama).save_pretrained(folder)
    tokenizer, loaded, report = load(model_name_or_path=str(folder), add_special_tokens="<spare>")
    row = tokenizer.convert_tokens_to_ids("<spare>")
    assert row == 1024
    assert loaded.get_input_embeddings().weight.shape[0] == 1040 and not report.vocab.resized
    assert report.vocab.initialised == {"<spare>": "noise_init"}
    mean = loaded.get_input_embeddings().weight[:1024].float().mean(0)
    assert (loaded.get_input_embeddings().weight[row] - mean).abs().max() < 1.0
    assert (loaded.get_input_embeddings().weight[1025:] == 5.0).all()  # rows no token uses are left alone


def test_the_resized_model_saves_and_reloads(tiny_llama, tmp_path):
    tokenizer, model, _ = load(model_name_or_path=tiny_llama, add_special_tokens="<n1>,<n2>", add_tokens="wordy")
    saved = tmp_path / "resized"
    model.save_pretrained(saved)
    tokenizer.save_pretrained(saved)
    again_tokenizer, again, report = load(model_name_or_path=str(saved))
    assert report.vocab is None  # nothing new: the saved model fits its tokenizer
    assert len(again_tokenizer) == len(tokenizer) == 1027
    assert again_tokenizer.convert_tokens_to_ids("<n2>") == tokenizer.convert_tokens_to_ids("<n2>")
    assert again.get_input_embeddings().weight.shape[0] == 1032
    assert torch.equal(again.get_input_embeddings().weight, model.get_input_embeddings().weight)
    assert torch.equal(again.get_output_embeddings().weight, model.get_output_embeddings().weight)
    ids = tokenizer("a <n1> wordy <n2>", return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(again(**ids).logits, model(**ids).logits)


@pytest.mark.gpu
def test_multiple_of_64_on_a_gpu(tiny_llama):
    config = make_config(command="train", model_name_or_path=tiny_llama, add_special_tokens="<n1>", bf16=True)
    module = load_tokenizer(config)
    model, report = load_model(config, module.tokenizer, is_trainable=True)
    assert model.get_input_embeddings().weight.device.type == "cuda"
    assert report.vocab.rows_after == 1088
