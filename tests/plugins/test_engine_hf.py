"""The engine_hf plugin: contract, and the synchronous wrappers every engine inherits from the Engine base."""

import asyncio

from tunefactory.config.loader import Setting
from tunefactory.config.run_config import build_config
from tunefactory.inference.engine import Engine, Response
from tunefactory.plugins.engine_hf.impl import HuggingFaceEngine
from tunefactory.testing.contracts import EngineContract


class TestHuggingfaceContract(EngineContract):
    name = "huggingface"
    provider = "engine_hf"


class EchoEngine(Engine):
    """Answers with the last message, a word at a time when streaming."""

    def load(self, config):
        self.loaded = True

    async def chat(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **generation):
        await asyncio.sleep(0)
        text = messages[-1]["content"]
        return [Response(text, len(text.split()), 1, "stop")] * generation.get("num_return_sequences", 1)

    async def stream_chat(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **kw):
        for word in messages[-1]["content"].split():
            await asyncio.sleep(0)
            yield word

    async def get_scores(self, batch_input, **kwargs):
        return [float(len(text)) for text in batch_input]


def test_sync_wrappers_run_the_coroutines():
    engine = EchoEngine()
    try:
        messages = [{"role": "user", "content": "hello there world"}]
        answers = engine.chat_sync(messages, num_return_sequences=2)
        assert [a.text for a in answers] == ["hello there world"] * 2
        assert list(engine.stream_chat_sync(messages)) == ["hello", "there", "world"]
        assert engine.get_scores_sync(["ab", "abc"]) == [2.0, 3.0]
    finally:
        engine.close()


def test_sync_wrappers_work_inside_a_running_loop():
    engine = EchoEngine()

    async def caller():
        return engine.chat_sync([{"role": "user", "content": "inside"}])

    try:
        assert asyncio.run(caller())[0].text == "inside"
    finally:
        engine.close()


def test_load_from_a_config_chats(tiny_qwen2):
    config, problems = build_config(
        [Setting("model_name_or_path", tiny_qwen2, "test"), Setting("template", "qwen", "test")], command="chat"
    )
    assert not problems
    engine = HuggingFaceEngine()
    engine.load(config)
    try:
        answer = engine.chat_sync([{"role": "user", "content": "hi"}], max_new_tokens=4, do_sample=False)[0]
        assert answer.response_length <= 4 and answer.prompt_length > 0
        assert engine.tokenizer.convert_tokens_to_ids("<|im_end|>") in engine.eos_ids
    finally:
        engine.close()
