"""Converters: every format to the internal example format, and what they say about bad rows."""

from __future__ import annotations

import json

import pytest
from tunefactory.data.converters import Converter, RowProblem, detect_format
from tunefactory.data.dataset_info import DatasetAttr
from tunefactory.errors import DataError


def attr(formatting="alpaca", columns=None, tags=None, ranking=False, load_from="file"):
    return DatasetAttr(name="d", load_from=load_from, source="d.json", formatting=formatting, ranking=ranking,
                       columns=columns or {}, tags=tags or {})


def convert(a, layout, row, columns=None, media_dir=None):
    converter = Converter(a, layout, media_dir)
    converter.check_columns(columns if columns is not None else list(row))
    return converter.convert(row)


def msgs(*pairs):
    return [{"role": r, "content": c} for r, c in pairs]


# -- alpaca --------------------------------------------------------------------------------------------------------


def test_alpaca_instruction_input_output_system_history():
    a = attr(columns={"prompt": "instruction", "query": "input", "response": "output", "system": "system",
                      "history": "history"})
    row = {"instruction": "Translate", "input": "hello", "output": "你好", "system": "Be brief.",
           "history": [["hi", "hello!"], ["how are you?", "fine"]]}
    example = convert(a, "supervised", row)
    assert example["prompt"] == msgs(("user", "hi"), ("assistant", "hello!"), ("user", "how are you?"),
                                     ("assistant", "fine"), ("user", "Translate\nhello"))
    assert example["response"] == msgs(("assistant", "你好"))
    assert example["system"] == "Be brief."
    assert example["tools"] == "" and example["images"] == [] and example["kto_tag"] is None


def test_alpaca_defaults_and_missing_optional_columns():
    example = convert(attr(), "supervised", {"instruction": "Q", "output": "A"})
    assert example["prompt"] == msgs(("user", "Q")) and example["response"] == msgs(("assistant", "A"))


def test_alpaca_preference_and_kto_and_unsupervised():
    pref = attr(ranking=True, columns={"chosen": "good", "rejected": "bad"})
    example = convert(pref, "pairwise", {"instruction": "Q", "input": "", "good": "yes", "bad": "no"})
    assert example["response"] == msgs(("assistant", "yes"), ("assistant", "no"))
    default_pref = attr(ranking=True)
    assert convert(default_pref, "pairwise", {"instruction": "Q", "chosen": "a", "rejected": "b"})["response"][1][
        "content"] == "b"
    kto = attr(columns={"kto_tag": "label"})
    example = convert(kto, "kto", {"instruction": "Q", "output": "A", "label": False})
    assert example["kto_tag"] is False and example["response"] == msgs(("assistant", "A"))
    example = convert(attr(), "unsupervised", {"instruction": "Q", "input": "", "output": ""})
    assert example["response"] == []


def test_plain_text_for_pretraining():
    example = convert(attr(columns={"prompt": "text"}), "pt", {"text": "Once upon a time."})
    assert example["prompt"] == msgs(("user", "Once upon a time.")) and example["response"] == []


# -- sharegpt ------------------------------------------------------------------------------------------------------


def test_sharegpt_default_tags_system_and_tools():
    a = attr("sharegpt", columns={"messages": "conversations", "system": "system", "tools": "tools"})
    tools = [{"name": "weather", "parameters": {"type": "object"}}]
    row = {"conversations": [{"from": "human", "value": "Weather?"},
                             {"from": "function_call", "value": '{"name": "weather", "arguments": {"city": "Oslo"}}'},
                             {"from": "observation", "value": "sunny"},
                             {"from": "gpt", "value": "It is sunny."}],
           "system": "sys", "tools": json.dumps(tools)}
    example = convert(a, "supervised", row)
    assert [m["role"] for m in example["prompt"]] == ["user", "function", "observation"]
    assert json.loads(example["prompt"][1]["content"]) == [{"name": "weather", "arguments": {"city": "Oslo"}}]
    assert example["response"] == msgs(("assistant", "It is sunny."))
    assert example["system"] == "sys" and json.loads(example["tools"]) == tools


def test_sharegpt_custom_tags_and_system_turn():
    a = attr("sharegpt", columns={"messages": "messages"},
             tags={"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant",
                   "system_tag": "system"})
    row = {"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"},
                        {"role": "assistant", "content": "A"}]}
    example = convert(a, "supervised", row)
    assert example["system"] == "S" and example["prompt"] == msgs(("user", "U"))


def test_sharegpt_preference_and_kto():
    a = attr("sharegpt", ranking=True, columns={"messages": "conversations", "chosen": "chosen",
                                                "rejected": "rejected"})
    row = {"conversations": [{"from": "human", "value": "Q"}], "chosen": {"from": "gpt", "value": "good"},
           "rejected": {"from": "gpt", "value": "bad"}}
    example = convert(a, "pairwise", row)
    assert example["prompt"] == msgs(("user", "Q"))
    assert example["response"] == msgs(("assistant", "good"), ("assistant", "bad"))
    kto = attr("sharegpt", columns={"messages": "conversations", "kto_tag": "kto_tag"})
    row = {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": "A"}], "kto_tag": True}
    assert convert(kto, "kto", row)["kto_tag"] is True


def test_sharegpt_unsupervised_accepts_a_trailing_prompt():
    a = attr("sharegpt")
    example = convert(a, "unsupervised", {"conversations": [{"from": "human", "value": "Q"}]})
    assert example["prompt"] == msgs(("user", "Q")) and example["response"] == []


# -- openai --------------------------------------------------------------------------------------------------------


def test_openai_messages_tool_calls_and_tool_results():
    row = {"messages": [
        {"role": "system", "content": "S"},
        {"role": "user", "content": [{"type": "text", "text": "Look "}, {"type": "image_url", "image_url": "x"}]},
        {"role": "assistant", "content": None, "tool_calls": [
            {"type": "function", "function": {"name": "a", "arguments": '{"x": 1}'}},
            {"type": "function", "function": {"name": "b", "arguments": {"y": 2}}}]},
        {"role": "tool", "content": "r1"}, {"role": "tool", "content": "r2"},
        {"role": "assistant", "content": "done"}]}
    example = convert(attr("openai"), "supervised", row)
    assert example["system"] == "S"
    assert example["prompt"][0] == {"role": "user", "content": "Look <image>"}
    assert json.loads(example["prompt"][1]["content"]) == [{"name": "a", "arguments": {"x": 1}},
                                                          {"name": "b", "arguments": {"y": 2}}]
    assert example["prompt"][2] == {"role": "observation", "content": "r1\nr2"}
    assert example["response"] == msgs(("assistant", "done"))


def test_media_resolved_against_media_dir(tmp_path):
    (tmp_path / "cat.png").write_bytes(b"png")
    a = attr(columns={"images": "images"})
    row = {"instruction": "<image>What?", "output": "cat", "images": ["cat.png", "missing.png", "http://x/y.png"]}
    example = convert(a, "supervised", row, media_dir=str(tmp_path))
    assert example["images"] == [str(tmp_path / "cat.png"), "missing.png", "http://x/y.png"]
    hub = attr(columns={"images": "images"}, load_from="hf_hub")
    example = convert(hub, "supervised", {"instruction": "q", "output": "a", "images": "cat.png"},
                      media_dir=str(tmp_path))
    assert example["images"] == ["cat.png"]  # hub datasets' media are not local to media_dir


# -- problems ------------------------------------------------------------------------------------------------------


def problem(a, layout, row, columns=None) -> RowProblem:
    with pytest.raises(RowProblem) as info:
        convert(a, layout, row, columns)
    return info.value


def test_role_order_and_message_count_drop_the_row():
    a = attr("sharegpt")
    p = problem(a, "supervised", {"conversations": [{"from": "gpt", "value": "A"}, {"from": "human", "value": "Q"}]})
    assert not p.fatal and p.kind == "role order" and "message 1" in p.message
    p = problem(a, "supervised", {"conversations": [{"from": "human", "value": "Q"}]})
    assert not p.fatal and p.kind == "message count"


def test_empty_assistant_turn_drops_the_row():
    p = problem(attr("sharegpt"), "supervised",
                {"conversations": [{"from": "human", "value": "Q"}, {"from": "gpt", "value": " "}]})
    assert p.kind == "empty answer" and not p.fatal and p.column == "conversations"


def test_malformed_rows_are_fatal_and_name_the_column():
    p = problem(attr(), "supervised", {"instruction": "Q", "output": None}, columns=["instruction", "output"])
    assert p.fatal and p.column == "output" and "inconsistent keys" in p.message
    p = problem(attr(), "supervised", {"instruction": "Q", "output": ["a", "b"]})
    assert p.fatal and p.kind == "wrong type" and p.column == "output"
    p = problem(attr("sharegpt"), "supervised", {"conversations": [{"from": "bot", "value": "x"}]})
    assert p.fatal and p.kind == "unknown role" and "'bot'" in p.message
    p = problem(attr("sharegpt"), "supervised", {"conversations": "hello"})
    assert p.fatal and p.kind == "wrong type"
    p = problem(attr(columns={"kto_tag": "kto_tag"}), "kto", {"instruction": "Q", "output": "A", "kto_tag": "yes"})
    assert p.fatal and p.column == "kto_tag"
    assert p.render(7) == "row 7, column 'kto_tag': must be true or false, got 'yes'"


def test_bad_function_call_drops_the_row():
    p = problem(attr("sharegpt"), "supervised", {"conversations": [
        {"from": "human", "value": "Q"}, {"from": "function_call", "value": "not json"}]})
    assert p.kind == "bad function call" and not p.fatal


def test_dataset_level_column_checks():
    with pytest.raises(DataError, match=r"column 'answer' \(columns.response in dataset_info.json\) is not in the "
                                        r"data.*did you mean 'answers'"):
        Converter(attr(columns={"response": "answer"}), "supervised").check_columns(["instruction", "answers"])
    with pytest.raises(DataError, match="not a preference dataset"):
        Converter(attr(), "pairwise").check_columns(["instruction", "output"])
    with pytest.raises(DataError, match="is a preference dataset"):
        Converter(attr(ranking=True), "supervised").check_columns(["instruction", "chosen", "rejected"])
    with pytest.raises(DataError, match="kto_tag"):
        Converter(attr(), "kto").check_columns(["instruction", "output"])


def test_detect_format_from_columns():
    a = detect_format(attr("auto"), ["conversations", "system"],
                      {"conversations": [{"from": "human", "value": "x"}]})
    assert a.formatting == "sharegpt" and a.columns["system"] == "system"
    a = detect_format(attr("auto"), ["messages"], {"messages": [{"role": "user", "content": "x"}]})
    assert a.formatting == "openai"
    a = detect_format(attr("auto"), ["instruction", "input", "output", "history"], None)
    assert a.formatting == "alpaca" and a.columns["history"] == "history"
    a = detect_format(attr("auto"), ["instruction", "chosen", "rejected"], None)
    assert a.ranking
    a = detect_format(attr("auto"), ["text"], None)
    assert a.columns == {"prompt": "text"}
    with pytest.raises(DataError, match="cannot tell the format"):
        detect_format(attr("auto"), ["foo", "bar"], None)
