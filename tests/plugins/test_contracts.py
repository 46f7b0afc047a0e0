"""The contract kit itself: it passes a sound plugin and catches the mistakes it exists for.

Fake plugins are registered in a private registry that stands in for the process-wide one.
"""

import pytest
import tunefactory.testing.contracts as contracts
from tunefactory.hookspecs import hookimpl
from tunefactory.model.interfaces import Quantizer
from tunefactory.registry import Registry
from tunefactory.testing.contracts import PatchContract, QuantizerContract


class SoundQuantizer(Quantizer):
    name = "sound"

    def loading_kwargs(self, config):
        return {}


class Unfinished(Quantizer):  # leaves loading_kwargs abstract
    name = "unfinished"


class NotAQuantizer:
    pass


HERE = __name__


class FakePlugin:
    @hookimpl
    def tunefactory_register_quantizers(self, register):
        caps = {"bits": (4, 8), "trainable": ("lora",), "on_the_fly": True}
        register("sound", f"{HERE}:SoundQuantizer", summary="a sound quantizer", capabilities=caps)
        register("typo", f"{HERE}:SoundQuantizer", summary="misspelled capability", capabilities={"need_gpu": True})
        register("listbits", f"{HERE}:SoundQuantizer", summary="bits as a list", capabilities={"bits": [4, 8]})
        register("unfinished", f"{HERE}:Unfinished", summary="abstract left", capabilities={})
        register("stranger", f"{HERE}:NotAQuantizer", summary="not a quantizer", capabilities={})
        register(
            "missing",
            f"{HERE}:SoundQuantizer",
            summary="needs a package that is not installed",
            extra="bnb",
            requires=("surely-not-installed-package>=1",),
        )

    @hookimpl
    def tunefactory_register_model_patches(self, register):
        target = "tunefactory.model.interfaces:ModelPatch"
        register("nooption", target, summary="no such option", capabilities={"option": "no_such_option"})
        register(
            "flagvalue",
            target,
            summary="value on a flag",
            capabilities={"option": "shift_attn", "value": "x"},
        )


@pytest.fixture
def registry(monkeypatch):
    registry = Registry()
    registry.register_plugin(FakePlugin(), "fake")
    monkeypatch.setattr(contracts, "get_registry", lambda: registry)
    monkeypatch.setattr("tunefactory.config.validate.get_registry", lambda: registry)
    return registry


def suite(base, name):
    return type(f"Test{name}", (base,), {"name": name})()


def test_a_sound_plugin_passes(registry):
    check = suite(QuantizerContract, "sound")
    spec = registry.get("quantizer", "sound")
    check.test_registered_once_by_its_provider(spec)
    check.test_summary_is_one_line(spec)
    check.test_target_is_module_colon_attribute(spec)
    check.test_capabilities_are_well_typed(spec)
    check.test_missing_requirements_have_an_install_command(spec)
    check.test_available_selects(spec)
    implementation = spec.load()
    check.test_target_implements_the_interface(implementation)
    check.test_rejects_a_bit_width_it_does_not_take(spec)
    check.test_rejects_finetuning_types_it_cannot_train(spec)


@pytest.mark.parametrize(("name", "words"), [("typo", "unknown quantizer capability 'need_gpu'"), ("listbits", "bits")])
def test_bad_capabilities_are_caught(registry, name, words):
    with pytest.raises(AssertionError, match=words):
        suite(QuantizerContract, name).test_capabilities_are_well_typed(registry.get("quantizer", name))


@pytest.mark.parametrize(("name", "words"), [("unfinished", "leaves abstract"), ("stranger", "does not subclass")])
def test_targets_that_are_not_implementations_are_caught(registry, name, words):
    with pytest.raises(AssertionError, match=words):
        suite(QuantizerContract, name).test_target_implements_the_interface(registry.get("quantizer", name).load())


def test_a_requirement_outside_its_extra_is_caught_and_selection_explains(registry):
    spec = registry.get("quantizer", "missing")
    check = suite(QuantizerContract, "missing")
    with pytest.raises(AssertionError, match="surely-not-installed-package"):
        check.test_missing_requirements_have_an_install_command(spec)
    check.test_unavailable_says_why_and_how(spec)  # the hint names the extra, and select() raises with it


@pytest.mark.parametrize(("name", "words"), [("nooption", "not a tunefactory option"), ("flagvalue", "boolean")])
def test_patch_options_are_checked(registry, name, words):
    with pytest.raises(AssertionError, match=words):
        suite(PatchContract, name).test_option_exists(registry.get("patch", name))


def test_an_unregistered_name_fails_with_the_registered_ones(registry):
    with pytest.raises(pytest.fail.Exception, match="sound"):
        suite(QuantizerContract, "nosuch").registered_spec()
