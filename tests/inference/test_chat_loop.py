"""The chat loop: turns from a pipe and from a terminal (a pseudo-terminal), history, clear, exit, Ctrl-C, Ctrl-D;
every way out ends the process cleanly."""

import io
import os
import pty
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from tunefactory.inference.chat_loop import WELCOME, chat_loop
from tunefactory.inference.chat_model import ChatModel

from tests.inference.support import load_hf_engine

ROOT = Path(__file__).resolve().parents[2]


class Recorder:
    """Wraps an engine to record what each turn sent."""

    def __init__(self, engine):
        self.engine, self.calls = engine, []

    def __getattr__(self, name):
        return getattr(self.engine, name)

    def stream_chat_sync(self, messages, system=None, *args, **kwargs):
        self.calls.append(([dict(m) for m in messages], system))
        return self.engine.stream_chat_sync(messages, system, *args, **kwargs)


@pytest.fixture(scope="module")
def engine(tiny_llama):
    engine = load_hf_engine(tiny_llama)
    yield engine
    engine.close()


def test_history_clear_and_exit(engine):
    recorder = Recorder(engine)
    out = io.StringIO()
    turns = io.StringIO("hello\n\nhow are you?\nclear\nagain\nexit\nnever read\n")
    status = chat_loop(ChatModel(engine=recorder), turns, out, system="Be brief.", interactive=False,
                       max_new_tokens=4, do_sample=False)
    assert status == 0
    text = out.getvalue()
    assert text.startswith(WELCOME) and text.count("Assistant: ") == 3 and "History cleared." in text
    first, second, third = recorder.calls
    assert [m["role"] for m in first[0]] == ["user"] and first[1] == "Be brief."
    assert [m["content"] for m in second[0]][::2] == ["hello", "how are you?"]
    assert [m["role"] for m in second[0]] == ["user", "assistant", "user"]
    assert third[0] == [{"role": "user", "content": "again"}]


def test_end_of_input_ends_the_chat(engine):
    out = io.StringIO()
    assert chat_loop(ChatModel(engine=engine), io.StringIO("hi\n"), out, interactive=False, max_new_tokens=3) == 0
    assert out.getvalue().count("Assistant: ") == 1


def _command(tmp_path, model, max_new_tokens):
    """`tunefactory chat CONFIG` on a tiny model with the qwen template."""
    config = tmp_path / "chat.yaml"
    config.write_text(f"model_name_or_path: {model}\ntemplate: qwen\nmax_new_tokens: {max_new_tokens}\n"
                      "do_sample: false\ndefault_system: You are a tester.\n")
    return [str(Path(sys.executable).parent / "tunefactory"), "chat", str(config)]


def test_a_reward_model_cannot_chat(tiny_qwen2):
    from tunefactory.config.run_config import load_config
    from tunefactory.errors import UsageError
    from tunefactory.inference import chat_loop as module

    config = load_config(["--model_name_or_path", tiny_qwen2, "--template", "qwen", "--stage", "rm"], "chat")
    with pytest.raises(UsageError, match="reward model"):
        module.run(config)


def test_a_backend_that_is_not_installed_names_the_extra(tmp_path):
    config = tmp_path / "vllm.yaml"
    config.write_text("model_name_or_path: some/model\ntemplate: qwen\ninfer_backend: vllm\n")
    result = subprocess.run([str(Path(sys.executable).parent / "tunefactory"), "chat", str(config)],
                            capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL)
    assert result.returncode == 2, result.stderr
    assert 'pip install "tunefactory[vllm]"' in result.stderr + result.stdout
    assert "Traceback" not in result.stderr


@pytest.mark.slow
def test_turns_from_a_pipe(tmp_path, tiny_qwen2):
    result = subprocess.run(_command(tmp_path, tiny_qwen2, 6), input="hello\nclear\nwhat now?\nexit\n",
                            capture_output=True, text=True, cwd=ROOT, timeout=180)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("Assistant: ") == 2 and "History cleared." in result.stdout
    assert "User: " not in result.stdout  # no prompts when the turns come from a pipe
    assert result.stdout.startswith("Chat with the model")  # nothing loading prints lands in the conversation
    assert "Traceback" not in result.stderr and "Fatal" not in result.stderr


class Terminal:
    """A process on a pseudo-terminal: type into it, read what it shows."""

    def __init__(self, command):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child
            os.chdir(ROOT)
            os.execv(command[0], command)
        self.seen = ""

    def read_until(self, text, timeout=60.0):
        deadline = time.monotonic() + timeout
        while text not in self.seen:
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"never saw {text!r}; the terminal shows:\n{self.seen[-2000:]}")
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                try:
                    chunk = os.read(self.fd, 4096)
                except OSError:  # the process ended
                    chunk = b""
                if not chunk:
                    raise AssertionError(f"ended before {text!r}:\n{self.seen[-2000:]}")
                self.seen += chunk.decode("utf-8", "replace")
        found = self.seen.index(text) + len(text)
        self.seen = self.seen[found:]

    def type(self, text):
        os.write(self.fd, text.encode())

    def wait(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with_pid, status = os.waitpid(self.pid, os.WNOHANG)
            if with_pid:
                self._drain()
                return os.waitstatus_to_exitcode(status)
            self._drain()
            time.sleep(0.05)
        os.kill(self.pid, signal.SIGKILL)
        os.waitpid(self.pid, 0)
        raise AssertionError(f"the chat did not end; it shows:\n{self.seen[-2000:]}")

    def _drain(self):
        while select.select([self.fd], [], [], 0)[0]:
            try:
                chunk = os.read(self.fd, 4096)
            except OSError:
                return
            if not chunk:
                return
            self.seen += chunk.decode("utf-8", "replace")

    def close(self):
        os.close(self.fd)


@pytest.mark.slow
def test_a_terminal_session_with_ctrl_c_clear_and_ctrl_d(tmp_path, tiny_qwen2):
    term = Terminal(_command(tmp_path, tiny_qwen2, 1500))
    try:
        term.read_until(WELCOME, timeout=180)
        term.read_until("User: ")
        term.type("tell me everything\r")
        term.read_until("Assistant: ")
        time.sleep(0.3)
        term.type("\x03")  # Ctrl-C while the answer streams stops it, not the chat
        term.read_until("[stopped]")
        term.read_until("User: ")
        term.type("clear\r")
        term.read_until("History cleared.")
        term.read_until("User: ")
        term.type("\x04")  # Ctrl-D at the prompt ends the chat
        assert term.wait() == 0
        assert "Traceback" not in term.seen and "Fatal" not in term.seen
    finally:
        term.close()


def test_ctrl_c_at_the_prompt_ends_the_chat(engine):
    class Interrupted(io.StringIO):
        def readline(self, *args):
            raise KeyboardInterrupt

    out = io.StringIO()
    assert chat_loop(ChatModel(engine=engine), Interrupted(), out, interactive=False) == 0
    assert out.getvalue().startswith(WELCOME)
