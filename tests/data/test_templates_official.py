"""Our chat templates against the official chat templates of their model families.

The installed `trl` package ships the chat templates that model repositories publish, as Jinja files in
`trl/chat_templates` (its README says which repository each comes from). They are read from the installed package at
test time, never copied into this repository. For every pair in `PAIRS`, the same conversations are rendered by the
official template (``tokenizer.apply_chat_template(chat_template=<official text>)``) and by ours (`encode` /
`encode_prompt`, and our `to_jinja()` rendered the same way), on a tiny tokenizer that has the family's special
tokens (fitted by `fix_tokenizer`, as a run fits it), and the text and the token ids must be identical.

Where the official template does what training cannot or what our description does not represent, the pair says
so in its ``expect`` and ``note``, and the comparison normalises exactly that and nothing else. `UNPAIRED` lists our
templates and the official files that are not compared, and why.
"""

from __future__ import annotations

import copy
import importlib.resources
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from tunefactory.data.chat_template import ChatTemplate, parse_tools, to_hf_messages
from tunefactory.data.templates import fix_tokenizer
from tunefactory.registry import get_registry

# -- the conversations (internal message format) ---------------------------------------------------------------------

TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "The weather of a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string", "description": "The city"}},
                "required": ["city"],
            },
        },
    },
    {
        "type": "function",
        "function": {
            "name": "get_time",
            "description": "The local time of a city",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    },
]
CALL = {"name": "get_weather", "arguments": {"city": "Paris"}}
OTHER_CALL = {"name": "get_time", "arguments": {"city": "Paris"}}


def user(text: str) -> dict:
    return {"role": "user", "content": text}


def assistant(text: str, reasoning: str | None = None) -> dict:
    message = {"role": "assistant", "content": text}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


def function(*calls: dict, reasoning: str | None = None) -> dict:
    message = {"role": "function", "content": json.dumps(list(calls))}
    if reasoning is not None:
        message["reasoning_content"] = reasoning
    return message


def observation(text: str) -> dict:
    return {"role": "observation", "content": text}


# name -> (messages, system, tools as JSON text)
CONVERSATIONS: dict[str, tuple[list[dict], str | None, str | None]] = {
    "single": ([user("Who are you?"), assistant("I am TinyFactory.")], None, None),
    "multi": ([user("Who are you?"), assistant("I am TinyFactory."), user("What is 2 + 3?"),
               assistant("The answer is 5.")], None, None),
    "system": ([user("Who are you?"), assistant("I am TinyFactory."), user("What is 2 + 3?"),
                assistant("The answer is 5.")], "Be brief.", None),
    # whitespace around the texts, for the families whose templates trim it (an answer's leading whitespace is left
    # out: tokenized on its own it cannot merge with the prompt's last characters, so no template can match the ids
    # of the whole text there)
    "spaces": ([user("  Who are you? \n"), assistant("I am TinyFactory. \n"), user("What is 2 + 3?"),
                assistant("The answer is 5.\n")], None, None),
    "system_spaces": ([user("Who are you?"), assistant("I am TinyFactory.")], " Be brief.\n", None),
    "tools": ([user("Weather in Paris?"), function(CALL), observation('{"temperature": 20}'),
               assistant("It is 20 degrees.")], "Be brief.", json.dumps(TOOLS)),
    "parallel": ([user("Weather and time in Paris?"), function(CALL, OTHER_CALL),
                  observation('{"temperature": 20, "time": "12:00"}'), assistant("20 degrees at noon.")], None,
                 json.dumps(TOOLS)),
    "thinking": ([user("What is 2 + 3?"), assistant("<think>\nTwo plus three.\n</think>\n\nThe answer is 5."),
                  user("And 3 + 4?"), assistant("<think>\nThree plus four.\n</think>\n\nIt is 7.")], None, None),
    "reasoning_field": ([user("What is 2 + 3?"), assistant("The answer is 5.", "Two plus three."),
                         user("And 3 + 4?"), assistant("It is 7.", "\nThree plus four.\n")], None, None),
    "tool_inline_thinking": ([user("Weather in Paris?"), function(CALL), observation('{"temperature": 20}'),
                              assistant("<think>\nIt says 20.\n</think>\n\nIt is 20 degrees.")], None,
                             json.dumps(TOOLS)),
    "tool_thinking": ([user("Weather in Paris?"), function(CALL, reasoning="Look it up."),
                       observation('{"temperature": 20}'), assistant("It is 20 degrees.", "It says 20.")], None,
                      json.dumps(TOOLS)),
}

PLAIN = ("single", "multi", "system", "spaces", "system_spaces", "thinking")  # no reasoning: "thinking" is text
TOOL_USE = ("tools", "parallel")
REASONING = PLAIN[:-1] + TOOL_USE + ("thinking", "reasoning_field", "tool_thinking")


# -- message adapters: what an official template needs that our messages give another way ----------------------------


def string_arguments(messages: list[dict]) -> list[dict]:
    """DeepSeek's templates concatenate the arguments of a call as text: give them as JSON text."""
    for message in messages:
        for call in message.get("tool_calls") or []:
            call["function"]["arguments"] = json.dumps(call["function"]["arguments"], ensure_ascii=False)
    return messages


def parsed_tool_results(messages: list[dict]) -> list[dict]:
    """Llama 3.1/3.2's templates JSON-encode every tool result (a string is iterable in Jinja, so a text result is
    written as a quoted JSON string); Meta's prompt format writes the result itself. Given as parsed JSON, the result
    renders as its JSON text, which is what our observation turn holds."""
    for message in messages:
        if message["role"] == "tool":
            message["content"] = json.loads(message["content"])
    return messages


# -- the pairs ------------------------------------------------------------------------------------------------------

FIXED_DATE = "26 Jul 2024"  # Llama 3.1's default date_string; our llama3 tool format writes the same


@dataclass(frozen=True)
class Pair:
    template: str
    official: str  # a file of trl/chat_templates
    family: str  # the tokenizer: a key of FAMILIES
    conversations: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)  # our template's data options (configure)
    variables: dict[str, Any] = field(default_factory=dict)  # extra render variables the official template reads
    adapt: Callable[[list[dict]], list[dict]] | None = None  # the messages as the official template needs them
    # how the official text relates to ours: "same"; "eos_after_last_answer" (ours ends a whole conversation with
    # eos); "without_prefill" (the official generation prompt also opens a thought block); "prompt_then_answer"
    # (a whole conversation is the official generation prompt followed by the last answer as the model writes it);
    # "fixed_date" (the official current date, written at render time, is ours fixed one)
    expect: str = "same"
    media: bool = False  # also compare content parts with media through the Jinja templates
    note: str = ""

    @property
    def id(self) -> str:
        thinking = "-nothink" if self.options.get("enable_thinking") is False else ""
        return f"{self.template}{thinking}~{self.official.removesuffix('.jinja')}"


PAIRS: tuple[Pair, ...] = (
    Pair("qwen", "qwen2_5.jinja", "qwen", PLAIN + TOOL_USE),
    Pair("qwen3", "qwen3.jinja", "qwen", REASONING),
    Pair("qwen3", "qwen3.jinja", "qwen", ("single", "multi", "system", "spaces") + TOOL_USE,
         options={"enable_thinking": False}, variables={"enable_thinking": False},
         note="enable_thinking off is, as in LLaMA-Factory, a training option that also drops the reasoning of the "
              "last answer; the official template only reads it for the generation prompt, so conversations whose "
              "last answer has reasoning are not compared with it off"),
    Pair("qwen3_nothink", "qwen3_instruct_2507.jinja", "qwen", PLAIN + TOOL_USE),
    Pair("qwen2_vl", "qwen2_5_vl.jinja", "qwen", PLAIN, media=True,
         note="Qwen2-VL / Qwen2.5-VL's template has no tool calling; ours keeps Qwen2.5's tool format"),
    Pair("qwen3_vl_nothink", "qwen3_vl.jinja", "qwen", PLAIN + TOOL_USE, media=True),
    Pair("llama3", "llama3.jinja", "llama3", PLAIN,
         note="Llama 3's template has no tool calling; tool use is compared with Llama 3.1's and 3.2's"),
    Pair("llama3", "llama3_1.jinja", "llama3", ("tools",),
         variables={"tools_in_user_message": False, "date_string": FIXED_DATE}, adapt=parsed_tool_results,
         note="3.1 puts the tools into the first user turn unless tools_in_user_message is false; our format (as "
              "LLaMA-Factory's) uses the system turn. One call per answer, as the official template allows. Plain "
              "chats are compared with Llama 3's template: 3.1's always opens with a system turn of date lines"),
    Pair("llama3", "llama3_2.jinja", "llama3", ("tools",),
         variables={"tools_in_user_message": False, "date_string": FIXED_DATE}, adapt=parsed_tool_results,
         note="as llama3_1; 3.2 writes today's date unless date_string is given"),
    Pair("gemma", "gemma.jinja", "gemma", ("single", "multi", "spaces", "thinking"),
         note="the official template rejects a system prompt; ours puts it before the first user turn, as Gemma 3's "
              "template does. No tool calling"),
    Pair("gemma2", "gemma.jinja", "gemma", ("single", "multi", "spaces", "thinking")),
    Pair("gemma3", "gemma3.jinja", "gemma", PLAIN, media=True, note="no tool calling in the official template"),
    Pair("phi", "phi3.jinja", "phi3", PLAIN, note="no tool calling in the official template"),
    Pair("phi", "phi3_5.jinja", "phi3", PLAIN),
    Pair("cohere", "cohere.jinja", "cohere", PLAIN, note="no tool calling in the official (Aya Expanse) template"),
    Pair("deepseek3", "deepseekv3.jinja", "deepseek", ("single", "multi", "system", "spaces") + TOOL_USE,
         adapt=string_arguments, expect="without_prefill",
         note="the official file prompts with '<think>\\n' and drops everything up to '</think>' in answers, as "
              "DeepSeek-R1 does; deepseek3 is the non-reasoning chat format, so its generation prompt stops before "
              "'<think>\\n' and reasoning conversations are compared for deepseekr1. The official template never "
              "resets its 'first tool output' flag, so only one round of tool use is compared"),
    Pair("deepseekr1", "deepseek_r1_distill.jinja", "deepseek", PLAIN, expect="prompt_then_answer",
         note="an inference template: it drops the reasoning of every answer, the last one too, which a training "
              "target must keep; a whole conversation is compared as the official generation prompt (which opens "
              "'<think>\\n') followed by the last answer as the model writes it. The distilled models' template "
              "drops tool calls, so tool use is compared with DeepSeek's R1-style deepseekv3.jinja"),
    Pair("deepseekr1", "deepseekv3.jinja", "deepseek", TOOL_USE + ("tool_inline_thinking",), adapt=string_arguments,
         note="the answer to a tool result follows it directly: no '<｜Assistant｜>', no prefilled '<think>\\n' and no "
              "empty thought block; the official template reads reasoning only from the content, so it is written "
              "inline here"),
    Pair("glm4_moe", "glm4moe.jinja", "glm4_moe", REASONING, expect="eos_after_last_answer",
         note="GLM answers have no closing token (the next role token ends them); ours ends a whole conversation "
              "with eos so that training teaches the model to stop (efficient_eos)"),
    Pair("glm4_moe", "glm4moe.jinja", "glm4_moe", ("single", "multi", "system", "spaces") + TOOL_USE,
         options={"enable_thinking": False}, variables={"enable_thinking": False}, expect="eos_after_last_answer",
         note="as for qwen3, enable_thinking off also drops the last answer's reasoning here"),
    Pair("gpt_oss", "gptoss.jinja", "gpt_oss", PLAIN + ("reasoning_field",), expect="fixed_date",
         note="the official system message has today's date (strftime_now); ours has a fixed one. Tools are not "
              "compared: harmony lists them as a TypeScript namespace and calls them in the commentary channel, "
              "with tool results headed by the function's name, which our tool formats do not write"),
)

# (our template or "", official file or "", why the pair is not compared)
UNPAIRED: tuple[tuple[str, str, str], ...] = (
    ("qwen3_vl", "qwen3_vl.jinja", "the file is Qwen3-VL's instruct template, without reasoning: it is compared "
                                   "with qwen3_vl_nothink; trl ships no Qwen3-VL thinking template"),
    ("llava_next", "llava_next.jinja", "the file is llava-v1.6-mistral's [INST] format; our llava_next is the "
                                       "Vicuna (USER: / ASSISTANT:) variant, as LLaMA-Factory's llava_next"),
    ("cohere", "cohere2.jinja", "the file is Cohere2 (Command R7B / Aya): a fixed preamble and <|START_RESPONSE|>; "
                                "our cohere is the Command-R / Aya Expanse format of cohere.jinja"),
    ("", "smolvlm.jinja", "no template of ours (SmolVLM / SmolVLM2)"),
    ("", "idefics3.jinja", "no template of ours (Idefics3)"),
    ("", "lfm2*.jinja, nemotron_*.jinja, muse_glimmer.jinja, gemma4*.jinja, diffusion_gemma.jinja, "
         "qwen3_5_*.jinja, qwen3_6.jinja, qwen3_8.jinja", "families we do not register"),
    ("", "*_training.jinja", "trl's own patched variants (generation markers), not the families' templates"),
    ("qwen2_audio, llama2, llama2_zh, llama4, mllama, gemma3n, paligemma, phi_small, phi4, deepseek, "
     "deepseekcoder, glm4, chatglm3, glmz1, mistral, ministral, mistral_small, pixtral, llava, video_llava, "
     "and the other families", "", "trl ships no official template for them"),
)

# tokenizer of a family: (tiny base tokenizer, bos, eos, special tokens of its chat format)
FAMILIES: dict[str, tuple[str, str | None, str, tuple[str, ...]]] = {
    "qwen": ("qwen3", None, "<|im_end|>", ()),
    "llama3": ("llama", "<|begin_of_text|>", "<|eot_id|>", ("<|eom_id|>", "<|python_tag|>")),
    "gemma": ("llama", "<bos>", "<eos>", ("<start_of_turn>", "<end_of_turn>", "<start_of_image>")),
    "phi3": ("llama", "<s>", "<|endoftext|>", ("<|system|>", "<|user|>", "<|assistant|>", "<|end|>")),
    "cohere": ("llama", "<BOS_TOKEN>", "<|END_OF_TURN_TOKEN|>",
               ("<|START_OF_TURN_TOKEN|>", "<|SYSTEM_TOKEN|>", "<|USER_TOKEN|>", "<|CHATBOT_TOKEN|>")),
    "deepseek": ("llama", "<｜begin▁of▁sentence｜>", "<｜end▁of▁sentence｜>",
                 ("<｜User｜>", "<｜Assistant｜>", "<｜tool▁calls▁begin｜>", "<｜tool▁calls▁end｜>",
                  "<｜tool▁call▁begin｜>", "<｜tool▁call▁end｜>", "<｜tool▁sep｜>", "<｜tool▁outputs▁begin｜>",
                  "<｜tool▁outputs▁end｜>", "<｜tool▁output▁begin｜>", "<｜tool▁output▁end｜>")),
    "glm4_moe": ("qwen3", None, "<|endoftext|>",
                 ("[gMASK]", "<sop>", "<|system|>", "<|user|>", "<|assistant|>", "<|observation|>")),
    "gpt_oss": ("qwen3", "<|startoftext|>", "<|return|>",
                ("<|start|>", "<|message|>", "<|end|>", "<|channel|>", "<|call|>", "<|constrain|>")),
}

CASES = [
    pytest.param(pair, conversation, generation, id=f"{pair.id}-{conversation}{'-prompt' if generation else ''}")
    for pair in PAIRS
    for conversation in pair.conversations
    for generation in (False, True)
]


# -- fixtures and helpers -------------------------------------------------------------------------------------------


def official_template(filename: str) -> str:
    try:
        folder = importlib.resources.files("trl") / "chat_templates"
    except ModuleNotFoundError:
        pytest.skip("trl is not installed: its chat_templates folder holds the official templates compared here")
    path = folder / filename
    if not path.is_file():
        pytest.skip(f"the installed trl has no chat_templates/{filename}")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def base_tokenizers(tmp_path_factory):
    from transformers import AutoTokenizer
    from tunefactory.testing.tiny import build_tokenizer

    built = {}
    for arch in ("llama", "qwen3"):
        folder = tmp_path_factory.mktemp(f"official-{arch}")
        build_tokenizer(folder, arch=arch)
        built[arch] = AutoTokenizer.from_pretrained(folder)
    return built


_tokenizers: dict[tuple[str, str], Any] = {}


@pytest.fixture
def tokenizer_for(base_tokenizers):
    """The family's tokenizer, fitted to the template by fix_tokenizer (one per template and family)."""

    def make(template: ChatTemplate, family: str):
        key = (template.name, family)
        if key not in _tokenizers:
            base, bos, eos, special = FAMILIES[family]
            tokenizer = copy.deepcopy(base_tokenizers[base])
            tokens: dict[str, Any] = {"eos_token": eos, "additional_special_tokens": list(special)}
            if bos is not None:
                tokens["bos_token"] = bos
            try:
                tokenizer.add_special_tokens(tokens, replace_extra_special_tokens=False)
            except TypeError:  # transformers 4 names the flag differently
                tokenizer.add_special_tokens(tokens, replace_additional_special_tokens=False)
            if bos is None:
                tokenizer.bos_token = None
            fix_tokenizer(template, tokenizer)
            _tokenizers[key] = tokenizer
        return _tokenizers[key]

    return make


def load(pair: Pair) -> ChatTemplate:
    return get_registry().select("template", pair.template).load()().configure(**pair.options)


def render_official(pair: Pair, tokenizer, messages, system, tools, generation: bool) -> str:
    hf_messages = to_hf_messages(messages, system)
    if pair.adapt is not None:
        hf_messages = pair.adapt(hf_messages)
    return tokenizer.apply_chat_template(
        hf_messages, tools=parse_tools(tools) or None, chat_template=official_template(pair.official),
        tokenize=False, add_generation_prompt=generation, **pair.variables,
    )


def render_our_jinja(pair: Pair, template: ChatTemplate, tokenizer, messages, system, tools, generation: bool) -> str:
    return tokenizer.apply_chat_template(
        to_hf_messages(messages, system), tools=parse_tools(tools) or None, chat_template=template.to_jinja(),
        tokenize=False, add_generation_prompt=generation,
        **{**pair.variables, "enable_thinking": template.enable_thinking},
    )


def ids(tokenizer, text: str) -> list[int]:
    return list(tokenizer(text, add_special_tokens=False)["input_ids"])


def r1_answer(content: str, eos: str) -> str:
    """The last answer as DeepSeek-R1 writes it after its generation prompt has opened the thought block."""
    thought, answer = "", content
    if "</think>" in content:
        thought, answer = content.split("</think>", 1)
        thought = thought.split("<think>")[-1].strip("\n")
    return thought + "\n</think>\n\n" + answer.lstrip("\n") + eos


def expected(pair: Pair, tokenizer, messages, system, tools, generation: bool) -> tuple[str, list[int]]:
    """The text and ids our template must give, from the official template's rendering."""
    if pair.expect == "prompt_then_answer" and not generation:
        prompt = render_official(pair, tokenizer, messages[:-1], system, tools, True)
        answer = r1_answer(messages[-1]["content"], tokenizer.eos_token)
        return prompt + answer, ids(tokenizer, prompt) + ids(tokenizer, answer)
    text = render_official(pair, tokenizer, messages, system, tools, generation)
    if pair.expect == "eos_after_last_answer" and not generation:
        text += tokenizer.eos_token
    elif pair.expect == "without_prefill" and generation:
        text = text.removesuffix("<think>\n")
    elif pair.expect == "fixed_date":
        from tunefactory.plugins.template_openai.impl import CURRENT_DATE

        text, count = re.subn(r"Current date: \d{4}-\d{2}-\d{2}", f"Current date: {CURRENT_DATE}", text)
        assert count == 1, text
    return text, ids(tokenizer, text)


# -- the comparisons ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("pair", "conversation", "generation"), CASES)
def test_matches_the_official_template(pair, conversation, generation, tokenizer_for):
    """Text and ids of a whole conversation (``encode``), or of its generation prompt (``encode_prompt``), are the
    official template's; so is the text our exported Jinja template renders."""
    template = load(pair)
    tokenizer = tokenizer_for(template, pair.family)
    messages, system, tools = CONVERSATIONS[conversation]
    if generation:
        messages = messages[:-1]
    want_text, want_ids = expected(pair, tokenizer, messages, system, tools, generation)

    assert template.render(tokenizer, messages, system, tools, add_generation_prompt=generation) == want_text
    assert render_our_jinja(pair, template, tokenizer, messages, system, tools, generation) == want_text
    if generation:
        got = template.encode_prompt(tokenizer, messages, system, tools)
    else:
        got = template.encode(tokenizer, messages, system, tools).input_ids
    assert tokenizer.decode(got) == want_text
    assert got == want_ids


MEDIA_MESSAGES = [
    {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is in the picture?"}]},
    {"role": "assistant", "content": "A cat."},
    {"role": "user", "content": [{"type": "text", "text": "And here?"}, {"type": "video"}]},
]


@pytest.mark.parametrize("pair", [pair for pair in PAIRS if pair.media], ids=lambda pair: pair.id)
@pytest.mark.parametrize("generation", [False, True])
def test_media_parts_render_as_the_official_template(pair, generation, tokenizer_for):
    """Content parts with images (and videos where the family has them) render to the same placeholder tokens."""
    template = load(pair)
    tokenizer = tokenizer_for(template, pair.family)
    messages = copy.deepcopy(MEDIA_MESSAGES)
    if "video" not in template.media_tokens or template.media_tokens["video"] == "<video>":
        messages[2]["content"] = [{"type": "text", "text": "And here?"}, {"type": "image"}]
    if generation:
        messages = [{"role": "system", "content": "Be brief."}, *messages]
    else:
        messages = [*messages, {"role": "assistant", "content": "A dog."}]
    official = tokenizer.apply_chat_template(
        messages, chat_template=official_template(pair.official), tokenize=False, add_generation_prompt=generation,
    )
    ours = tokenizer.apply_chat_template(
        messages, chat_template=template.to_jinja(), tokenize=False, add_generation_prompt=generation,
    )
    assert ours == official
    assert any(token in ours for token in template.media_tokens.values() if token.startswith("<"))


def test_every_pair_names_a_registered_template_and_an_official_file():
    names = {spec.name for spec in get_registry().specs("template")}
    for pair in PAIRS:
        assert pair.template in names, pair
        official_template(pair.official)
        assert pair.family in FAMILIES, pair
        assert pair.expect in ("same", "eos_after_last_answer", "without_prefill", "prompt_then_answer",
                               "fixed_date"), pair
        assert set(pair.conversations) <= set(CONVERSATIONS), pair
    for template, official, reason in UNPAIRED:
        assert reason and (template or official)
