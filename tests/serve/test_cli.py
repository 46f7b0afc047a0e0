"""`tunefactory api CONFIG` as users run it: settings from the environment, a request, a clean stop on Ctrl-C."""

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import openai
import pytest


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_the_api_command_serves_and_stops_cleanly(tmp_path, tiny_qwen2):
    config = tmp_path / "api.yaml"
    config.write_text(f"model_name_or_path: {tiny_qwen2}\ntemplate: qwen\nmax_new_tokens: 8\n")
    port = free_port()
    env = dict(os.environ, API_PORT=str(port), API_KEY="sesame", API_MODEL_NAME="tiny-qwen")
    env.pop("API_HOST", None)
    server = subprocess.Popen([str(Path(sys.executable).parent / "tunefactory"), "api", str(config)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 180
        while True:
            assert server.poll() is None, server.stderr.read()
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.2)
        client = openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="sesame", max_retries=0)
        assert [m.id for m in client.models.list().data] == ["tiny-qwen"]
        reply = client.chat.completions.create(model="tiny-qwen", messages=[{"role": "user", "content": "hi"}])
        assert 1 <= reply.usage.completion_tokens <= 8
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=f"http://127.0.0.1:{port}/v1", api_key="no", max_retries=0).models.list()
    finally:
        server.send_signal(signal.SIGINT)
        out, err = server.communicate(timeout=60)
    assert server.returncode == 0, err
    assert "Traceback" not in err and "127.0.0.1" in err + out
