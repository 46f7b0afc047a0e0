"""`tunefactory api CONFIG`: serve the config's model with the OpenAI-compatible API.

Settings come from the environment, as LLaMA-Factory names them: API_HOST (default 127.0.0.1: only this machine;
set 0.0.0.0 to listen on every interface), API_PORT (8000), API_KEY (unset: no key needed), API_MODEL_NAME (the
model id clients send; default gpt-3.5-turbo) and API_MAX_REQUEST_BYTES (the largest request body, 32 MiB).

Media (images, videos, audio in chat requests) come inline as base64 data URLs. A client names a file or a URL only
as the operator allows, as vLLM's --allowed-local-media-path and --allowed-media-domains do:
API_ALLOWED_LOCAL_MEDIA_PATH (a folder whose files clients may name by path, relative to it, or file: URL; links and
.. must not lead out of it; unset: no files), API_ALLOW_MEDIA_URLS (1: fetch http(s) URLs; default off),
API_ALLOWED_MEDIA_DOMAINS (comma-separated host names: fetch only from these, redirects included; unset: from any
host the server reaches, its own network too), API_MAX_MEDIA_BYTES (the largest item, inline, read or fetched;
20 MiB) and API_MEDIA_TIMEOUT (seconds a fetch may take; 10).
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from tunefactory.errors import UsageError
from tunefactory.serve.protocol import DEFAULT_MAX_MEDIA_BYTES, DEFAULT_MEDIA_TIMEOUT_S, MediaPolicy

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
    media: MediaPolicy = MediaPolicy()

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

        def switch(name: str) -> bool:
            text = env.get(name, "").strip().lower()
            if text not in ("", "0", "1", "false", "true", "no", "yes", "off", "on"):
                raise UsageError(f"{name}={env[name]!r} must be 1 or 0 (true or false)")
            return text in ("1", "true", "yes", "on")

        return cls(
            host=env.get("API_HOST", "").strip() or cls.host,
            port=number("API_PORT", cls.port, 0, 65535),
            api_key=env.get("API_KEY") or None,
            model_name=env.get("API_MODEL_NAME", "").strip() or cls.model_name,
            max_body_bytes=number("API_MAX_REQUEST_BYTES", cls.max_body_bytes, 1024, 2**40),
            media=MediaPolicy(
                local_dir=_media_folder(env.get("API_ALLOWED_LOCAL_MEDIA_PATH", "").strip()),
                allow_urls=switch("API_ALLOW_MEDIA_URLS"),
                domains=_media_domains(env.get("API_ALLOWED_MEDIA_DOMAINS", ""), switch("API_ALLOW_MEDIA_URLS")),
                max_bytes=number("API_MAX_MEDIA_BYTES", DEFAULT_MAX_MEDIA_BYTES, 1, 2**40),
                timeout_s=number("API_MEDIA_TIMEOUT", DEFAULT_MEDIA_TIMEOUT_S, 1, 3600),
            ),
        )


def _media_folder(text: str) -> str | None:
    if not text:
        return None
    folder = os.path.realpath(os.path.expanduser(text))
    if not os.path.isdir(folder):
        raise UsageError(f"API_ALLOWED_LOCAL_MEDIA_PATH={text!r} is not a folder: name the folder whose files "
                         "clients may read")
    return folder


def _media_domains(text: str, allow_urls: bool) -> frozenset[str]:
    domains = frozenset(d.strip().strip("[]").lower() for d in text.split(",") if d.strip())
    if domains and not allow_urls:
        raise UsageError("API_ALLOWED_MEDIA_DOMAINS is set but URLs are not fetched: set API_ALLOW_MEDIA_URLS=1 too")
    odd = sorted(d for d in domains if not re.fullmatch(r"[a-z0-9.-]+|[0-9a-f.]*:[0-9a-f.]*:[0-9a-f:.]*", d))
    if odd:
        raise UsageError(f"API_ALLOWED_MEDIA_DOMAINS names {', '.join(odd)}: give host names only, such as "
                         "images.example.com (no scheme, port or path), separated by commas")
    return domains


def run(config: RunConfig) -> int:
    import uvicorn
    from tunefactory.inference.chat_model import ChatModel
    from tunefactory.serve.app import create_app

    settings = ServerSettings.from_env()
    model = ChatModel(config)
    try:
        app = create_app(model.engine, settings.model_name, settings.api_key, settings.max_body_bytes,
                         settings.media)
        shown = "localhost" if settings.host in ("127.0.0.1", "0.0.0.0") else settings.host
        print(f"Serving {settings.model_name!r} on http://{shown}:{settings.port}/v1 (API docs: /docs)", flush=True)
        media = settings.media
        if media.local_dir:
            print(f"Clients may name media files inside {media.local_dir}", flush=True)
        if media.allow_urls:
            hosts = ", ".join(sorted(media.domains)) if media.domains else "any host"
            print(f"Media URLs are fetched from {hosts} (up to {media.max_bytes} bytes each)", flush=True)
        uvicorn.run(app, host=settings.host, port=settings.port, log_level="info", timeout_graceful_shutdown=5)
    finally:
        model.close()
    return 0
