"""Model loading: hubs, tokenizers, quantizers, attention backends, patches and adapters."""
