"""The template_qwen plugin: the contract of each template it registers."""

from tests.plugins.template_suites import contract_suites

globals().update(contract_suites("template_qwen", __name__))


def test_qwen2_omni_writes_chatml_with_omni_media_tokens(tiny_multimodal):
    """Qwen2.5-Omni's official chat template: ChatML, "You are a helpful assistant." when no system prompt is given,
    and <|vision_bos|><|IMAGE|><|vision_eos|>, <|audio_bos|><|AUDIO|><|audio_eos|>, <|vision_bos|><|VIDEO|>
    <|vision_eos|> for media content parts."""
    from transformers import AutoTokenizer
    from tunefactory.data.templates import get_template

    tokenizer = AutoTokenizer.from_pretrained(tiny_multimodal("qwen2_omni"))
    template = get_template(type("Data", (), {"template": "qwen2_omni"})(), tokenizer)
    assert template.media_processor == "qwen2_omni"
    messages = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]
    head = "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n"
    assert template.render(tokenizer, messages) == head + "Hi<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n"
    media = ("<|vision_bos|><|IMAGE|><|vision_eos|><|audio_bos|><|AUDIO|><|audio_eos|>"
             "<|vision_bos|><|VIDEO|><|vision_eos|>")
    parts = [{"role": "user", "content": [{"type": "image"}, {"type": "audio"}, {"type": "video"},
                                          {"type": "text", "text": "What?"}]}]
    text = tokenizer.apply_chat_template(parts, chat_template=template.to_jinja(), tokenize=False,
                                         add_generation_prompt=True)
    assert text == head + media + "What?<|im_end|>\n<|im_start|>assistant\n"
    assert len(tokenizer(media, add_special_tokens=False)["input_ids"]) == 9  # each one special token
