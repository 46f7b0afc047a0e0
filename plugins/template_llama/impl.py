"""Meta Llama chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class Llama2Template(ChatTemplate):
    name = "llama2"
    system = "<<SYS>>\n{content}\n<</SYS>>\n\n"
    system_in_user = True
    user = "{bos}[INST] {content} [/INST]"
    assistant = " {content} {eos}"


class Llama2ZhTemplate(Llama2Template):
    name = "llama2_zh"
    default_system = "You are a helpful assistant. 你是一个乐于助人的助手。"


class Llama3Template(ChatTemplate):
    name = "llama3"
    prefix = "{bos}"
    system = "<|start_header_id|>system<|end_header_id|>\n\n{content}<|eot_id|>"
    user = "<|start_header_id|>user<|end_header_id|>\n\n{content}<|eot_id|>"
    observation = "<|start_header_id|>ipython<|end_header_id|>\n\n{content}<|eot_id|>"
    generation = "<|start_header_id|>assistant<|end_header_id|>\n\n"
    assistant = "{content}<|eot_id|>"
    trim_roles = ("system", "user", "assistant")  # Llama 3's template trims every message
    tool_format = "llama3"
    stop_words = ("<|eot_id|>", "<|eom_id|>")
    replace_eos = True


class MLlamaTemplate(Llama3Template):
    name = "mllama"
    media_processor = "mllama"
    media_tokens = {"image": "<|image|>", "video": "<video>", "audio": "<audio>"}


class Llama4Template(ChatTemplate):
    name = "llama4"
    prefix = "{bos}"
    system = "<|header_start|>system<|header_end|>\n\n{content}<|eot|>"
    user = "<|header_start|>user<|header_end|>\n\n{content}<|eot|>"
    observation = "<|header_start|>ipython<|header_end|>\n\n{content}<|eot|>"
    generation = "<|header_start|>assistant<|header_end|>\n\n"
    assistant = "{content}<|eot|>"
    tool_format = "llama3"
    stop_words = ("<|eot|>", "<|eom|>")
    replace_eos = True
    media_processor = "llama4"
    media_tokens = {"image": "<|image|>", "video": "<video>", "audio": "<audio>"}
