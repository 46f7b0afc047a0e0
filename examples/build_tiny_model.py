"""Build the quick-start model: a tiny random Llama with its tokenizer, in examples/models/tiny-llama.

Runs offline in a few seconds; running it again keeps the model already there. Prints the model's folder.
"""

from pathlib import Path

from tunefactory.testing.tiny import build_quickstart_model

DEST = Path(__file__).resolve().parent / "models" / "tiny-llama"


def main() -> None:
    print(build_quickstart_model(DEST))


if __name__ == "__main__":
    main()
