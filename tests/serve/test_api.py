"""The OpenAI-compatible server, live on 127.0.0.1, through the official openai client (and raw HTTP for what the
client cannot send)."""

import http.client
import json
from urllib.parse import urlparse

import openai
import pytest
from tunefactory.inference.engine import Engine, Response, TextStream
from tunefactory.serve.app import create_app
from tunefactory.serve.server import ServerSettings

from tests.inference.support import ChatMLTestTemplate
from tests.serve.conftest import serving

GREEDY = {"temperature": 0}
HELLO = [{"role": "user", "content": "Hello, who are you?"}]


def raw(base_url, method, path, body=None, headers=None):
    """(status, parsed JSON) of one request, sent as given."""
    url = urlparse(base_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=60)
    try:
        data = body if isinstance(body, (bytes, type(None))) else body.encode()
        connection.request(method, url.path + path, body=data,
                           headers={"Content-Type": "application/json", **(headers or {})})
        response = connection.getresponse()
        return response.status, json.loads(response.read())
    finally:
        connection.close()


def assert_error(status_body, status, *words):
    got, body = status_body
    assert got == status, body
    error = body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    for word in words:
        assert word in error["message"]
    return error


# -- models and completions -----------------------------------------------------------------------------------


def test_models(client):
    assert [m.id for m in client.models.list().data] == ["tiny"]
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("gpt-4")


def test_chat_completion_matches_the_engine(client, hf_engine):
    reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=12, **GREEDY)
    expected = hf_engine.chat_sync(HELLO, max_new_tokens=12, do_sample=False)[0]
    choice = reply.choices[0]
    assert reply.object == "chat.completion" and reply.id.startswith("chatcmpl-")
    assert choice.message.role == "assistant" and choice.message.content == expected.text
    assert choice.finish_reason == "length"
    assert reply.usage.prompt_tokens == expected.prompt_length
    assert reply.usage.completion_tokens == 12 and reply.usage.total_tokens == expected.prompt_length + 12


def test_streamed_chat_completion(client):
    whole = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=12, **GREEDY)
    chunks = list(client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=12, stream=True,
                                                 stream_options={"include_usage": True}, **GREEDY))
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    finishing = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finishing == ["length"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens == 12
    assert len({c.id for c in chunks}) == 1


def test_several_answers_streamed_and_not(client):
    reply = client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=5, n=3, temperature=1.0)
    assert [c.index for c in reply.choices] == [0, 1, 2] and reply.usage.completion_tokens == 15
    chunks = list(client.chat.completions.create(model="tiny", messages=HELLO, max_tokens=5, n=2, stream=True))
    ends = sorted(c.choices[0].index for c in chunks if c.choices[0].finish_reason)
    assert ends == [0, 1]


def test_stop_and_system_prompt(client):
    messages = [{"role": "system", "content": "You are terse."}, *HELLO]
    full = client.chat.completions.create(model="tiny", messages=messages, max_tokens=20, **GREEDY)
    text = full.choices[0].message.content
    stop = text[8:10]
    cut = client.chat.completions.create(model="tiny", messages=messages, max_tokens=20, stop=[stop], **GREEDY)
    assert cut.choices[0].message.content == text[:text.index(stop)]
    assert cut.choices[0].finish_reason == "stop"


def test_text_completions(client, hf_engine):
    reply = client.completions.create(model="tiny", prompt="The model reads", max_tokens=6, **GREEDY)
    expected = hf_engine.complete_sync("The model reads", max_new_tokens=6, do_sample=False)[0]
    assert reply.object == "text_completion" and reply.choices[0].text == expected.text
    assert reply.usage.prompt_tokens == expected.prompt_length and reply.usage.completion_tokens == 6
    echoed = client.completions.create(model="tiny", prompt="The model reads", max_tokens=6, echo=True, **GREEDY)
    assert echoed.choices[0].text == "The model reads" + expected.text
    batch = client.completions.create(model="tiny", prompt=["one", "two"], max_tokens=3, n=2)
    assert [c.index for c in batch.choices] == [0, 1, 2, 3]
    streamed = list(client.completions.create(model="tiny", prompt="The model reads", max_tokens=6, stream=True,
                                              stream_options={"include_usage": True}, **GREEDY))
    assert "".join(c.choices[0].text for c in streamed if c.choices) == expected.text
    assert streamed[-1].usage.prompt_tokens == expected.prompt_length and streamed[-1].usage.completion_tokens == 6


# -- tools ----------------------------------------------------------------------------------------------------

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Weather in a city",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}


class ScriptedEngine(Engine):
    """Calls get_weather when it has tools and a question; answers with the tool's result once it has one."""

    name = "scripted"
    template = ChatMLTestTemplate()

    def __init__(self):
        self.seen = []

    def load(self, config):
        pass

    def _answer(self, messages, tools):
        self.seen.append((list(messages), tools))
        last = messages[-1]
        if last["role"] == "observation":
            return f"It is {json.loads(last['content'])['weather']} there."
        if tools:
            return '<tool_call>\n{"name": "get_weather", "arguments": {"city": "Paris"}}\n</tool_call>'
        return "No tools."

    async def chat(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **generation):
        text = self._answer(messages, tools)
        return [Response(text, len(text.split()), 3, "stop")] * (generation.get("num_return_sequences") or 1)

    def stream_chat(self, messages, system=None, tools=None, images=None, videos=None, audios=None, **generation):
        text = self._answer(messages, tools)

        async def pieces():
            for word in text.split(" "):
                yield word + " "
            stream.finish("stop", len(text.split()))

        stream = TextStream(pieces(), 3)
        return stream

    async def get_scores(self, batch_input, **kwargs):
        return [float(len(t)) for t in batch_input]


@pytest.fixture(scope="module")
def scripted():
    engine = ScriptedEngine()
    with serving(create_app(engine, "scripted")) as url:
        yield engine, openai.OpenAI(base_url=url, api_key="-", max_retries=0)


def test_tool_call_round_trip(scripted):
    engine, client = scripted
    ask = [{"role": "user", "content": "Weather in Paris?"}]
    first = client.chat.completions.create(model="scripted", messages=ask, tools=[WEATHER])
    choice = first.choices[0]
    assert choice.finish_reason == "tool_calls" and choice.message.content is None
    (call,) = choice.message.tool_calls
    assert call.type == "function" and call.function.name == "get_weather"
    assert json.loads(call.function.arguments) == {"city": "Paris"}
    assert json.loads(engine.seen[-1][1]) == [WEATHER["function"]]

    history = ask + [choice.message.model_dump(exclude_none=True),
                     {"role": "tool", "tool_call_id": call.id, "content": json.dumps({"weather": "sunny"})}]
    second = client.chat.completions.create(model="scripted", messages=history, tools=[WEATHER])
    assert second.choices[0].message.content == "It is sunny there."
    assert second.choices[0].finish_reason == "stop"
    sent = engine.seen[-1][0]
    assert [m["role"] for m in sent] == ["user", "function", "observation"]
    assert json.loads(sent[1]["content"]) == [{"name": "get_weather", "arguments": {"city": "Paris"}}]


def test_streamed_tool_call(scripted):
    _, client = scripted
    chunks = list(client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "Weather?"}], tools=[WEATHER], stream=True))
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert len(calls) == 1 and calls[0].function.name == "get_weather" and calls[0].index == 0
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    plain = list(client.chat.completions.create(
        model="scripted", messages=[{"role": "user", "content": "Hi"}], stream=True))
    assert "".join(c.choices[0].delta.content or "" for c in plain).strip() == "No tools."


def test_tool_choice_none_hides_the_tools(scripted):
    engine, client = scripted
    reply = client.chat.completions.create(model="scripted", messages=[{"role": "user", "content": "Weather?"}],
                                           tools=[WEATHER], tool_choice="none")
    assert reply.choices[0].message.content == "No tools." and engine.seen[-1][1] is None


def test_scores_endpoint(scripted, base_url):
    _, client = scripted
    status, body = raw(str(client.base_url), "POST", "score/evaluation",
                       json.dumps({"model": "scripted", "messages": ["ab", "abcd"]}))
    assert status == 200 and body["scores"] == [2.0, 4.0] and body["object"] == "score.evaluation"
    error = assert_error(raw(base_url, "POST", "/score/evaluation", json.dumps({"model": "tiny", "messages": ["x"]})),
                         400, "reward model")
    assert error["type"] == "invalid_request_error"


# -- errors ---------------------------------------------------------------------------------------------------


def test_wrong_or_missing_api_key_is_401(hf_engine):
    with serving(create_app(hf_engine, "tiny", api_key="sesame")) as url:
        good = openai.OpenAI(base_url=url, api_key="sesame", max_retries=0)
        assert good.models.list().data[0].id == "tiny"
        with pytest.raises(openai.AuthenticationError):
            openai.OpenAI(base_url=url, api_key="wrong", max_retries=0).chat.completions.create(
                model="tiny", messages=HELLO, max_tokens=2)
        error = assert_error(raw(url, "GET", "/models"), 401, "API key")
        assert error["code"] == "invalid_api_key"
        assert raw(url, "GET", "/models", headers={"Authorization": "Bearer sesame"})[0] == 200


def test_unknown_model_is_404(client):
    with pytest.raises(openai.NotFoundError) as info:
        client.chat.completions.create(model="gpt-4", messages=HELLO)
    assert info.value.body["code"] == "model_not_found"


def test_malformed_requests_are_400(base_url, client):
    assert_error(raw(base_url, "POST", "/chat/completions", b'{"model": "tiny", "messages": ['), 400, "not valid JSON")
    assert_error(raw(base_url, "POST", "/chat/completions", b"\xff\xfe"), 400, "JSON")
    assert_error(raw(base_url, "POST", "/chat/completions", b"[1, 2]"), 400, "JSON object")
    assert_error(raw(base_url, "POST", "/chat/completions", b""), 400, "no body")
    assert_error(raw(base_url, "POST", "/chat/completions", json.dumps({"model": "tiny", "messages": []})), 400)
    error = assert_error(raw(base_url, "POST", "/chat/completions",
                             json.dumps({"model": "tiny", "messages": HELLO, "temperature": "hot"})), 400)
    assert error["param"] == "temperature"
    bad = [
        ({"messages": [{"role": "assistant", "content": "hi"}]}, "alternate"),
        ({"messages": HELLO, "top_p": 7}, "top_p"),
        ({"messages": HELLO, "presence_penalty": 1}, "presence_penalty"),
        ({"messages": HELLO, "n": 1000, "stream": True}, "64"),
        ({"messages": [{"role": "wizard", "content": "hi"}]}, "role"),
        ({"messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "http://example.com/a.png"}}]}]}, "data URL"),
    ]
    for extra, word in bad:
        with pytest.raises(openai.BadRequestError) as info:
            client.chat.completions.create(model="tiny", **extra)
        assert word in info.value.body["message"], info.value.body
    assert_error(raw(base_url, "POST", "/completions", json.dumps({"model": "tiny", "prompt": ""})), 400, "prompt")
    assert_error(raw(base_url, "POST", "/completions", json.dumps({"model": "tiny", "prompt": ["a"] * 100, "n": 3})),
                 400, "at most")
    assert_error(raw(base_url, "GET", "/no/such/route"), 404, "no route")
    assert_error(raw(base_url, "GET", "/chat/completions"), 405)


def test_oversized_input(hf_engine, client):
    with pytest.raises(openai.UnprocessableEntityError) as info:
        client.chat.completions.create(model="tiny", messages=[{"role": "user", "content": "word " * 3000}])
    assert info.value.body["code"] == "context_length_exceeded" and "2048" in info.value.body["message"]
    with serving(create_app(hf_engine, "tiny", max_body_bytes=2048)) as url:
        body = json.dumps({"model": "tiny", "messages": [{"role": "user", "content": "x" * 5000}]})
        assert_error(raw(url, "POST", "/chat/completions", body), 413, "limit")
        assert raw(url, "POST", "/chat/completions",
                   json.dumps({"model": "tiny", "messages": HELLO, "max_tokens": 2}))[0] == 200


def test_settings_from_the_environment():
    assert ServerSettings.from_env({}) == ServerSettings()
    assert ServerSettings().host == "127.0.0.1"
    settings = ServerSettings.from_env({"API_HOST": "0.0.0.0", "API_PORT": "9001", "API_KEY": "k",
                                        "API_MODEL_NAME": "mine"})
    assert (settings.host, settings.port, settings.api_key, settings.model_name) == ("0.0.0.0", 9001, "k", "mine")
    from tunefactory.errors import UsageError

    with pytest.raises(UsageError, match="API_PORT"):
        ServerSettings.from_env({"API_PORT": "eighty"})
