"""Generation options for chat, the API server, predict and PPO rollouts."""

from __future__ import annotations

from dataclasses import dataclass

from tunefactory.config.options import opt


@dataclass
class GenerationArguments:
    do_sample: bool = opt(True, "Sample; otherwise decode greedily.")
    temperature: float = opt(0.95, "Sampling temperature.")
    top_p: float = opt(0.7, "Nucleus sampling: keep the smallest set of tokens with this much probability.")
    top_k: int = opt(50, "Sample among the k most likely tokens.")
    num_beams: int = opt(1, "Beams for beam search (1: none).")
    max_length: int = opt(1024, "Maximum length of prompt plus answer; max_new_tokens wins when set.")
    max_new_tokens: int = opt(1024, "Maximum number of generated tokens.")
    repetition_penalty: float = opt(1.0, "Penalty for repeated tokens (1.0: none).")
    length_penalty: float = opt(1.0, "Exponential length penalty of beam search.")
    skip_special_tokens: bool = opt(True, "Leave special tokens out of decoded text.")
