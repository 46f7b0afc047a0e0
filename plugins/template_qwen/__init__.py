"""Qwen chat formats: Qwen 1.5-2.5, Qwen3 (reasoning in <think>), and the vision and audio variants.

Registration only: the descriptions in impl.py are imported when a config selects one.
"""

from tunefactory.hookspecs import hookimpl

# name, class in impl.py, summary, media processor, renders reasoning
TEMPLATES = (
    ("qwen", "QwenTemplate", "Qwen / Qwen2 / Qwen2.5 (ChatML, <tool_call> tool calls)", "base", False),
    ("qwen3", "Qwen3Template", "Qwen3 with <think> reasoning", "base", True),
    ("qwen3_nothink", "Qwen3NoThinkTemplate", "Qwen3 instruct models without reasoning (2507)", "base", False),
    ("qwen2_vl", "Qwen2VLTemplate", "Qwen2-VL / Qwen2.5-VL (images and videos)", "qwen2_vl", False),
    ("qwen3_vl", "Qwen3VLTemplate", "Qwen3-VL with <think> reasoning (images and videos)", "qwen3_vl", True),
    ("qwen3_vl_nothink", "Qwen3VLNoThinkTemplate", "Qwen3-VL instruct models without reasoning", "qwen3_vl", False),
    ("qwen2_audio", "Qwen2AudioTemplate", "Qwen2-Audio (audio)", "qwen2_audio", False),
    ("qwen2_omni", "Qwen2OmniTemplate", "Qwen2.5-Omni thinker (images, videos and audio)", "qwen2_omni", False),
)


@hookimpl
def tunefactory_register_templates(register):
    for name, cls, summary, media, thinking in TEMPLATES:
        register(name, f"{__name__}.impl:{cls}", summary=summary, capabilities={"media": media, "thinking": thinking})
