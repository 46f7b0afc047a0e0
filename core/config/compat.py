"""LLaMA-Factory and transformers options that were renamed or removed: each one gets a migration hint."""

from __future__ import annotations

from tunefactory.errors import Problem

# old name -> (what happened, how to migrate)
MIGRATIONS: dict[str, tuple[str, str]] = {
    "evaluation_strategy": ("was renamed by transformers", "write eval_strategy"),
    "no_cuda": ("was removed by transformers", "write use_cpu: true"),
    "use_mps_device": ("was removed by transformers", "leave it out; MPS is used when present"),
    "push_to_hub_token": ("was removed by transformers", "write hub_token"),
    "push_to_hub_model_id": ("was removed by transformers", "write hub_model_id"),
    "dpo_beta": ("was renamed by LLaMA-Factory", "write pref_beta"),
    "dpo_loss": ("was renamed by LLaMA-Factory", "write pref_loss"),
    "dpo_ftx": ("was renamed by LLaMA-Factory", "write pref_ftx"),
    "orpo_beta": ("was merged into pref_beta by LLaMA-Factory", "write pref_beta with pref_loss: orpo"),
    "max_source_length": ("was removed by LLaMA-Factory", "write cutoff_len (prompt and answer together)"),
    "max_target_length": ("was removed by LLaMA-Factory", "write cutoff_len (prompt and answer together)"),
    "reserved_label_len": ("was removed by LLaMA-Factory", "leave it out; cutoff_len truncation keeps the answer"),
    "visual_inputs": ("was removed by LLaMA-Factory", "leave it out; multimodal input follows the template"),
    "use_mllm": ("was removed by LLaMA-Factory", "leave it out; multimodal input follows the template"),
    "export_quantization_device": ("was removed by LLaMA-Factory", "write export_device"),
    "name_module_trainable": ("was renamed by LLaMA-Factory", "write freeze_trainable_modules"),
    "num_layer_trainable": ("was renamed by LLaMA-Factory", "write freeze_trainable_layers"),
    "lora_target_modules": ("is not an option", "write lora_target"),
    "vllm_max_model_len": ("is spelt differently", "write vllm_maxlen"),
    "quantization": ("is not an option", "write quantization_bit (and quantization_method)"),
    "use_flash_attention_2": ("was replaced", "write flash_attn: fa2"),
    "use_flash_attn": ("was replaced", "write flash_attn: fa2 (or auto)"),
    "attn_implementation": ("is chosen with flash_attn", "write flash_attn: disabled, sdpa, fa2, fa3 or auto"),
    "torch_dtype": ("is chosen with infer_dtype, bf16 or fp16", "write infer_dtype, or bf16: true / fp16: true"),
}


def migration_problem(key: str) -> Problem | None:
    if key not in MIGRATIONS:
        return None
    what, hint = MIGRATIONS[key]
    return Problem(key, f"this option {what}", hint)
