"""What each torchrun worker runs: ``python -m tunefactory.train.launch CONFIG`` (started by the train runner)."""

from __future__ import annotations

import sys


def main() -> None:
    from tunefactory.cli.main import main as cli_main

    cli_main(["train", *sys.argv[1:]])


if __name__ == "__main__":
    main()
