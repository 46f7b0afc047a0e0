"""`tunefactory chat CONFIG`: a terminal chat with streamed answers.

Type a message and the answer streams back; `clear` forgets the history, `exit` (or end of input, Ctrl-D) ends the
chat; Ctrl-C stops an answer being written, or ends the chat at the prompt. The system prompt is ``default_system``.
Turns can come from a pipe as well as a terminal: one line is one turn, and no prompt is printed.

With a model that takes media, `/image PATH`, `/video PATH` and `/audio PATH` attach files to the next message; their
placeholders go before its text unless the text places them itself (``<image>``...), and they stay in the
conversation (the model sees them on later turns) until `clear`.
"""

from __future__ import annotations

import os
import shlex
import sys
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig
    from tunefactory.inference.chat_model import ChatModel

WELCOME = "Chat with the model: `clear` forgets the history, `exit` ends the chat."
COMMANDS = {"/image": "images", "/video": "videos", "/audio": "audios"}
MODALITY = {"images": "image", "videos": "video", "audios": "audio"}


def media_support(model: ChatModel) -> tuple[frozenset[str], str]:
    """(the modalities the model's template takes, why none when empty); empty when the engine has no template."""
    from tunefactory.data.media import media_processor_for
    from tunefactory.errors import TunefactoryError

    template = getattr(model.engine, "template", None)
    if template is None:
        return frozenset(), "the engine has no chat template"
    name = getattr(template, "name", "") or type(template).__name__
    try:
        modalities = frozenset(media_processor_for(template).modalities)
    except TunefactoryError as exc:
        return frozenset(), exc.render()
    if not modalities:
        return modalities, f"its template {name!r} is text only"
    return modalities, f"its template {name!r} takes {' and '.join(sorted(modalities))} only"


def media_help(modalities: frozenset[str]) -> str:
    """The welcome line about attachments, naming the commands for what the model takes."""
    commands = " or ".join(f"/{m} PATH" for m in ("image", "video", "audio") if m in modalities)
    return f"Attach a file to your next message with {commands}."


def _paths(argument: str) -> list[str]:
    """The file paths after a command: the text as it is when that is a file, else its shell words."""
    if not argument or os.path.exists(os.path.expanduser(argument)):
        return [argument] if argument else []
    try:
        return shlex.split(argument)
    except ValueError:
        return [argument]


def _attach(command: str, argument: str, support: tuple[frozenset[str], str], attached: dict[str, list[str]],
            say: Any) -> None:
    kind = COMMANDS[command]
    modalities, why = support
    if MODALITY[kind] not in modalities:
        say(f"This model takes no {'audio' if kind == 'audios' else kind}: {why}. Nothing attached.")
        return
    paths = _paths(argument)
    if not paths:
        say(f"Give the file to attach: {command} PATH")
        return
    found = []
    for path in paths:
        full = os.path.abspath(os.path.expanduser(path))
        if not os.path.isfile(full):
            say(f"No file {path!r}{' (a folder)' if os.path.isdir(full) else ''}: nothing attached.")
            return
        found.append(full)
    attached[kind].extend(found)
    waiting = ", ".join(f"{len(items)} {MODALITY[k]}{'s' if len(items) > 1 else ''}"
                        for k, items in attached.items() if items)
    say(f"Attached {', '.join(os.path.basename(p) for p in found)} ({waiting} for the next message).")


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
    support = media_support(model)
    if support[0]:
        say(media_help(support[0]))
    messages: list[dict[str, str]] = []
    media: dict[str, list[str]] = {kind: [] for kind in MODALITY}  # every item of the conversation, in order
    attached: dict[str, list[str]] = {kind: [] for kind in MODALITY}  # what the next message carries
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
            media = {kind: [] for kind in MODALITY}
            attached = {kind: [] for kind in MODALITY}
            say("History cleared.")
            continue
        command, _, argument = query.partition(" ")
        if command in COMMANDS:
            _attach(command, argument.strip(), support, attached, say)
            continue
        sent = _with_attachments(query, attached)
        messages.append({"role": "user", "content": sent})
        turn_media = {kind: media[kind] + attached[kind] for kind in MODALITY}
        carried = any(attached.values())
        attached = {kind: [] for kind in MODALITY}
        say("Assistant: ", end="")
        answer = ""
        try:
            pieces = model.stream_chat(messages, system, **_media_arguments(turn_media), **generation)
            try:
                for piece in pieces:
                    answer += piece
                    say(piece, end="")
            finally:
                pieces.close()
        except KeyboardInterrupt:
            say(" [stopped]")
            messages.pop()
            _dropped(carried, say)
            continue
        except TunefactoryError as exc:
            say()
            say(exc.render())
            messages.pop()
            _dropped(carried, say)
            continue
        say()
        messages.append({"role": "assistant", "content": answer})
        media = turn_media
    return 0


def _with_attachments(query: str, attached: dict[str, list[str]]) -> str:
    """The message text with the attachments' placeholders before it, unless it places any itself."""
    from tunefactory.data.media import PLACEHOLDERS, count_placeholders

    if not any(attached.values()) or any(count_placeholders([{"content": query}]).values()):
        return query
    return "".join(PLACEHOLDERS[kind] * len(items) for kind, items in attached.items()) + query


def _media_arguments(media: dict[str, list[str]]) -> dict[str, list[str]]:
    """Only the media lists with items, so a text-only conversation calls the model exactly as before."""
    return {kind: items for kind, items in media.items() if items}


def _dropped(carried: bool, say: Any) -> None:
    if carried:
        say("(The attachments of that message were dropped: attach them again.)")


def run(config: RunConfig) -> int:
    import contextlib

    from tunefactory.inference.chat_model import ChatModel

    # stdout carries the conversation alone: what libraries print while the model loads (gptqmodel's banner, which
    # peft's LoRA loading imports) goes to stderr with the logs
    with contextlib.redirect_stdout(sys.stderr):
        model = ChatModel(config)
    try:
        if not model.can_generate:
            from tunefactory.errors import UsageError

            raise UsageError("this is a reward model (stage: rm): it scores texts and cannot chat; "
                             "use `tunefactory api` and its /v1/score/evaluation endpoint")
        return chat_loop(model, system=config.data.default_system)
    finally:
        model.close()
