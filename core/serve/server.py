"""`tunefactory api CONFIG`: serve the config's model with the OpenAI-compatible API.

Settings come from the environment, as LLaMA-Factory names them: API_HOST (default 127.0.0.1: only this machine;
set 0.0.0.0 to listen on every interface), API_PORT (8000), API_KEY (unset: no key needed), API_MODEL_NAME (the
model id clients send; default gpt-3.5-turbo) and API_MAX_REQUEST_BYTES (the largest request body, 32 MiB).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunefactory.errors import UsageError

if TYPE_CHECKING:
    from tunefactory.config.run_config import RunConfig

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class ServerSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    api_key: str | None = None
    model_name: str = "gpt-3.5-turbo"
    max_body_bytes: int = 32 * 1024 * 1024

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None) -> ServerSettings:
        env = os.environ if environ is None else environ

        def number(name: str, default: int, low: int, high: int) -> int:
            text = env.get(name, "").strip()
            if not text:
                return default
            if not text.isdigit() or not low <= int(text) <= high:
                raise UsageError(f"{name}={text!r} must be a whole number from {low} to {high}")
            return int(text)

        return cls(
            host=env.get("API_HOST", "").strip() or cls.host,
            port=number("API_PORT", cls.port, 0, 65535),
            api_key=env.get("API_KEY") or None,
            model_name=env.get("API_MODEL_NAME", "").strip() or cls.model_name,
            max_body_bytes=number("API_MAX_REQUEST_BYTES", cls.max_body_bytes, 1024, 2**40),
        )


def run(config: RunConfig) -> int:
    import uvicorn
    from tunefactory.inference.chat_model import ChatModel
    from tunefactory.serve.app import create_app

    settings = ServerSettings.from_env()
    model = ChatModel(config)
    try:
        app = create_app(model.engine, settings.model_name, settings.api_key, settings.max_body_bytes)
        shown = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
        print(f"Serving {settings.model_name!r} on http://{shown}:{settings.port}/v1 (API docs: /docs)", flush=True)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=5)
    finally:
        model.close()
    return 0
