"""Every registered chat template on the tiny tokenizers: its own Jinja renders the text it encodes, its turns
tokenize piecewise, its label masks follow the options; the tokenizer's own chat_template gives ChatML's ids and
masks; template selection, tokenizer fixes and tool formats.

Hand-written reference renderings of the main families are in test_templates_golden.py.
"""

from __future__ import annotations

import copy
import json

import pytest
from tunefactory.data.chat_template import (
    TOOL_FORMATS,
    ChatTemplate,
    TemplateError,
    function_calls,
    parse_tools,
    to_hf_messages,
)
from tunefactory.data.templates import fix_tokenizer, get_template
from tunefactory.data.tokenizer_template import TokenizerTemplate
from tunefactory.errors import ConfigError, UnknownPlugin
from tunefactory.registry import get_registry

TOOLS = [
    {
        "name": "get_weather",
        "description": "The weather of a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]
CALL = [{"name": "get_weather", "arguments": {"city": "Paris"}}]


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str) -> dict:
    return {"role": "assistant", "content": text}


# name -> (messages, system, tools as JSON text)
CONVERSATIONS = {
    "single": ([user("Who are you?"), assistant("I am TinyFactory.")], None, None),
    "multi": ([user("Who are you?"), assistant("I am TinyFactory."), user("What is 2 + 3?"),
               assistant("The answer is 5.")], None, None),
    "system": ([user("Who are you?"), assistant("I am TinyFactory."), user("What is 2 + 3?"),
                assistant("The answer is 5.")], "Be brief.", None),
    "tools": ([user("Weather in Paris?"), {"role": "function", "content": json.dumps(CALL)},
               {"role": "observation", "content": '{"temperature": 20}'}, assistant("It is 20 degrees.")],
              "Be brief.", json.dumps(TOOLS)),
    "thinking": ([user("What is 2 + 3?"), assistant("<think>\nTwo plus three.\n</think>\n\nThe answer is 5."),
                  user("And 3 + 4?"), assistant("<think>\nThree plus four.\n</think>\n\nIt is 7.")], None, None),
}

# On the tiny tokenizers GLM's <|assistant|> is plain text, so text around it merges across turn boundaries when
# the whole conversation is tokenized at once; GLM's own vocabulary has it as one token. The same goes for
# DeepSeek's <｜Assistant｜> before DeepSeek-R1's history answers, which keep the newlines after their dropped
# reasoning (and R1's prompt ends with the `<think>\n` it prefills, tokenized apart as at inference).
WHOLE_TEXT_EXCEPTIONS = {"chatglm3", "glm4", "glm4_moe", "glmz1", "deepseekr1"}


def builtin_templates() -> list[str]:
    registry = get_registry()
    return [spec.name for spec in registry.specs("template") if spec.provider.startswith("template_")]


NAMES = builtin_templates()


def load(name: str, **options) -> ChatTemplate:
    template = get_registry().select("template", name).load()()
    return template.configure(**options)


def variants(name: str) -> list[ChatTemplate]:
    """The template, and for reasoning families also with thinking off."""
    template = load(name)
    return [template, load(name, enable_thinking=False)] if template.thinking else [template]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory):
    """The tiny models' tokenizers (their chat special tokens, bos/eos, the stored ChatML chat_template), built
    without the model weights: llama (bos <s>, eos </s>) and qwen3 (no bos, eos <|im_end|>)."""
    from transformers import AutoTokenizer
    from tunefactory.testing.tiny import build_tokenizer

    built = {}
    for arch in ("llama", "qwen3"):
        folder = tmp_path_factory.mktemp(f"tokenizer-{arch}")
        build_tokenizer(folder, arch=arch)
        built[arch] = AutoTokenizer.from_pretrained(folder)
    return built


_fixed: dict[tuple[str, str], object] = {}


def fixed_tokenizer(tokenizers, arch: str, template: ChatTemplate):
    """A copy of the tokenizer fitted to ``template`` by fix_tokenizer (one per template and tokenizer)."""
    key = (template.name, arch)
    if key not in _fixed:
        _fixed[key] = copy.deepcopy(tokenizers[arch])
        fix_tokenizer(template, _fixed[key])
    return _fixed[key]


def jinja_render(tokenizer, template: ChatTemplate, messages, system, tools, *, add_generation_prompt=False) -> str:
    return tokenizer.apply_chat_template(
        to_hf_messages(messages, system), tools=parse_tools(tools) or None, chat_template=template.to_jinja(),
        tokenize=False, add_generation_prompt=add_generation_prompt, enable_thinking=template.enable_thinking,
    )


def test_at_least_forty_templates_are_registered():
    assert len(NAMES) >= 40, NAMES
    for name in ("default", "empty", "alpaca", "vicuna", "chatml", "llama2", "llama3", "llama4", "mistral", "qwen",
                 "qwen3", "qwen3_nothink", "qwen2_vl", "gemma", "gemma3", "glm4", "chatglm3", "deepseek",
                 "deepseek3", "deepseekr1", "phi", "phi4", "yi", "baichuan2", "intern2", "intern_vl", "llava",
                 "llava_next", "paligemma", "minicpm_v", "cohere", "falcon", "olmo", "granite3", "gpt_oss",
                 "seed_oss", "zephyr", "openchat", "solar", "orion", "aquila", "bluelm", "breeze", "cpm3", "exaone",
                 "starchat"):
        assert name in NAMES


# -- (a) our Jinja renders the text we encode; (b) the ids are the text's, piece by piece ----------------------------


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("name", NAMES)
def test_round_trip_through_our_jinja(name, conversation, tokenizers):
    messages, system, tools = CONVERSATIONS[conversation]
    for template in variants(name):
        for tokenizer in tokenizers.values():
            text = template.render(tokenizer, messages, system, tools)
            assert jinja_render(tokenizer, template, messages, system, tools) == text
            encoded = template.encode(tokenizer, messages, system, tools)
            assert tokenizer.decode(encoded.input_ids) == text

            prompt_text = template.render(tokenizer, messages[:-1], system, tools, add_generation_prompt=True)
            assert jinja_render(tokenizer, template, messages[:-1], system, tools,
                                add_generation_prompt=True) == prompt_text
            prompt = template.encode_prompt(tokenizer, messages[:-1], system, tools)
            assert tokenizer.decode(prompt) == prompt_text
            assert encoded.input_ids[: len(prompt)] == prompt, "the generation prompt is a prefix of the conversation"


@pytest.mark.parametrize("conversation", list(CONVERSATIONS))
@pytest.mark.parametrize("name", NAMES)
def test_turn_ids_are_the_pieces_ids(name, conversation, tokenizers):
    messages, system, tools = CONVERSATIONS[conversation]
    for template in variants(name):
        for arch, tokenizer in tokenizers.items():
            pairs = template.render_turns(tokenizer, messages, system, tools)
            turns = template.encode_turns(tokenizer, messages, system, tools)
            assert len(turns) == len(messages) // 2 == len(pairs)
            for (prompt, answer), (prompt_ids, answer_ids) in zip(pairs, turns, strict=True):
                assert prompt_ids == tokenizer.encode(prompt, add_special_tokens=False)
                assert answer_ids == (tokenizer.encode(answer, add_special_tokens=False) if answer else [])
            # once its stop words are single tokens, the pieces tokenize as the whole text does
            fixed = fixed_tokenizer(tokenizers, arch, template)
            if name not in WHOLE_TEXT_EXCEPTIONS:
                ids = [i for prompt_ids, answer_ids in template.encode_turns(fixed, messages, system, tools)
                       for i in prompt_ids + answer_ids]
                assert ids == fixed.encode(template.render(fixed, messages, system, tools), add_special_tokens=False)


# -- (c) label masks ------------------------------------------------------------------------------------------------


def trained_text(tokenizer, encoded) -> str:
    return tokenizer.decode([i for i, m in zip(encoded.input_ids, encoded.label_mask, strict=True) if m])


@pytest.mark.parametrize("name", NAMES)
def test_answers_are_trained_and_prompts_are_not(name, tokenizers):
    messages, system, tools = CONVERSATIONS["system"]
    tokenizer = tokenizers["llama"]
    template = load(name)
    turns = template.encode_turns(tokenizer, messages, system, tools)
    encoded = template.encode(tokenizer, messages, system, tools)
    expected = []
    for prompt, answer in turns:
        assert prompt and answer
        expected += [False] * len(prompt) + [True] * len(answer)
    assert encoded.label_mask == expected
    trained = trained_text(tokenizer, encoded)
    assert "I am TinyFactory." in trained and "The answer is 5." in trained
    assert "Who are you?" not in trained and "Be brief." not in trained

    everything = template.encode(tokenizer, messages, system, tools, train_on_prompt=True)
    assert everything.input_ids == encoded.input_ids and all(everything.label_mask)

    last_only = template.encode(tokenizer, messages, system, tools, mask_history=True)
    first_answer = len(turns[0][0]) + len(turns[0][1])
    assert not any(last_only.label_mask[:first_answer])
    assert last_only.label_mask[first_answer:] == encoded.label_mask[first_answer:]
    assert "I am TinyFactory." not in trained_text(tokenizer, last_only)

    if template.efficient_eos:
        assert turns[-1][1][-1] == tokenizer.eos_token_id, "efficient_eos ends the last answer with eos"
        assert encoded.label_mask[-1]


def test_efficient_eos_trains_the_stop_word_that_ends_an_answer(tokenizers):
    tokenizer = copy.deepcopy(tokenizers["qwen3"])
    template = load("glm4")
    fix_tokenizer(template, tokenizer)
    messages = CONVERSATIONS["multi"][0]
    pairs = template.render_turns(tokenizer, messages)
    assert pairs[0] == ("[gMASK]<sop><|user|>\nWho are you?<|assistant|>", "\nI am TinyFactory.<|user|>")
    assert pairs[1] == ("\nWhat is 2 + 3?<|assistant|>", f"\nThe answer is 5.{tokenizer.eos_token}")
    turns = template.encode_turns(tokenizer, messages)
    assert turns[0][1][-1] == tokenizer.convert_tokens_to_ids("<|user|>")
    assert turns[1][1][-1] == tokenizer.eos_token_id


def test_thinking_on_trains_the_empty_thought_and_off_leaves_it_in_the_prompt(tokenizers):
    tokenizer = tokenizers["qwen3"]
    messages = CONVERSATIONS["single"][0]
    on, off = load("qwen3"), load("qwen3", enable_thinking=False)
    assert on.render(tokenizer, messages) == off.render(tokenizer, messages)
    assert trained_text(tokenizer, on.encode(tokenizer, messages)) == (
        "<think>\n\n</think>\n\nI am TinyFactory.<|im_end|>\n"
    )
    assert trained_text(tokenizer, off.encode(tokenizer, messages)) == "I am TinyFactory.<|im_end|>\n"
    assert tokenizer.decode(off.encode_prompt(tokenizer, messages[:1])).endswith("assistant\n<think>\n\n</think>\n\n")
    assert tokenizer.decode(on.encode_prompt(tokenizer, messages[:1])).endswith("<|im_start|>assistant\n")


def test_thinking_off_drops_reasoning_and_history_loses_it_anyway(tokenizers):
    tokenizer = tokenizers["qwen3"]
    messages = CONVERSATIONS["thinking"][0]
    on = load("qwen3").render(tokenizer, messages)
    assert "Two plus three" not in on, "reasoning of answers before the last user turn is stripped"
    assert "<think>\nThree plus four.\n</think>\n\nIt is 7." in on
    off = load("qwen3", enable_thinking=False).render(tokenizer, messages)
    assert "Three plus four" not in off and off.endswith("<think>\n\n</think>\n\nIt is 7.<|im_end|>\n")
    assert "<think>" in load("qwen3_nothink").render(tokenizer, messages), "a template without thinking keeps text"


def test_reasoning_content_field_is_used(tokenizers):
    tokenizer = tokenizers["qwen3"]
    messages = [user("Hi"), {"role": "assistant", "content": "Hello.", "reasoning_content": "\nGreet back.\n"}]
    template = load("qwen3")
    text = template.render(tokenizer, messages)
    assert text.endswith("<|im_start|>assistant\n<think>\nGreet back.\n</think>\n\nHello.<|im_end|>\n")
    assert jinja_render(tokenizer, template, messages, None, None) == text


# -- (e) the tokenizer's own chat_template -------------------------------------------------------------------------


@pytest.mark.parametrize("conversation", ["single", "multi", "system", "thinking"])
@pytest.mark.parametrize("arch", ["llama", "qwen3"])
def test_tokenizer_template_matches_chatml(arch, conversation, tokenizers):
    tokenizer = tokenizers[arch]
    messages, system, tools = CONVERSATIONS[conversation]
    chatml, own = load("chatml"), TokenizerTemplate(tokenizer)
    assert own.encode_turns(tokenizer, messages, system, tools) == chatml.encode_turns(tokenizer, messages, system,
                                                                                         tools)
    for options in ({}, {"train_on_prompt": True}, {"mask_history": True}):
        assert own.encode(tokenizer, messages, system, tools, **options) == chatml.encode(
            tokenizer, messages, system, tools, **options)
    assert own.encode_prompt(tokenizer, messages[:-1], system, tools) == chatml.encode_prompt(
        tokenizer, messages[:-1], system, tools)
    assert own.to_jinja() == tokenizer.chat_template


def test_tokenizer_template_handles_tools_and_default_system(tokenizers):
    tokenizer = tokenizers["qwen3"]
    messages, system, tools = CONVERSATIONS["tools"]
    own = TokenizerTemplate(tokenizer).configure(default_system="Be kind.")
    turns = own.encode_turns(tokenizer, messages, None, tools)
    assert tokenizer.decode(turns[0][0]).startswith("<|im_start|>system\nBe kind.\n\nYou can call these functions")
    assert tokenizer.decode(turns[0][1]).startswith("<tool_call>\n")
    assert tokenizer.decode(turns[1][1]) == "It is 20 degrees.<|im_end|>\n"
    assert own.parse_calls(tokenizer.decode(turns[0][1])) == CALL


def test_tokenizer_without_chat_template_asks_for_a_template(tokenizers):
    tokenizer = copy.deepcopy(tokenizers["llama"])
    tokenizer.chat_template = None
    with pytest.raises(ConfigError) as raised:
        TokenizerTemplate(tokenizer)
    assert "template:" in raised.value.render()
    with pytest.raises(ConfigError):
        get_template(Data(), tokenizer)


# -- selection and tokenizer fixes ----------------------------------------------------------------------------------


class Data:
    def __init__(self, **options):
        self.template = None
        self.default_system = None
        self.enable_thinking = True
        self.tool_format = None
        self.__dict__.update(options)


def test_get_template_by_name_applies_the_data_options(tokenizers):
    template = get_template(Data(template="qwen3", default_system="Be brief.", enable_thinking=False,
                                 tool_format="glm4"), tokenizers["qwen3"])
    assert template.name == "qwen3" and template.default_system == "Be brief."
    assert template.enable_thinking is False and template.tool_format == "glm4"
    assert load("qwen3").tool_format == "qwen", "options apply to an instance, not to the class"
    with pytest.raises(UnknownPlugin, match="qwen3"):
        get_template(Data(template="qwen9"), tokenizers["qwen3"])
    with pytest.raises(ConfigError) as raised:
        get_template(Data(template="qwen", tool_format="nope"), tokenizers["qwen3"])
    assert "tool_format" in raised.value.render() and "qwen" in raised.value.render()


def test_get_template_from_a_run_config(tokenizers):
    from tunefactory.config.loader import Setting
    from tunefactory.config.run_config import build_config

    config, _ = build_config([Setting("template", "llama3", "test"), Setting("default_system", "Hi there.", "test")])
    template = get_template(config, tokenizers["llama"])
    assert template.name == "llama3" and template.default_system == "Hi there."
    config, _ = build_config([])
    assert isinstance(get_template(config, tokenizers["llama"]), TokenizerTemplate)


def test_fix_tokenizer_reports_what_it_changed(tokenizers):
    tokenizer = copy.deepcopy(tokenizers["llama"])
    fix = fix_tokenizer(load("chatml"), tokenizer)
    assert tokenizer.eos_token == "<|im_end|>" and fix.new_tokens == 0
    assert any("eos" in change for change in fix.changes)
    assert not fix_tokenizer(load("chatml"), tokenizer), "a second call changes nothing"

    tokenizer = copy.deepcopy(tokenizers["qwen3"])
    size = len(tokenizer)
    fix = fix_tokenizer(load("glm4"), tokenizer)
    assert fix.new_tokens == 2 and len(tokenizer) == size + 2
    assert {"<|user|>", "<|observation|>"} <= set(tokenizer.all_special_tokens)
    assert tokenizer.encode("<|user|>", add_special_tokens=False) == [tokenizer.convert_tokens_to_ids("<|user|>")]
    assert any("resize_vocab" in change for change in fix.changes)

    tokenizer = copy.deepcopy(tokenizers["llama"])
    tokenizer.pad_token = None
    fix = fix_tokenizer(load("llama2"), tokenizer)
    assert tokenizer.pad_token == tokenizer.eos_token == "</s>"
    assert fix.changes == ["pad token set to the eos token '</s>'"]


# -- tool formats ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", sorted(TOOL_FORMATS))
def test_tool_format_parses_the_calls_it_writes(fmt):
    tool_format = TOOL_FORMATS[fmt]
    calls = [{"name": "get_weather", "arguments": {"city": "Paris"}},
             {"name": "get_time", "arguments": {"zone": "CET", "format": "24h"}}]
    assert tool_format.parse_calls(tool_format.calls_text(calls)) == calls
    assert tool_format.parse_calls(tool_format.calls_text(calls[:1])) == calls[:1]
    assert tool_format.parse_calls("The weather in Paris is sunny.") is None
    assert tool_format.parse_calls("") is None
    if fmt == "deepseek3":  # DeepSeek-V3's own template shows no tool definitions
        assert tool_format.tools_text(TOOLS) == ""
    else:
        assert "get_weather" in tool_format.tools_text(TOOLS)


@pytest.mark.parametrize("fmt", sorted(TOOL_FORMATS))
def test_tool_format_option_renders_through_jinja(fmt, tokenizers):
    tokenizer = tokenizers["qwen3"]
    messages, system, tools = CONVERSATIONS["tools"]
    template = load("qwen", tool_format=fmt)
    text = template.render(tokenizer, messages, system, tools)
    assert jinja_render(tokenizer, template, messages, system, tools) == text
    assert template.tools.calls_text(CALL) in text
    assert template.parse_calls(template.tools.calls_text(CALL)) == CALL


def test_tools_given_in_openai_shape_render_the_same():
    wrapped = [{"type": "function", "function": tool} for tool in TOOLS]
    for fmt in TOOL_FORMATS.values():
        assert fmt.tools_text(parse_tools(json.dumps(wrapped))) == fmt.tools_text(parse_tools(json.dumps(TOOLS)))


def test_bad_conversations_are_template_errors(tokenizers):
    template, tokenizer = load("qwen"), tokenizers["qwen3"]
    with pytest.raises(TemplateError, match="turn 1"):
        template.encode(tokenizer, [user("a"), user("b")])
    with pytest.raises(TemplateError, match="end with"):
        template.encode(tokenizer, [user("a")])
    with pytest.raises(ValueError, match="JSON"):
        template.encode(tokenizer, [user("a"), {"role": "function", "content": "get_weather(Paris)"}])
    with pytest.raises(TemplateError, match="name"):
        function_calls('[{"arguments": {}}]')
    with pytest.raises(TemplateError, match="tools"):
        template.encode(tokenizer, CONVERSATIONS["single"][0], None, "{not json")
