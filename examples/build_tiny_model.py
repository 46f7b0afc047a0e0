"""Build the bundled tiny models: a random Llama (the quick start) in examples/models/tiny-llama and a random
Qwen2-VL (the multimodal example) in examples/models/tiny-qwen2-vl.

Runs offline in a few seconds; running it again keeps the models already there. Prints their folders.
"""

import shutil
from pathlib import Path

from tunefactory.testing.tiny import build_quickstart_model
from tunefactory.testing.tiny_multimodal import tiny_multimodal_path

MODELS = Path(__file__).resolve().parent / "models"


def build_multimodal(family: str, dest: Path) -> str:
    """The tiny ``family`` model copied to ``dest``, unless the same build is already there."""
    source = Path(tiny_multimodal_path(family))
    info = "tunefactory_tiny.json"
    if (dest / info).is_file() and (dest / info).read_text() == (source / info).read_text():
        return str(dest)
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(source, dest)
    return str(dest)


def main() -> None:
    print(build_quickstart_model(MODELS / "tiny-llama"))
    print(build_multimodal("qwen2_vl", MODELS / "tiny-qwen2-vl"))


if __name__ == "__main__":
    main()
