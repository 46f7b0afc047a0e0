"""Stage and fine-tuning method options: LoRA, OFT, freeze, preference and PPO training."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunefactory.config.options import opt


@dataclass
class FinetuningArguments:
    stage: str = opt("sft", "Training stage.", plugin_kind="stage")
    finetuning_type: Literal["lora", "oft", "freeze", "full"] = opt("lora", "Fine-tuning method.")
    pure_bf16: bool = opt(False, "Train in pure bf16, without AMP.")
    compute_accuracy: bool = opt(False, "Report token accuracy when evaluating.")
    disable_shuffling: bool = opt(False, "Keep the training data in order.")
    early_stopping_steps: int | None = opt(None, "Stop when the metric has not improved for this many evaluations.")
    plot_loss: bool = opt(False, "Save a PNG of the loss curve.")
    include_effective_tokens_per_second: bool = opt(False, "Report trained tokens per second.")
    freeze_vision_tower: bool = opt(True, "Keep the vision tower frozen in multimodal training.")
    freeze_multi_modal_projector: bool = opt(True, "Keep the multimodal projector frozen.")
    freeze_language_model: bool = opt(False, "Keep the language model frozen.")
    train_mm_proj_only: bool = opt(False, "Train only the multimodal projector.")
    # freeze
    freeze_trainable_layers: int = opt(2, "Freeze tuning: train this many last layers (negative: first layers).")
    freeze_trainable_modules: str = opt("all", "Freeze tuning: modules to train in those layers, comma-separated.")
    freeze_extra_modules: str | None = opt(None, "Freeze tuning: modules outside the layers to train too.")
    # lora
    additional_target: str | None = opt(None, "Modules besides LoRA layers to train and save, comma-separated.")
    lora_alpha: int | None = opt(None, "LoRA scale (default: twice lora_rank).")
    lora_dropout: float = opt(0.0, "Dropout of the LoRA layers.")
    lora_rank: int = opt(8, "Rank of the LoRA matrices.")
    lora_target: str = opt("all", "Modules that get LoRA, comma-separated; all means every linear layer.")
    loraplus_lr_ratio: float | None = opt(None, "LoRA+: learning-rate ratio of B to A.")
    loraplus_lr_embedding: float = opt(1e-6, "LoRA+: learning rate of embedding LoRA layers.")
    use_rslora: bool = opt(False, "Rank-stabilised LoRA scaling.")
    use_dora: bool = opt(False, "Weight-decomposed LoRA (DoRA).")
    pissa_init: bool = opt(False, "Initialise the adapter with PiSSA.")
    pissa_iter: int = opt(16, "PiSSA fast-SVD iterations (-1: exact SVD).")
    pissa_convert: bool = opt(False, "Convert the PiSSA adapter to a plain LoRA adapter when saving.")
    create_new_adapter: bool = opt(False, "Train a new adapter on top of the loaded ones.")
    # oft
    oft_rank: int = opt(0, "OFT: rank (0: derived from oft_block_size).")
    oft_block_size: int = opt(32, "OFT: block size.")
    oft_target: str = opt("all", "OFT: target modules, comma-separated.")
    module_dropout: float = opt(0.0, "OFT: dropout of whole blocks.")
    # preference training (rm, dpo, kto)
    pref_beta: float = opt(0.1, "Beta of the preference loss.")
    pref_ftx: float = opt(0.0, "Weight of the supervised loss added to DPO.")
    pref_bco_weight: float = opt(0.0, "Weight of the BCO loss added to DPO.")
    pref_loss: Literal["sigmoid", "hinge", "ipo", "kto_pair", "orpo", "simpo"] = opt("sigmoid", "DPO loss type.")
    dpo_label_smoothing: float = opt(0.0, "Robust DPO label smoothing, in [0, 0.5].")
    kto_chosen_weight: float = opt(1.0, "KTO weight of desirable examples.")
    kto_rejected_weight: float = opt(1.0, "KTO weight of undesirable examples.")
    simpo_gamma: float = opt(0.5, "SimPO target reward margin.")
    ld_alpha: float | None = opt(None, "LD-DPO weight of the verbose part of the answer.")
    ref_model: str | None = opt(None, "Reference model for DPO and KTO (default: the model itself).")
    ref_model_adapters: str | None = opt(None, "Adapters of the reference model.")
    ref_model_quantization_bit: int | None = opt(None, "Bits to quantize the reference model.")
    # ppo
    ppo_buffer_size: int = opt(1, "PPO: mini-batches per optimisation step.")
    ppo_epochs: int = opt(4, "PPO: epochs per optimisation step.")
    ppo_score_norm: bool = opt(False, "PPO: normalise the reward scores.")
    ppo_target: float = opt(6.0, "PPO: target KL for adaptive KL control.")
    ppo_whiten_rewards: bool = opt(False, "PPO: whiten the rewards.")
    reward_model: str | None = opt(None, "PPO: reward model path.")
    reward_model_adapters: str | None = opt(None, "PPO: adapters of the reward model.")
    reward_model_quantization_bit: int | None = opt(None, "PPO: bits to quantize the reward model.")
    reward_model_type: Literal["lora", "full", "api"] = opt("lora", "PPO: kind of reward model.")
    # LLaMA-Factory optimisers and trackers that tunefactory does not run (accepted off; on is a clear error)
    use_llama_pro: bool = opt(False, "LLaMA Pro block expansion (not supported).")
    use_adam_mini: bool = opt(False, "Adam-mini optimiser (not supported).")
    use_muon: bool = opt(False, "Muon optimiser (not supported).")
    use_mca: bool = opt(False, "Megatron-core adapter training (not supported).")
    use_galore: bool = opt(False, "GaLore optimiser (not supported).")
    use_apollo: bool = opt(False, "APOLLO optimiser (not supported).")
    use_badam: bool = opt(False, "BAdam optimiser (not supported).")
    use_swanlab: bool = opt(False, "SwanLab tracking (not supported).")
