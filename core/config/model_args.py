"""Model, tokenizer, loading, acceleration, inference, quantization and media options (reference sections 1-5)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from tunefactory.config.options import opt


@dataclass
class ModelArguments:
    # 1. model and tokenizer
    model_name_or_path: str | None = opt(None, "Model weights: a local folder or a hub id.")
    adapter_name_or_path: str | None = opt(None, "Adapters to load, comma-separated; earlier ones are merged.")
    adapter_folder: str | None = opt(None, "A folder holding several adapters to load.")
    cache_dir: str | None = opt(None, "Where models downloaded from a hub are cached.")
    use_fast_tokenizer: bool = opt(True, "Use the fast (tokenizers-backed) tokenizer.")
    resize_vocab: bool = opt(False, "Resize the vocabulary and the embedding layers to the tokenizer.")
    split_special_tokens: bool = opt(False, "Split special tokens into pieces while tokenizing.")
    add_tokens: str | None = opt(None, "Ordinary tokens to add, comma-separated.")
    add_special_tokens: str | None = opt(None, "Special tokens to add, comma-separated.")
    new_special_tokens_config: str | None = opt(
        None, "YAML file of {token: description}; takes precedence over add_special_tokens."
    )
    init_special_tokens: Literal["noise_init", "desc_init", "desc_init_w_noise"] = opt(
        "noise_init", "How new special tokens' embeddings start; desc_* need new_special_tokens_config."
    )
    model_revision: str = opt("main", "Model version on the hub: branch, tag or commit.")
    # 2. optimisation and acceleration
    low_cpu_mem_usage: bool = opt(True, "Load weights without a second copy in memory.")
    rope_scaling: str | None = opt(None, "RoPE scaling for long context.", plugin_kind="patch")
    flash_attn: str = opt("auto", "Attention implementation; auto picks the best that runs here.",
                          plugin_kind="attention", also=("auto",))
    shift_attn: bool = opt(False, "LongLoRA's shifted short attention (S2-Attn) while training.")
    mixture_of_depths: str | None = opt(None, "Convert the model to Mixture-of-Depths, or load one.",
                                        plugin_kind="patch")
    use_unsloth: bool = opt(False, "Unsloth's optimised LoRA training path.")
    use_unsloth_gc: bool = opt(False, "Unsloth-style gradient checkpointing with activations offloaded to CPU.")
    enable_liger_kernel: bool = opt(False, "Liger kernels for faster training.")
    moe_aux_loss_coef: float | None = opt(None, "Weight of the mixture-of-experts router auxiliary loss.")
    disable_gradient_checkpointing: bool = opt(False, "Turn gradient checkpointing off (it is on by default).")
    use_reentrant_gc: bool = opt(True, "Use reentrant gradient checkpointing.")
    upcast_layernorm: bool = opt(False, "Keep layer-norm weights in fp32.")
    upcast_lmhead_output: bool = opt(False, "Compute the lm_head output in fp32.")
    train_from_scratch: bool = opt(False, "Start from random weights with the model's config.")
    print_param_status: bool = opt(False, "Print every parameter's dtype, device and trainability.")
    trust_remote_code: bool = opt(False, "Allow code shipped with a hub model or dataset to run.")
    # 3. inference
    infer_backend: str = opt("huggingface", "Inference engine.", plugin_kind="engine")
    offload_folder: str = opt("offload", "Where weights are offloaded when device memory is short.")
    use_kv_cache: bool = opt(True, "Use the KV cache while generating.")
    infer_dtype: Literal["auto", "float16", "bfloat16", "float32"] = opt("auto", "Dtype of weights at inference.")
    hf_hub_token: str | None = opt(None, "Token for the Hugging Face Hub.")
    ms_hub_token: str | None = opt(None, "Token for the ModelScope Hub.")
    om_hub_token: str | None = opt(None, "Token for the Modelers Hub.")
    # 4. quantization
    quantization_method: str = opt("bnb", "On-the-fly quantization method.", plugin_kind="quantizer")
    quantization_bit: int | None = opt(None, "Bits of on-the-fly quantization.")
    quantization_type: Literal["fp4", "nf4"] = opt("nf4", "bitsandbytes 4-bit data type.")
    double_quantization: bool = opt(True, "bitsandbytes 4-bit double quantization.")
    quantization_device_map: Literal["auto"] | None = opt(None, "Device map for 4-bit inference.")
    # 5. media
    image_max_pixels: int = opt(768 * 768, "Images larger than this are resized down.")
    image_min_pixels: int = opt(32 * 32, "Images smaller than this are resized up.")
    image_do_pan_and_scan: bool = opt(False, "Pan-and-scan crops for gemma3.")
    crop_to_patches: bool = opt(False, "Crop images to patches for InternVL.")
    video_max_pixels: int = opt(256 * 256, "Video frames larger than this are resized down.")
    video_min_pixels: int = opt(16 * 16, "Video frames smaller than this are resized up.")
    video_fps: float = opt(2.0, "Frames sampled per second of video.")
    video_maxlen: int = opt(128, "At most this many frames per video.")
    use_audio_in_video: bool = opt(False, "Use the audio track of videos.")
    audio_sampling_rate: int = opt(16000, "Audio is resampled to this rate.")
    # engine options of the vllm, sglang and ktransformers plugins, named as LLaMA-Factory names them
    vllm_maxlen: int = opt(4096, "vLLM: maximum sequence length (prompt plus answer).")
    vllm_gpu_util: float = opt(0.7, "vLLM: fraction of GPU memory it may use.")
    vllm_enforce_eager: bool = opt(False, "vLLM: disable CUDA graphs.")
    vllm_max_lora_rank: int = opt(32, "vLLM: largest LoRA rank it accepts.")
    vllm_config: dict | str | None = opt(None, "vLLM: extra engine arguments (a mapping or JSON text).")
    sglang_maxlen: int = opt(4096, "SGLang: maximum sequence length.")
    sglang_mem_fraction: float = opt(0.7, "SGLang: fraction of GPU memory it may use.")
    sglang_tp_size: int = opt(-1, "SGLang: tensor-parallel size (-1: all visible GPUs).")
    sglang_config: dict | str | None = opt(None, "SGLang: extra engine arguments (a mapping or JSON text).")
    sglang_lora_backend: Literal["triton", "flashinfer"] = opt("triton", "SGLang: LoRA kernel backend.")
    use_kt: bool = opt(False, "Use KTransformers for inference.")
    kt_optimize_rule: str | None = opt(None, "KTransformers: path of the optimize-rule YAML.")
    cpu_infer: int = opt(32, "KTransformers: CPU threads for inference.")
    chunk_size: int = opt(8192, "KTransformers: prefill chunk size.")
    mode: Literal["normal", "long_context"] = opt("normal", "KTransformers: normal or long_context.")
    kt_maxlen: int = opt(4096, "KTransformers: maximum sequence length.")
    kt_use_cuda_graph: bool = opt(True, "KTransformers: use CUDA graphs.")
    kt_mode: Literal["normal", "long_context"] = opt("normal", "KTransformers: cache mode.")
    kt_force_think: bool = opt(False, "KTransformers: force the thinking prefix.")
