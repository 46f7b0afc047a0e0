"""Tiny Qwen2-Audio: a one-layer Whisper-like audio encoder (d_model 32) on 128-bin log-mel features of the real
30-second window, a linear projector and a two-layer Qwen2 language model; the processor is Qwen2AudioProcessor
with a WhisperFeatureExtractor at 16 kHz and Qwen2-Audio's own chat template."""

from __future__ import annotations

from pathlib import Path

VERSION = 1

TOKENS = {"audio_bos_token": "<|audio_bos|>", "audio_token": "<|AUDIO|>", "audio_eos_token": "<|audio_eos|>"}
MEL_BINS = 128
WINDOW_S = 30  # the encoder's positions cover exactly the feature extractor's window: 3000 frames, 1500 positions


def build(path: Path) -> None:
    import torch
    from transformers import (
        AutoTokenizer,
        Qwen2AudioConfig,
        Qwen2AudioEncoderConfig,
        Qwen2AudioForConditionalGeneration,
        Qwen2AudioProcessor,
        Qwen2Config,
        WhisperFeatureExtractor,
    )
    from tunefactory.testing.tiny import build_tokenizer
    from tunefactory.testing.tiny_multimodal import save_model, text_config_kwargs

    build_tokenizer(path, arch="qwen2", extra_special_tokens=tuple(TOKENS.values()))
    tokenizer = AutoTokenizer.from_pretrained(str(path), **TOKENS)  # named, so the processor finds them
    extractor = WhisperFeatureExtractor(feature_size=MEL_BINS, sampling_rate=16000, chunk_length=WINDOW_S)
    Qwen2AudioProcessor(feature_extractor=extractor, tokenizer=tokenizer).save_pretrained(str(path))

    audio = Qwen2AudioEncoderConfig(num_mel_bins=MEL_BINS, encoder_layers=1, encoder_attention_heads=2,
                                    encoder_ffn_dim=64, d_model=32, max_source_positions=extractor.nb_max_frames // 2)
    config = Qwen2AudioConfig(audio_config=audio, text_config=Qwen2Config(**text_config_kwargs(tokenizer)),
                              audio_token_index=tokenizer.audio_token_id)
    torch.manual_seed(0)
    save_model(Qwen2AudioForConditionalGeneration(config), path, "qwen2_audio")
