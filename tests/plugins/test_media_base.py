"""The media_base plugin: contract, and a text-only processor that refuses media."""

import pytest
from tunefactory.config.run_config import build_config
from tunefactory.errors import DataError
from tunefactory.plugins.media_base.impl import TextOnlyProcessor
from tunefactory.testing.contracts import MediaContract


class TestBaseContract(MediaContract):
    name = "base"
    provider = "media_base"


def test_text_passes_through():
    processor = TextOnlyProcessor()
    messages = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]
    assert processor.expand_placeholders(messages, [], [], [], None) == messages
    assert processor.model_inputs([], [], [], None) == {}
    assert processor.regularize([], [], [], build_config([])[0]) == {"images": [], "videos": [], "audios": []}


def test_media_is_refused_with_a_clear_error():
    with pytest.raises(DataError, match="2 image"):
        TextOnlyProcessor().expand_placeholders([{"role": "user", "content": "<image>"}], ["a", "b"], [], [], None)
