"""The Ollama Modelfile: its Go TEMPLATE renders what every built-in template renders, stop words, system prompt."""

from __future__ import annotations

import pytest
from tunefactory.data.chat_template import ChatMLFormat, ChatTemplate
from tunefactory.export.ollama import go_template, modelfile

from tests.export.gotemplate import GoTemplateError, render


class Tokenizer:
    """The tokens a template's slots name; Ollama adds bos itself, so the Go template leaves it out."""

    bos_token = ""
    eos_token = "<EOS>"


CONVERSATIONS = {
    "chat": [{"role": "user", "content": "Hi there"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "What is 2+3?"}],
    "tool result": [{"role": "user", "content": "Weather?"}, {"role": "assistant", "content": "Let me check."},
                    {"role": "observation", "content": '{"temperature": 20}'}],
    "first turn": [{"role": "user", "content": "Hello"}],
}
OLLAMA_ROLES = {"user": "user", "assistant": "assistant", "observation": "tool"}


def builtin_templates() -> list[ChatTemplate]:
    from tunefactory.registry import get_registry

    found = []
    for spec in get_registry().specs("template"):
        target = spec.load()
        template = target() if isinstance(target, type) else target
        if isinstance(template, ChatTemplate):
            found.append(template)
    return found


def ollama_render(template: ChatTemplate, messages, system: str | None) -> str:
    go = go_template(template, Tokenizer())
    data = {"System": system or template.default_system,  # Modelfile SYSTEM: the default when the user gives none
            "Messages": [{"Role": OLLAMA_ROLES[m["role"]], "Content": m["content"]} for m in messages]}
    return render(go, data)


@pytest.mark.parametrize("system", [None, "Be brief."])
def test_every_builtin_template_renders_the_same_in_go(system):
    templates = builtin_templates()
    assert len(templates) >= 70
    differences = []
    for template in templates:
        for name, messages in CONVERSATIONS.items():
            expected = template.render(Tokenizer(), messages, system, add_generation_prompt=True)
            if ollama_render(template, messages, system) != expected:
                differences.append(f"{template.name} ({name})")
    assert differences == []


def test_system_inside_the_first_user_turn():
    from tunefactory.registry import get_registry

    llama2 = get_registry().select("template", "llama2").load()()
    assert llama2.system_in_user
    messages = CONVERSATIONS["chat"]
    rendered = ollama_render(llama2, messages, "Be brief.")
    assert rendered == llama2.render(Tokenizer(), messages, "Be brief.", add_generation_prompt=True)
    assert rendered.count("Be brief.") == 1


def test_literal_braces_are_escaped():
    class Braces(ChatTemplate):
        name = "braces"
        user = "{{user}} {content}\n"
        generation = "{{assistant}} "
        assistant = "{content}\n"

    go = go_template(Braces(), Tokenizer())
    messages = CONVERSATIONS["chat"]
    assert ollama_render(Braces(), messages, None) == Braces().render(Tokenizer(), messages,
                                                                      add_generation_prompt=True)
    with pytest.raises(GoTemplateError):
        render("{{ user }}", {})  # unescaped, Go would read an action
    assert '{{ "{{" }}user}}' in go


def test_modelfile_parts():
    class Chat(ChatMLFormat):
        name = "chat"
        default_system = "You are helpful."
        stop_words = ("<|im_end|>", "<|endoftext|>")

    text = modelfile(Chat(), Tokenizer())
    lines = text.splitlines()
    assert lines[0].startswith("# Ollama Modelfile") and "FROM ." in lines
    assert 'SYSTEM """You are helpful."""' in lines
    assert lines[-3:] == ['PARAMETER stop "<EOS>"', 'PARAMETER stop "<|im_end|>"', 'PARAMETER stop "<|endoftext|>"']
    assert text.count('TEMPLATE """') == 1


def test_a_tokenizer_template_leaves_the_template_to_ollama(tiny_llama):
    from transformers import AutoTokenizer
    from tunefactory.data.tokenizer_template import TokenizerTemplate

    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    text = modelfile(TokenizerTemplate(tokenizer), tokenizer)
    assert "TEMPLATE" not in text.replace("# no TEMPLATE", "") and "tokenizer_config.json" in text
    assert 'PARAMETER stop "</s>"' in text.splitlines()
