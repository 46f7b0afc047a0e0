"""Generation options of a request: defaults, overrides, checks, the context; stop strings."""

import pytest
from tunefactory.config.generation_args import GenerationArguments
from tunefactory.inference.engine import BadRequest, PromptTooLong
from tunefactory.inference.generation import find_stop, held_back, resolve_generation


def resolve(prompt=10, context=100, defaults=None, **overrides):
    return resolve_generation(defaults or GenerationArguments(), overrides, prompt, context)


def test_defaults_come_from_the_config():
    params = resolve(context=None)
    assert (params.do_sample, params.temperature, params.top_p, params.top_k) == (True, 0.95, 0.7, 50)
    assert params.max_new_tokens == 1024 and params.n == 1 and params.stop == ()


def test_overrides_win_and_none_means_default():
    params = resolve(temperature=0.5, top_p=None, max_tokens=7, n=3, stop="###")
    assert params.temperature == 0.5 and params.top_p == 0.7
    assert params.max_new_tokens == 7 and params.n == 3 and params.stop == ("###",)


def test_temperature_zero_is_greedy():
    assert resolve(temperature=0).do_sample is False
    assert resolve(do_sample=False).do_sample is False


def test_max_new_tokens_is_fitted_to_the_context():
    assert resolve(prompt=90, context=100, max_new_tokens=50).max_new_tokens == 10
    assert resolve(prompt=10, context=100, max_length=30).max_new_tokens == 20


def test_a_prompt_that_fills_the_context_is_refused():
    with pytest.raises(PromptTooLong, match="100 tokens"):
        resolve(prompt=100, context=100)


@pytest.mark.parametrize(
    ("option", "value", "text"),
    [
        ("temperature", -1, "at least 0"),
        ("top_p", 0, r"\(0, 1\]"),
        ("top_p", 1.5, r"\(0, 1\]"),
        ("n", 0, "between 1"),
        ("max_tokens", 0, "at least 1"),
        ("temperature", "hot", "must be a number"),
        ("top_k", 1.5, "whole number"),
        ("stop", [1, 2], "string"),
        ("do_sample", "yes", "true or false"),
        ("colour", 1, "unknown generation option"),
    ],
)
def test_bad_options_are_named(option, value, text):
    with pytest.raises(BadRequest, match=text) as info:
        resolve(**{option: value})
    assert info.value.status == 400


def test_stop_strings_are_found_and_held_back():
    assert find_stop("hello ### world", ("###",)) == 6
    assert find_stop("hello", ("###",)) is None
    assert find_stop("ab#", ("#",), start=2) == 2
    assert held_back("hello #", ("###",)) == 1
    assert held_back("hello ##", ("###", "##x")) == 2
    assert held_back("hello", ("###",)) == 0
