"""Microsoft Phi chat formats, described as data for `ChatTemplate`."""

from __future__ import annotations

from tunefactory.data.chat_template import ChatTemplate


class PhiTemplate(ChatTemplate):
    name = "phi"
    system = "<|system|>\n{content}<|end|>\n"
    user = "<|user|>\n{content}<|end|>\n"
    generation = "<|assistant|>\n"
    assistant = "{content}<|end|>\n"
    last_assistant = "{content}<|end|>\n{eos}"  # Phi-3's template ends a finished conversation with eos
    stop_words = ("<|end|>",)
    replace_eos = True


class PhiSmallTemplate(PhiTemplate):
    name = "phi_small"
    prefix = "{bos}"


class Phi4Template(ChatTemplate):
    name = "phi4"
    system = "<|im_start|>system<|im_sep|>{content}<|im_end|>"
    user = "<|im_start|>user<|im_sep|>{content}<|im_end|>"
    generation = "<|im_start|>assistant<|im_sep|>"
    assistant = "{content}<|im_end|>"
    stop_words = ("<|im_end|>",)
    replace_eos = True
