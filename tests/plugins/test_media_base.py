"""The media_base plugin: contract, and a text-only processor that refuses media."""

import pytest
from tunefactory.data.media import Media
from tunefactory.errors import DataError
from tunefactory.plugins.media_base.impl import TextOnlyProcessor
from tunefactory.testing.contracts import MediaContract


class TestBaseContract(MediaContract):
    name = "base"
    provider = "media_base"


def test_text_passes_through_even_with_a_literal_placeholder():
    processor = TextOnlyProcessor()
    messages = [{"role": "user", "content": "what is <image>?"}, {"role": "assistant", "content": "a tag"}]
    assert processor.expand_placeholders(messages, Media(), None) == messages
    assert processor.model_inputs([Media()], None, None) == {}
    assert not processor.load()


def test_media_is_refused_with_a_clear_error():
    with pytest.raises(DataError, match="2 images but the 'base' media processor takes no media"):
        TextOnlyProcessor().load(images=["a.png", "b.png"])
