"""`tunefactory chat CONFIG`: a terminal chat with streamed answers.

Type a message and the answer streams back; `clear` forgets the history, `exit` (or end of input, Ctrl-D) ends the
chat; Ctrl-C stops an answer being written, or ends the chat at the prompt. The system prompt is ``default_system``.
Turns can come from a pipe as well as a terminal: one line is one turn, and no prompt is printed.
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig
    from tunefactory.inference.chat_model import ChatModel

WELCOME = "Chat with the model: `clear` forgets the history, `exit` ends the chat."


def _read(stdin: TextIO, interactive: bool) -> str | None:
    """One turn, or None at the end of input."""
    if interactive:
        try:
            return input("\nUser: ")
        except EOFError:
            return None
    line = stdin.readline()
    return line if line else None


def chat_loop(model: ChatModel, stdin: TextIO | None = None, stdout: TextIO | None = None,
              system: str | None = None, interactive: bool | None = None, **generation: Any) -> int:
    """Run the chat on ``model`` until the user leaves; returns the exit status."""
    from tunefactory.errors import TunefactoryError

    stdin = stdin or sys.stdin
    stdout = stdout or sys.stdout
    if interactive is None:
        interactive = stdin is sys.stdin and stdin.isatty()
    if interactive:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass

    def say(text: str = "", end: str = "\n") -> None:
        stdout.write(text + end)
        stdout.flush()

    say(WELCOME)
    messages: list[dict[str, str]] = []
    while True:
        try:
            query = _read(stdin, interactive)
        except KeyboardInterrupt:
            say()
            break
        except UnicodeDecodeError:
            say("The input is not valid UTF-8: set the terminal's encoding to UTF-8.")
            continue
        if query is None:
            break
        query = query.strip()
        if not query:
            continue
        if query == "exit":
            break
        if query == "clear":
            messages = []
            say("History cleared.")
            continue
        messages.append({"role": "user", "content": query})
        say("Assistant: ", end="")
        answer = ""
        try:
            pieces = model.stream_chat(messages, system, **generation)
            try:
                for piece in pieces:
                    answer += piece
                    say(piece, end="")
            finally:
                pieces.close()
        except KeyboardInterrupt:
            say(" [stopped]")
            messages.pop()
            continue
        except TunefactoryError as exc:
            say()
            say(exc.render())
            messages.pop()
            continue
        say()
        messages.append({"role": "assistant", "content": answer})
    return 0


def run(config: RunConfig) -> int:
    from tunefactory.inference.chat_model import ChatModel

    model = ChatModel(config)
    try:
        if not model.can_generate:
            from tunefactory.errors import UsageError

            raise UsageError("this is a reward model (stage: rm): it scores texts and cannot chat; "
                             "use `tunefactory api` and its /v1/score/evaluation endpoint")
        return chat_loop(model, system=config.data.default_system)
    finally:
        model.close()
