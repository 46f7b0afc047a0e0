"""Reference renderings of the main chat families, written by hand.

The models' official Jinja chat templates cannot be downloaded here (no hub access) and must not be copied, so
these strings, written from each family's published chat format (special tokens, role markers, where the system
prompt goes, how tool calls and tool results are written), stand in for them. Each is checked against both our
rendering (what training tokenizes) and our generated Jinja template (what exported tokenizers carry), with the
family's real bos/eos tokens.

Where our format knowingly differs from the family's own template it says so next to the string: the tool
instructions of the default tool format are worded by us; Mistral's tool calls carry no call ids; GLM's efficient eos
ends a conversation that ends with an answer with the eos token. The families whose official templates the installed
`trl` package ships are also checked against those templates, in test_templates_official.py.
"""

from __future__ import annotations

import json
from types import SimpleNamespace

import pytest
from tunefactory.data.chat_template import parse_tools, to_hf_messages
from tunefactory.registry import get_registry

FUNCTION = {
    "name": "get_weather",
    "description": "Get the weather",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
}
TOOLS = json.dumps([FUNCTION])
TOOL_JSON = (
    '{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", '
    '"parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}'
)
MULTI = [
    {"role": "user", "content": "Hi"},
    {"role": "assistant", "content": "Hello!"},
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "5"},
]
TOOL_USE = [
    {"role": "user", "content": "Weather in Paris?"},
    {"role": "function", "content": '[{"name": "get_weather", "arguments": {"city": "Paris"}}]'},
    {"role": "observation", "content": '{"temperature": 20}'},
    {"role": "assistant", "content": "It is 20 degrees."},
]
REASONING = [
    {"role": "user", "content": "What is 2 + 3?"},
    {"role": "assistant", "content": "<think>\nTwo plus three.\n</think>\n\nThe answer is 5."},
    {"role": "user", "content": "And 3 + 4?"},
    {"role": "assistant", "content": "<think>\nThree plus four.\n</think>\n\nIt is 7."},
]

QWEN_TOOLS = (
    "# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
    "You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n"
    + TOOL_JSON
    + "\n</tools>\n\nFor each function call, return a json object with function name and arguments within "
    "<tool_call></tool_call> XML tags:\n<tool_call>\n"
    '{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
)

# (template, its options, special tokens, messages, system, tools, add_generation_prompt, expected text)
CASES = {
    "chatml": (
        "chatml", {}, {"bos": None, "eos": "<|im_end|>"}, MULTI, "Be brief.", None, False,
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"
        "Hello!<|im_end|>\n<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\n5<|im_end|>\n",
    ),
    "qwen-default-system-prompt": (
        "qwen", {}, {"bos": None, "eos": "<|im_end|>"}, MULTI[:1], None, None, True,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    ),
    "qwen-tools": (
        "qwen", {}, {"bos": None, "eos": "<|im_end|>"}, TOOL_USE, "Be brief.", TOOLS, False,
        "<|im_start|>system\nBe brief.\n\n" + QWEN_TOOLS + "<|im_end|>\n"
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call><|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temperature": 20}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\nIt is 20 degrees.<|im_end|>\n",
    ),
    "qwen3-thinking": (
        "qwen3", {}, {"bos": None, "eos": "<|im_end|>"}, REASONING, None, None, False,
        # the reasoning of answers before the last user turn is dropped
        "<|im_start|>user\nWhat is 2 + 3?<|im_end|>\n<|im_start|>assistant\nThe answer is 5.<|im_end|>\n"
        "<|im_start|>user\nAnd 3 + 4?<|im_end|>\n"
        "<|im_start|>assistant\n<think>\nThree plus four.\n</think>\n\nIt is 7.<|im_end|>\n",
    ),
    "qwen3-no-reasoning-gets-an-empty-block": (
        "qwen3", {}, {"bos": None, "eos": "<|im_end|>"}, MULTI[:2], None, None, False,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\nHello!<|im_end|>\n",
    ),
    "qwen3-thinking-generation-prompt": (
        "qwen3", {}, {"bos": None, "eos": "<|im_end|>"}, MULTI[:1], None, None, True,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n",
    ),
    "qwen3-no-thinking-generation-prompt": (
        "qwen3", {"enable_thinking": False}, {"bos": None, "eos": "<|im_end|>"}, MULTI[:1], None, None, True,
        "<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    ),
    "qwen3-tools": (
        "qwen3", {}, {"bos": None, "eos": "<|im_end|>"}, TOOL_USE, None, TOOLS, False,
        "<|im_start|>system\n" + QWEN_TOOLS + "<|im_end|>\n"
        "<|im_start|>user\nWeather in Paris?<|im_end|>\n"
        '<|im_start|>assistant\n<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n'
        "</tool_call><|im_end|>\n"
        '<|im_start|>user\n<tool_response>\n{"temperature": 20}\n</tool_response><|im_end|>\n'
        "<|im_start|>assistant\n<think>\n\n</think>\n\nIt is 20 degrees.<|im_end|>\n",
    ),
    "llama2": (
        "llama2", {}, {"bos": "<s>", "eos": "</s>"}, MULTI, "Be brief.", None, False,
        "<s>[INST] <<SYS>>\nBe brief.\n<</SYS>>\n\nHi [/INST] Hello! </s><s>[INST] What is 2 + 3? [/INST] 5 </s>",
    ),
    "llama3": (
        "llama3", {}, {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>"}, MULTI, "Be brief.", None, False,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWhat is 2 + 3?<|eot_id|>"
        "<|start_header_id|>assistant<|end_header_id|>\n\n5<|eot_id|>",
    ),
    "llama3-tools": (
        # tool definitions before the system prompt, a call as {"name", "parameters"}, results as ipython turns;
        # the environment and date lines and the instructions as Llama 3.1's own template writes them with the tools
        # in the system turn (the date is that template's default; earlier goldens had our own wording and no dates)
        "llama3", {}, {"bos": "<|begin_of_text|>", "eos": "<|eot_id|>"}, TOOL_USE, "Be brief.", TOOLS, False,
        "<|begin_of_text|><|start_header_id|>system<|end_header_id|>\n\n"
        "Environment: ipython\nCutting Knowledge Date: December 2023\nToday Date: 26 Jul 2024\n\n"
        "You have access to the following functions. To call a function, please respond with JSON for a function "
        'call.Respond in the format {"name": function name, "parameters": dictionary of argument name and its '
        'value}.Do not use variables.\n\n'
        + json.dumps({"type": "function", "function": FUNCTION}, indent=4)
        + "\n\nBe brief.<|eot_id|>"
        "<|start_header_id|>user<|end_header_id|>\n\nWeather in Paris?<|eot_id|>"
        '<|start_header_id|>assistant<|end_header_id|>\n\n{"name": "get_weather", "parameters": {"city": "Paris"}}'
        "<|eot_id|>"
        '<|start_header_id|>ipython<|end_header_id|>\n\n{"temperature": 20}<|eot_id|>'
        "<|start_header_id|>assistant<|end_header_id|>\n\nIt is 20 degrees.<|eot_id|>",
    ),
    "mistral": (
        "mistral", {}, {"bos": "<s>", "eos": "</s>"}, MULTI, "Be brief.", None, False,
        "<s>[INST] Be brief.\n\nHi[/INST] Hello!</s>[INST] What is 2 + 3?[/INST] 5</s>",
    ),
    "mistral-tools": (
        # as Mistral's v3 format, without the call ids
        "mistral", {}, {"bos": "<s>", "eos": "</s>"}, TOOL_USE, None, TOOLS, False,
        "<s>[AVAILABLE_TOOLS] [" + TOOL_JSON + "][/AVAILABLE_TOOLS][INST] Weather in Paris?[/INST]"
        '[TOOL_CALLS] [{"name": "get_weather", "arguments": {"city": "Paris"}}]</s>'
        '[TOOL_RESULTS] {"content": {"temperature": 20}}[/TOOL_RESULTS] It is 20 degrees.</s>',
    ),
    "gemma": (
        "gemma", {}, {"bos": "<bos>", "eos": "<end_of_turn>"}, MULTI, "Be brief.", None, False,
        "<bos><start_of_turn>user\nBe brief.\n\nHi<end_of_turn>\n<start_of_turn>model\nHello!<end_of_turn>\n"
        "<start_of_turn>user\nWhat is 2 + 3?<end_of_turn>\n<start_of_turn>model\n5<end_of_turn>\n",
    ),
    "gemma-generation-prompt": (
        "gemma3", {}, {"bos": "<bos>", "eos": "<end_of_turn>"}, MULTI[:1], None, None, True,
        "<bos><start_of_turn>user\nHi<end_of_turn>\n<start_of_turn>model\n",
    ),
    "glm4": (
        # answers end where the next role token starts; the conversation's last answer with eos
        "glm4", {}, {"bos": None, "eos": "<|endoftext|>"}, MULTI, "Be brief.", None, False,
        "[gMASK]<sop><|system|>\nBe brief.<|user|>\nHi<|assistant|>\nHello!<|user|>\nWhat is 2 + 3?"
        "<|assistant|>\n5<|endoftext|>",
    ),
    "glm4-tools": (
        "glm4", {}, {"bos": None, "eos": "<|endoftext|>"}, TOOL_USE, "Be brief.", TOOLS, False,
        "[gMASK]<sop><|system|>\nBe brief.\n\n# 可用工具\n\n## get_weather\n\n"
        + json.dumps(FUNCTION, indent=4, ensure_ascii=False)
        + "\n在调用上述函数时，请使用 Json 格式表示调用的参数。<|user|>\nWeather in Paris?"
        '<|assistant|>get_weather\n{"city": "Paris"}<|observation|>\n{"temperature": 20}'
        "<|assistant|>\nIt is 20 degrees.<|endoftext|>",
    ),
    "glm4-generation-prompt": (
        "glm4", {}, {"bos": None, "eos": "<|endoftext|>"}, MULTI[:3], None, None, True,
        "[gMASK]<sop><|user|>\nHi<|assistant|>\nHello!<|user|>\nWhat is 2 + 3?<|assistant|>",
    ),
    "deepseek3": (
        "deepseek3", {}, {"bos": "<｜begin▁of▁sentence｜>", "eos": "<｜end▁of▁sentence｜>"}, MULTI, "Be brief.", None,
        False,
        "<｜begin▁of▁sentence｜>Be brief.<｜User｜>Hi<｜Assistant｜>Hello!<｜end▁of▁sentence｜>"
        "<｜User｜>What is 2 + 3?<｜Assistant｜>5<｜end▁of▁sentence｜>",
    ),
    "deepseekr1": (
        # an earlier answer keeps the newlines after its dropped reasoning, as DeepSeek-R1's template writes it
        # (earlier goldens stripped them)
        "deepseekr1", {}, {"bos": "<｜begin▁of▁sentence｜>", "eos": "<｜end▁of▁sentence｜>"}, REASONING, None, None,
        False,
        "<｜begin▁of▁sentence｜><｜User｜>What is 2 + 3?<｜Assistant｜>\n\nThe answer is 5.<｜end▁of▁sentence｜>"
        "<｜User｜>And 3 + 4?<｜Assistant｜><think>\nThree plus four.\n</think>\n\nIt is 7.<｜end▁of▁sentence｜>",
    ),
    "phi4": (
        "phi4", {}, {"bos": "<|endoftext|>", "eos": "<|im_end|>"}, MULTI[:2], "Be brief.", None, False,
        "<|im_start|>system<|im_sep|>Be brief.<|im_end|><|im_start|>user<|im_sep|>Hi<|im_end|>"
        "<|im_start|>assistant<|im_sep|>Hello!<|im_end|>",
    ),
    "phi": (
        # Phi-3's template ends a finished conversation with the eos token (here <|end|>, as replace_eos makes it);
        # earlier goldens left it out
        "phi", {}, {"bos": "<s>", "eos": "<|end|>"}, MULTI[:2], "Be brief.", None, False,
        "<|system|>\nBe brief.<|end|>\n<|user|>\nHi<|end|>\n<|assistant|>\nHello!<|end|>\n<|end|>",
    ),
    "cohere": (
        "cohere", {}, {"bos": "<BOS_TOKEN>", "eos": "<|END_OF_TURN_TOKEN|>"}, MULTI[:2], "Be brief.", None, False,
        "<BOS_TOKEN><|START_OF_TURN_TOKEN|><|SYSTEM_TOKEN|>Be brief.<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|USER_TOKEN|>Hi<|END_OF_TURN_TOKEN|>"
        "<|START_OF_TURN_TOKEN|><|CHATBOT_TOKEN|>Hello!<|END_OF_TURN_TOKEN|>",
    ),
    "vicuna": (
        "vicuna", {}, {"bos": "<s>", "eos": "</s>"}, MULTI, None, None, False,
        "A chat between a curious user and an artificial intelligence assistant. The assistant gives helpful, "
        "detailed, and polite answers to the user's questions. USER: Hi ASSISTANT: Hello!</s>"
        "USER: What is 2 + 3? ASSISTANT: 5</s>",
    ),
    "alpaca": (
        "alpaca", {}, {"bos": "<s>", "eos": "</s>"}, MULTI, None, None, False,
        "Below is an instruction that describes a task. Write a response that appropriately completes the "
        "request.\n\n### Instruction:\nHi\n\n### Response:\nHello!</s>\n\n### Instruction:\nWhat is 2 + 3?\n\n"
        "### Response:\n5</s>",
    ),
    "zephyr": (
        "zephyr", {}, {"bos": "<s>", "eos": "</s>"}, MULTI[:2], "Be brief.", None, False,
        "<|system|>\nBe brief.</s>\n<|user|>\nHi</s>\n<|assistant|>\nHello!</s>\n",
    ),
    "granite3": (
        "granite3", {}, {"bos": None, "eos": "<|end_of_text|>"}, MULTI[:2], "Be brief.", None, False,
        "<|start_of_role|>system<|end_of_role|>Be brief.<|end_of_text|>\n"
        "<|start_of_role|>user<|end_of_role|>Hi<|end_of_text|>\n"
        "<|start_of_role|>assistant<|end_of_role|>Hello!<|end_of_text|>\n",
    ),
    "gpt_oss": (
        # harmony: the system message first (with a fixed current date), the system prompt as the developer's
        # instructions, reasoning in the analysis channel, the answer in the final channel, and the last answer ending
        # with <|return|>, as gpt-oss's own template writes them (earlier goldens had no system message, no blank line
        # after the instructions, and <|end|> after the last answer)
        "gpt_oss", {}, {"bos": "<|startoftext|>", "eos": "<|return|>"},
        [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!", "reasoning_content": "Greet."}],
        "Be brief.", None, False,
        "<|start|>system<|message|>You are ChatGPT, a large language model trained by OpenAI.\n"
        "Knowledge cutoff: 2024-06\nCurrent date: 2025-06-28\n\nReasoning: medium\n\n"
        "# Valid channels: analysis, commentary, final. Channel must be included for every message.<|end|>"
        "<|start|>developer<|message|># Instructions\n\nBe brief.\n\n<|end|><|start|>user<|message|>Hi<|end|>"
        "<|start|>assistant<|channel|>analysis<|message|>Greet.<|end|>"
        "<|start|>assistant<|channel|>final<|message|>Hello!<|return|>",
    ),
}


def render_jinja(template, special, messages, system, tools, add_generation_prompt, options):
    from transformers.utils.chat_template_utils import render_jinja_template

    tokens = {f"{key}_token": value for key, value in special.items() if value is not None}
    rendered, _ = render_jinja_template(
        conversations=[to_hf_messages(messages, system)], tools=parse_tools(tools) or None,
        chat_template=template.to_jinja(), add_generation_prompt=add_generation_prompt, **tokens, **options,
    )
    return rendered[0]


@pytest.mark.parametrize("case", list(CASES))
def test_golden_rendering(case):
    name, options, special, messages, system, tools, add_generation_prompt, expected = CASES[case]
    template = get_registry().select("template", name).load()().configure(**options)
    tokenizer = SimpleNamespace(bos_token=special["bos"], eos_token=special["eos"])
    assert template.render(tokenizer, messages, system, tools, add_generation_prompt=add_generation_prompt) == expected
    assert render_jinja(template, special, messages, system, tools, add_generation_prompt, options) == expected
