"""The huggingface engine on a tiny model: batching, streaming, stops, cancellation, scores, bad requests."""

import asyncio
import time

import pytest
from tunefactory.inference.engine import BadRequest, EngineClosed, PromptTooLong, TextStream, Unsupported

from tests.inference.support import ChatMLTestTemplate, load_hf_engine

GREEDY = {"do_sample": False}


def ask(text):
    return [{"role": "user", "content": text}]


@pytest.fixture(scope="module")
def engine(tiny_llama):
    engine = load_hf_engine(tiny_llama)
    yield engine
    engine.close()


def test_concurrent_requests_share_one_batch_and_match_single_runs(engine):
    prompts = [ask("short"), ask("a somewhat longer question " * 3), ask("你好"), ask("x " * 20)]

    async def together():
        return await asyncio.gather(*(engine.chat(p, max_new_tokens=12, **GREEDY) for p in prompts))

    before = engine.scheduler.batches
    batched = engine._run(together())
    assert engine.scheduler.batches == before + 1
    for prompt, answers in zip(prompts, batched, strict=True):
        alone = engine.chat_sync(prompt, max_new_tokens=12, **GREEDY)
        assert answers[0].text == alone[0].text
        assert answers[0].prompt_length == alone[0].prompt_length > 0


def test_stream_pieces_make_the_answer(engine):
    whole = engine.chat_sync(ask("Who are you?"), max_new_tokens=16, **GREEDY)[0]
    stream = engine.stream_chat(ask("Who are you?"), max_new_tokens=16, **GREEDY)
    assert isinstance(stream, TextStream)

    async def collect():
        return [piece async for piece in stream]

    pieces = engine._run(collect())
    assert len(pieces) > 1 and "".join(pieces) == whole.text
    assert (stream.finish_reason, stream.response_length) == (whole.finish_reason, whole.response_length)
    assert list(engine.stream_chat_sync(ask("Who are you?"), max_new_tokens=16, **GREEDY)) == pieces


def test_max_tokens_ends_with_length(engine):
    answer = engine.chat_sync(ask("hello"), max_new_tokens=5, **GREEDY)[0]
    assert (answer.finish_reason, answer.response_length) == ("length", 5)


def test_stop_strings_cut_the_answer(engine):
    full = engine.chat_sync(ask("Tell me a joke."), max_new_tokens=24, **GREEDY)[0].text
    stop = full[len(full) // 2:len(full) // 2 + 2]
    cut = engine.chat_sync(ask("Tell me a joke."), max_new_tokens=24, stop=[stop], **GREEDY)[0]
    assert cut.finish_reason == "stop" and cut.text == full[:full.index(stop)]
    streamed = "".join(engine.stream_chat_sync(ask("Tell me a joke."), max_new_tokens=24, stop=stop, **GREEDY))
    assert streamed == cut.text


def test_a_stop_token_ends_the_answer_and_is_not_shown(engine, monkeypatch):
    import torch

    prompt = engine.template.encode_prompt(engine.tokenizer, ask("What is 2 + 3?"))
    with torch.no_grad():
        output = engine.model.generate(torch.tensor([prompt]), max_new_tokens=10, do_sample=False,
                                       eos_token_id=engine.eos_ids, pad_token_id=engine.pad_id)
    ids = output[0, len(prompt):].tolist()
    stop_at = next(i for i in range(1, len(ids)) if ids[i] not in ids[:i])
    monkeypatch.setattr(engine, "eos_ids", [ids[stop_at]])
    answer = engine.chat_sync(ask("What is 2 + 3?"), max_new_tokens=10, skip_special_tokens=False, **GREEDY)[0]
    assert (answer.finish_reason, answer.response_length) == ("stop", stop_at)
    assert answer.text == engine.tokenizer.decode(ids[:stop_at], skip_special_tokens=False)


def test_template_stop_words_become_eos_ids(engine):
    im_end = engine.tokenizer.convert_tokens_to_ids("<|im_end|>")
    assert im_end in engine.eos_ids and engine.tokenizer.eos_token_id in engine.eos_ids


def test_several_answers_and_beam_search(engine):
    sampled = engine.chat_sync(ask("hi"), max_new_tokens=6, n=3, temperature=1.0)
    assert len(sampled) == 3 and all(a.response_length == 6 for a in sampled)
    beams = engine.chat_sync(ask("hi"), max_new_tokens=6, num_beams=3, n=2)
    assert len(beams) == 2 and all(a.text for a in beams)


def test_a_seed_repeats_a_sampled_answer(engine):
    first = engine.chat_sync(ask("hi"), max_new_tokens=8, temperature=1.0, seed=7)[0].text
    assert engine.chat_sync(ask("hi"), max_new_tokens=8, temperature=1.0, seed=7)[0].text == first


def test_closing_a_stream_stops_its_generation(engine):
    async def read_two_then_leave():
        stream = engine.stream_chat(ask("go on"), max_new_tokens=1500, **GREEDY)
        pieces = [await stream.__anext__(), await stream.__anext__()]
        assert engine.scheduler.running_rows == 1
        await stream.aclose()
        return pieces

    engine._run(read_two_then_leave())
    deadline = time.monotonic() + 5
    while engine.scheduler.running or engine.scheduler.running_rows:
        assert time.monotonic() < deadline, "the cancelled generation kept running"
        time.sleep(0.01)
    assert engine.chat_sync(ask("next"), max_new_tokens=3, **GREEDY)[0].response_length == 3


def test_generation_does_not_block_the_event_loop(engine):
    async def tick_while_generating():
        ticks = 0
        task = asyncio.ensure_future(engine.chat(ask("long"), max_new_tokens=300, **GREEDY))
        while not task.done():
            await asyncio.sleep(0.005)
            ticks += 1
        await task
        return ticks

    assert engine._run(tick_while_generating()) >= 5


def test_request_problems_raise_before_generating(engine):
    with pytest.raises(PromptTooLong) as info:
        engine.stream_chat(ask("word " * 3000))
    assert info.value.status == 422 and "2048" in str(info.value)
    with pytest.raises(BadRequest, match="alternate"):
        engine.chat_sync([{"role": "assistant", "content": "hi"}])
    with pytest.raises(BadRequest, match="last message"):
        engine.chat_sync([{"role": "user", "content": "a"}, {"role": "assistant", "content": "b"}])
    with pytest.raises(BadRequest, match="one answer"):
        engine.stream_chat(ask("hi"), n=2)
    with pytest.raises(Unsupported, match="no images"):
        engine.chat_sync(ask("<image>what is this?"), images=["picture.png"])
    with pytest.raises(Unsupported, match="reward model"):
        engine.get_scores_sync(["a text"])


def test_raw_completion(engine):
    answers = engine.complete_sync("The model reads", max_new_tokens=4, n=2, **GREEDY)
    assert len(answers) == 2 and answers[0].text == answers[1].text and answers[0].response_length == 4
    assert "".join(engine.stream_complete_sync("The model reads", max_new_tokens=4, **GREEDY)) == answers[0].text


def test_reward_model_scores(tiny_llama):
    import torch
    from transformers import AutoTokenizer, LlamaForSequenceClassification
    from tunefactory.plugins.engine_hf.impl import HuggingFaceEngine

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    model = LlamaForSequenceClassification.from_pretrained(tiny_llama, num_labels=1)
    model.config.pad_token_id = tokenizer.pad_token_id
    engine = HuggingFaceEngine().setup(model, tokenizer, ChatMLTestTemplate(), can_generate=False)
    try:
        texts = ["a good answer", "a much longer and rather worse answer to the question"]
        scores = engine.get_scores_sync(texts)
        with torch.no_grad():
            expected = [model(torch.tensor([tokenizer.encode(t, add_special_tokens=False)])).logits[0, 0].item()
                        for t in texts]
        assert scores == pytest.approx(expected, abs=1e-4)
        with pytest.raises(Unsupported, match="reward model"):
            engine.chat_sync(ask("hi"))
        with pytest.raises(BadRequest):
            engine.get_scores_sync([])
    finally:
        engine.close()


def test_close_ends_a_running_batch_and_refuses_more(tiny_llama):
    engine = load_hf_engine(tiny_llama)
    stream = engine.stream_chat_sync(ask("go"), max_new_tokens=1500, **GREEDY)
    next(stream)
    started = time.monotonic()
    engine.scheduler.close()
    assert time.monotonic() - started < 5
    with pytest.raises(EngineClosed):
        engine.chat_sync(ask("again"))
    stream.close()
    engine.close()


def test_chat_model_batches_many_conversations(engine):
    from tunefactory.inference.chat_model import ChatModel

    model = ChatModel(engine=engine)
    conversations = [ask(f"question {i}") for i in range(6)]
    before = engine.scheduler.batches
    answers = model.batch_chat(conversations, max_new_tokens=5, do_sample=False)
    assert engine.scheduler.batches == before + 1
    assert [a[0].text for a in answers] == [model.chat(c, max_new_tokens=5, do_sample=False)[0].text
                                            for c in conversations]
