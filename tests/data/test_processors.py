"""Stage processors: masks, truncation that keeps the answer, media runs, every layout, the fast tokenizer."""

from __future__ import annotations

import pytest
from tunefactory.data.converters import RowProblem
from tunefactory.data.fast_tokenizer import FastTokenizer
from tunefactory.data.media import MediaProcessor
from tunefactory.data.processors import IGNORE_INDEX, Encoder, cut, media_token_ids, split_budget
from tunefactory.errors import PluginError


def ex(*turns, system="", tools="", response=None, kto_tag=None, images=()):
    """An internal example from alternating user/assistant texts (the last assistant text is the response)."""
    messages = [{"role": "user" if i % 2 == 0 else "assistant", "content": t} for i, t in enumerate(turns)]
    if response is None:
        prompt, response = messages[:-1], messages[-1:]
    else:
        prompt = messages
        response = [{"role": "assistant", "content": r} for r in response]
    return {"prompt": prompt, "response": response, "system": system, "tools": tools, "images": list(images),
            "videos": [], "audios": [], "kto_tag": kto_tag}


def encoder(tokenizer, template, layout="supervised", **kwargs):
    kwargs.setdefault("cutoff_len", 1024)
    return Encoder(template, tokenizer, layout, **kwargs)


def trained_text(tokenizer, features, ids="input_ids", labels="labels"):
    kept = [t for t, label in zip(features[ids], features[labels], strict=True) if label != IGNORE_INDEX]
    return tokenizer.decode(kept)


# -- budget and cuts -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("prompt,answer,budget", [(10, 5, 100), (100, 10, 50), (10, 100, 50), (80, 60, 50),
                                                  (0, 70, 50), (70, 0, 50), (3, 3, 0), (1000, 1000, 7)])
def test_split_budget(prompt, answer, budget):
    keep_prompt, keep_answer = split_budget(prompt, answer, budget)
    assert 0 <= keep_prompt <= prompt and 0 <= keep_answer <= answer
    assert keep_prompt + keep_answer <= max(budget, 0)
    if prompt + answer <= budget:
        assert (keep_prompt, keep_answer) == (prompt, answer)
    elif 2 * answer <= budget:
        assert keep_answer == answer  # a short answer is never cut
    elif 2 * prompt <= budget:
        assert keep_prompt == prompt
    if prompt + answer > budget > 0:
        assert keep_prompt + keep_answer == budget  # nothing is wasted


def test_cut_never_splits_a_media_run():
    media = frozenset({7, 8})
    ids = [1, 2, 7, 8, 8, 8, 7, 3]
    assert cut(ids, 4, media) == [1, 2]  # would have split the run 7 8 8 8 7
    assert cut(ids, 2, media) == [1, 2]
    assert cut(ids, 7, media) == [1, 2, 7, 8, 8, 8, 7]
    assert cut(ids, 5, frozenset()) == [1, 2, 7, 8, 8]
    assert cut(ids, 20, media) == ids


def test_media_token_ids_from_the_tokenizer(tokenizer, template):
    ids = media_token_ids(tokenizer, template)
    assert tokenizer.convert_tokens_to_ids("<image>") in ids
    assert tokenizer.convert_tokens_to_ids("<|image_pad|>") in ids
    assert tokenizer.convert_tokens_to_ids("<|im_start|>") not in ids


# -- supervised ----------------------------------------------------------------------------------------------------


def test_supervised_masks_prompts_and_trains_every_answer(tokenizer, template):
    features, length = encoder(tokenizer, template).supervised(ex("Hi", "Hello!", "Name?", "Tiny.", system="S"))
    assert len(features["input_ids"]) == len(features["labels"]) == length
    assert trained_text(tokenizer, features) == "Hello!<|im_end|>\nTiny.<|im_end|>\n"
    assert features["labels"][0] == IGNORE_INDEX


def test_train_on_prompt_and_mask_history(tokenizer, template):
    example = ex("Hi", "Hello!", "Name?", "Tiny.")
    on_prompt, _ = encoder(tokenizer, template, train_on_prompt=True).supervised(example)
    assert on_prompt["labels"] == on_prompt["input_ids"]
    last_only, _ = encoder(tokenizer, template, mask_history=True).supervised(example)
    assert trained_text(tokenizer, last_only) == "Tiny.<|im_end|>\n"
    assert last_only["input_ids"] == on_prompt["input_ids"]


def test_truncation_keeps_the_answer(tokenizer, template):
    long_question = "word " * 300
    features, length = encoder(tokenizer, template, cutoff_len=64).supervised(ex(long_question, "Short answer."))
    assert len(features["input_ids"]) == 64 < length
    assert trained_text(tokenizer, features) == "Short answer.<|im_end|>\n"


def test_truncation_shares_between_long_prompt_and_long_answer(tokenizer, template):
    features, _ = encoder(tokenizer, template, cutoff_len=100).supervised(ex("q " * 200, "a " * 200))
    trained = sum(1 for label in features["labels"] if label != IGNORE_INDEX)
    assert len(features["input_ids"]) == 100 and 30 < trained < 70


def test_truncation_with_mask_history_keeps_the_last_turn(tokenizer, template):
    example = ex("first " * 100, "old answer " * 50, "last question", "Last answer.")
    features, _ = encoder(tokenizer, template, cutoff_len=40, mask_history=True).supervised(example)
    assert len(features["input_ids"]) <= 40
    assert trained_text(tokenizer, features) == "Last answer.<|im_end|>\n"
    plain, _ = encoder(tokenizer, template, cutoff_len=40).supervised(example)
    assert "Last answer." not in tokenizer.decode(plain["input_ids"])  # without it the budget runs out first


def test_nothing_left_to_train_is_a_dropping_problem(tokenizer, template):
    with pytest.raises(RowProblem) as info:
        encoder(tokenizer, template, cutoff_len=1).supervised(ex("question " * 20, "answer " * 20))
    assert info.value.kind == "cutoff_len" and not info.value.fatal


class FourTokensPerImage(MediaProcessor):
    """A media processor of an imaginary model that sees each image as four <image> tokens."""

    name = "four"
    modalities = frozenset({"image"})

    def image_tokens(self, index, media, processor):
        return "<image>" * 4


def test_truncation_that_would_drop_media_tokens_drops_the_row(tokenizer, template, media_samples):
    example = ex("question " * 30 + "<image>", "An answer.", images=[str(media_samples / "image.png")])
    enc = encoder(tokenizer, template, cutoff_len=30)
    enc._media_processor = FourTokensPerImage()
    with pytest.raises(RowProblem, match="media tokens"):
        enc.supervised(example)
    enc.cutoff_len = 200
    features, _ = enc.supervised(example)
    assert features["input_ids"].count(tokenizer.convert_tokens_to_ids("<image>")) == 4


def test_missing_and_corrupt_media_are_fatal_and_name_the_file(tokenizer, template, media_samples):
    enc = encoder(tokenizer, template)
    enc._media_processor = FourTokensPerImage()
    for name, message in (("gone.png", "image file not found: .*gone.png"), ("corrupt.png", "corrupt or not an image")):
        with pytest.raises(RowProblem, match=message) as info:
            enc.supervised(ex("<image>What?", "A cat.", images=[str(media_samples / name)]))
        assert info.value.fatal and info.value.kind == "media"


def test_placeholders_must_match_the_media(tokenizer, template, media_samples):
    enc = encoder(tokenizer, template)
    enc._media_processor = FourTokensPerImage()
    image = str(media_samples / "image.png")
    with pytest.raises(RowProblem, match="2 <image> placeholder.s. but 1 images"):
        enc.supervised(ex("<image><image>What?", "A cat.", images=[image]))
    with pytest.raises(RowProblem, match="0 <image> placeholder.s. but 2 images"):
        enc.supervised(ex("What?", "A cat.", images=[image, image]))


def test_media_with_a_text_only_template_is_fatal(tokenizer, template):
    with pytest.raises(RowProblem) as info:
        encoder(tokenizer, template).supervised(ex("<image>What?", "A cat.", images=["a.png"]))
    assert info.value.fatal and "text only" in info.value.message


# -- other layouts -------------------------------------------------------------------------------------------------


def test_pairwise(tokenizer, template):
    features, _ = encoder(tokenizer, template, "pairwise").pairwise(ex("Q", response=["Good.", "Bad."]))
    assert trained_text(tokenizer, features, "chosen_input_ids", "chosen_labels") == "Good.<|im_end|>\n"
    assert trained_text(tokenizer, features, "rejected_input_ids", "rejected_labels") == "Bad.<|im_end|>\n"
    prompt_len = features["chosen_labels"].index(next(x for x in features["chosen_labels"] if x != IGNORE_INDEX))
    assert features["chosen_input_ids"][:prompt_len] == features["rejected_input_ids"][:prompt_len]


def test_pairwise_truncation_keeps_both_answers(tokenizer, template):
    features, _ = encoder(tokenizer, template, "pairwise", cutoff_len=40).pairwise(
        ex("q " * 100, response=["Good.", "Bad."]))
    assert len(features["chosen_input_ids"]) <= 40 and len(features["rejected_input_ids"]) <= 40
    assert trained_text(tokenizer, features, "chosen_input_ids", "chosen_labels") == "Good.<|im_end|>\n"


def test_kto_with_a_mismatched_kl_answer(tokenizer, template):
    example = ex("Q1", "A1", kto_tag=False)
    features, _ = encoder(tokenizer, template, "kto").kto(example, {"role": "assistant", "content": "Other."})
    assert features["kto_tags"] is False
    assert trained_text(tokenizer, features) == "A1<|im_end|>\n"
    assert trained_text(tokenizer, features, "kl_input_ids", "kl_labels") == "Other.<|im_end|>\n"


def test_unsupervised_prompt_and_reference(tokenizer, template):
    enc = encoder(tokenizer, template, "unsupervised")
    features, _ = enc.unsupervised(ex("Q", "Ref."))
    assert tokenizer.decode(features["input_ids"]).endswith("<|im_start|>assistant\n")
    assert tokenizer.decode(features["labels"]) == "Ref.<|im_end|>\n"
    features, _ = enc.unsupervised(ex("Q", response=[]))
    assert features["labels"] == []


# -- the fast tokenizer --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("arch", ["tiny_llama", "tiny_qwen2"])
def test_fast_tokenizer_gives_the_same_ids(arch, request):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(request.getfixturevalue(arch))
    fast = FastTokenizer(tokenizer)
    assert fast.can_batch
    texts = ["Hello world", "<|im_start|>user\n你好<|im_end|>\n", "", "  spaced  out ", "x" * 100, "<s>a</s>"]
    for text in texts:
        for add in (False, True):
            assert fast.encode(text, add_special_tokens=add) == tokenizer.encode(text, add_special_tokens=add)
            assert fast.encode(text, add_special_tokens=add) == tokenizer.encode(text, add_special_tokens=add)
    fast.start_recording()
    assert [fast.encode(t, add_special_tokens=False) for t in texts] == [[]] * len(texts)
    fast.prefill()
    assert [fast.encode(t, add_special_tokens=False) for t in texts] == [
        tokenizer.encode(t, add_special_tokens=False) for t in texts]
    fast.clear()
    assert fast.eos_token == tokenizer.eos_token and len(fast) == len(tokenizer)
    assert fast("hi")["input_ids"] == tokenizer("hi")["input_ids"]
    import pickle

    again = pickle.loads(pickle.dumps(fast))
    assert again.encode("Hello", add_special_tokens=False) == tokenizer.encode("Hello", add_special_tokens=False)


def test_a_template_whose_media_plugin_is_missing_still_encodes_text(tokenizer, template):
    template.media_processor = "not_installed"
    enc = encoder(tokenizer, template)
    features, _ = enc.supervised(ex("What is <image>?", "A tag."))
    assert "<image>" in tokenizer.decode(features["input_ids"])
    with pytest.raises(PluginError, match="not_installed"):
        enc.supervised(ex("<image>What?", "A cat.", images=["a.png"]))
