"""The third-party example plugin, installed like any package: discovered, listed, selectable, and it works."""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from tunefactory.registry import reset_registry
from tunefactory.testing.contracts import AttentionContract, TemplateContract

from tests.conftest import run_cli

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "third_party_plugin"


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    """pip-installs the example into its own folder, which the tests put on the path."""
    target = tmp_path_factory.mktemp("third_party")
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target),
         str(EXAMPLE)],
        check=True, capture_output=True, text=True, timeout=300,
    )
    return target


@pytest.fixture(scope="module", autouse=True)
def on_path(installed):
    """In this process and in the subprocesses the contract suite starts."""
    saved = os.environ.get("PYTHONPATH")
    os.environ["PYTHONPATH"] = os.pathsep.join(filter(None, [str(installed), saved]))
    sys.path.insert(0, str(installed))
    importlib.invalidate_caches()
    reset_registry()
    yield installed
    sys.path.remove(str(installed))
    if saved is None:
        del os.environ["PYTHONPATH"]
    else:
        os.environ["PYTHONPATH"] = saved
    for name in [m for m in sys.modules if m.startswith("tunefactory_example_plugin")]:
        del sys.modules[name]
    reset_registry()


class TestExampleTemplateContract(TemplateContract):
    name = "example_chat"
    provider = "example"


class TestExampleAttentionContract(AttentionContract):
    name = "example_attention"
    provider = "example"


def test_listed_with_its_distribution(installed):
    out = run_cli("plugins", "list", "--json", env={"PYTHONPATH": str(installed)})
    rows = {(p["kind"], p["name"]): p for p in json.loads(out.stdout)["plugins"]}
    for key in (("template", "example_chat"), ("attention", "example_attention")):
        assert rows[key]["status"] == "ok"
        assert rows[key]["provider"] == "example"
        assert rows[key]["distribution"] == "tunefactory-example-plugin"


def test_selectable_by_name_in_a_config(installed, tmp_path):
    config = tmp_path / "run.yaml"
    config.write_text("model_name_or_path: m\ntemplate: example_chat\nflash_attn: example_attention\n")
    env = {"PYTHONPATH": str(installed)}
    assert run_cli("validate", str(config), env=env).returncode == 0
    assert run_cli("plugins", "check", "template:example_chat", "attention:example_attention", env=env).returncode == 0
    without = run_cli("validate", str(config), env={"PYTHONPATH": ""})
    assert without.returncode == 2 and "example_chat" in without.stderr and "chatml" in without.stderr


def test_template_masks_answers_and_matches_its_jinja(tiny_llama):
    from transformers import AutoTokenizer
    from tunefactory.registry import get_registry

    template = get_registry().select("template", "example_chat").load()()
    tokenizer = AutoTokenizer.from_pretrained(tiny_llama)
    messages = [{"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A test."},
                {"role": "user", "content": "Sure?"}, {"role": "assistant", "content": "Yes."}]
    encoded = template.encode(tokenizer, messages, system="Be brief.")
    trained = tokenizer.decode([t for t, m in zip(encoded.input_ids, encoded.label_mask, strict=True) if m])
    assert trained == f"A test.{tokenizer.eos_token}Yes.{tokenizer.eos_token}"
    conversation = [{"role": "system", "content": "Be brief."}, *messages]
    rendered = tokenizer.apply_chat_template(conversation, chat_template=template.to_jinja(), tokenize=False)
    assert tokenizer.decode(encoded.input_ids) == rendered
    prompt = template.encode_prompt(tokenizer, messages[:3], system="Be brief.")
    assert prompt == encoded.input_ids[: len(prompt)]
    assert tokenizer.decode(prompt).endswith("User: Sure?\nAssistant: ")


def test_attention_backend_runs_in_transformers(tiny_llama):
    import torch
    from transformers import AutoModelForCausalLM
    from tunefactory.registry import get_registry

    backend = get_registry().select("attention", "example_attention").load()()
    backend.register()
    ids = torch.tensor([[5, 9, 23, 40, 7, 11], [3, 3, 8, 1, 2, 2]])
    mask = torch.tensor([[1, 1, 1, 1, 1, 1], [0, 0, 1, 1, 1, 1]])
    reference = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation="eager").eval()
    custom = AutoModelForCausalLM.from_pretrained(tiny_llama, attn_implementation=backend.attn_implementation()).eval()
    assert custom.config._attn_implementation == "tunefactory_example_attention"
    with torch.no_grad():
        want = reference(input_ids=ids, attention_mask=mask).logits
        got = custom(input_ids=ids, attention_mask=mask).logits
    keep = mask.bool()
    torch.testing.assert_close(got[keep], want[keep], rtol=1e-4, atol=1e-4)
