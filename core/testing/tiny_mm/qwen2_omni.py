"""Tiny Qwen2.5-Omni thinker (what is fine-tuned; no talker, no token2wav): a one-layer Qwen2.5-VL-style vision
encoder (patch 14, merge 2, temporal patch 2), a one-layer Qwen2.5-Omni audio encoder on 128-bin log-mel features,
and a two-layer language model with multimodal rotary positions.

transformers cannot build a ``Qwen2_5OmniProcessor`` without torchvision (its Qwen2-VL video processor needs it), so
``processor_config.json`` is written from the parts: the image processor and the Whisper feature extractor as they
save themselves, and the video processor's settings (``VIDEO_PROCESSOR``). With torchvision, ``AutoProcessor`` loads
the folder as a whole; without it, tunefactory.model.processor_compat builds it around the video settings.
"""

from __future__ import annotations

import json
from pathlib import Path

VERSION = 1

TOKENS = {
    "image_token": "<|IMAGE|>", "video_token": "<|VIDEO|>", "audio_token": "<|AUDIO|>",
    "vision_bos_token": "<|vision_bos|>", "vision_eos_token": "<|vision_eos|>",
    "audio_bos_token": "<|audio_bos|>", "audio_eos_token": "<|audio_eos|>",
}
MEL_BINS = 128
MIN_PIXELS, MAX_PIXELS = 56 * 56, 28 * 28 * 16384  # Qwen2.5-Omni's bounds: 3,136 to 12,845,056 pixels
CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073]
CLIP_STD = [0.26862954, 0.26130258, 0.27577711]
VIDEO_PROCESSOR = {
    "video_processor_type": "Qwen2VLVideoProcessor",
    "size": {"shortest_edge": MIN_PIXELS, "longest_edge": MAX_PIXELS},
    "patch_size": 14, "temporal_patch_size": 2, "merge_size": 2,
    "do_resize": True, "resample": 3, "do_rescale": True, "rescale_factor": 1 / 255, "do_normalize": True,
    "image_mean": CLIP_MEAN, "image_std": CLIP_STD, "do_convert_rgb": True, "do_sample_frames": False,
}


def build(path: Path) -> None:
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2_5OmniThinkerConfig,
        Qwen2_5OmniThinkerForConditionalGeneration,
        Qwen2VLImageProcessorPil,
        WhisperFeatureExtractor,
    )
    from transformers.models.qwen2_5_omni.configuration_qwen2_5_omni import (
        Qwen2_5OmniAudioEncoderConfig,
        Qwen2_5OmniTextConfig,
        Qwen2_5OmniVisionEncoderConfig,
    )
    from tunefactory.testing.tiny import build_tokenizer
    from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

    build_tokenizer(path, arch="qwen2", extra_special_tokens=tuple(TOKENS.values()))
    tokenizer = AutoTokenizer.from_pretrained(str(path), **TOKENS)  # named, as Qwen2_5OmniProcessor reads them
    tokenizer.save_pretrained(str(path), save_jinja_files=False)
    image_processor = Qwen2VLImageProcessorPil(min_pixels=MIN_PIXELS, max_pixels=MAX_PIXELS, image_mean=CLIP_MEAN,
                                               image_std=CLIP_STD)
    extractor = WhisperFeatureExtractor(feature_size=MEL_BINS, sampling_rate=16000)
    processor = {"processor_class": "Qwen2_5OmniProcessor", "image_processor": image_processor.to_dict(),
                 "video_processor": VIDEO_PROCESSOR, "feature_extractor": extractor.to_dict()}
    (path / "processor_config.json").write_text(json.dumps(processor, indent=2, sort_keys=True) + "\n",
                                                encoding="utf-8")

    ids = {name: tokenizer.convert_tokens_to_ids(token) for name, token in TOKENS.items()}
    head_dim = text_config_kwargs(tokenizer)["head_dim"]
    text = Qwen2_5OmniTextConfig(**text_config_kwargs(tokenizer, rope_parameters={
        "rope_type": "default", "rope_theta": 1000000.0, "mrope_section": [2, 3, head_dim // 2 - 5]}))
    audio = Qwen2_5OmniAudioEncoderConfig(num_mel_bins=MEL_BINS, encoder_layers=1, encoder_attention_heads=2,
                                          encoder_ffn_dim=64, d_model=32, output_dim=text.hidden_size)
    vision = Qwen2_5OmniVisionEncoderConfig(depth=1, hidden_size=32, intermediate_size=64, num_heads=2,
                                            out_hidden_size=text.hidden_size, fullatt_block_indexes=[0])
    config = Qwen2_5OmniThinkerConfig(
        audio_config=audio, vision_config=vision, text_config=text, audio_token_index=ids["audio_token"],
        image_token_index=ids["image_token"], video_token_index=ids["video_token"],
        audio_start_token_id=ids["audio_bos_token"], audio_end_token_id=ids["audio_eos_token"],
        vision_start_token_id=ids["vision_bos_token"], vision_end_token_id=ids["vision_eos_token"],
    )
    torch.manual_seed(0)
    save_model(Qwen2_5OmniThinkerForConditionalGeneration(config), path, "qwen2_omni")
