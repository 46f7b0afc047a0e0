"""Builders of tiny random-weight multimodal models, one module per family (see tunefactory.testing.tiny_multimodal).

Each module defines ``VERSION`` (bumped when its output changes) and ``build(path: pathlib.Path) -> None``, which
writes a loadable model folder: config and safetensors weights, the tokenizer with the family's media tokens, the
processor files (so ``AutoProcessor`` loads offline) and a generation config.
"""
