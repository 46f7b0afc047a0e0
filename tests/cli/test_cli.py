"""The command line as a user meets it: help, version, errors, exit codes, and no torch where it is not needed."""

from __future__ import annotations

import json
import sys
import time

import pytest

from tests.conftest import run_cli

PROBE = (
    "import sys, io, contextlib\n"
    "from tunefactory.cli.main import run\n"
    "with contextlib.redirect_stdout(io.StringIO()):\n"
    "    run(sys.argv[1:])\n"
    "heavy = [m for m in ('torch', 'transformers', 'peft', 'datasets') if m in sys.modules]\n"
    "print('HEAVY=' + ','.join(heavy))\n"
)


@pytest.mark.parametrize("argv", [["--help"], ["version"], ["plugins", "list"], ["plugins", "list", "--json"],
                                  ["help", "train"]])
def test_light_commands_do_not_import_torch(argv):
    import subprocess

    out = subprocess.run([sys.executable, "-c", PROBE, *argv], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("HEAVY="), out.stdout


@pytest.mark.parametrize("argv", [["--help"], ["version"], ["plugins", "list"]])
def test_light_commands_are_fast(argv):
    """Under half a second, interpreter start-up included (best of three, so a busy machine does not decide)."""
    timings = []
    for _ in range(3):
        start = time.perf_counter()
        out = run_cli(*argv)
        timings.append(time.perf_counter() - start)
        assert out.returncode == 0, out.stderr
    assert min(timings) < 0.5, f"{argv} took {min(timings):.2f}s"


def test_help_lists_every_command():
    out = run_cli("--help")
    for name in ("train", "chat", "api", "export", "validate", "plugins", "env", "version", "help"):
        assert f"\n  {name} " in out.stdout


def test_version_matches_package():
    from tunefactory import __version__

    assert run_cli("version").stdout.strip() == f"tunefactory {__version__}"
    assert run_cli("--version").stdout.strip() == f"tunefactory {__version__}"


def test_unknown_command_exits_2_with_did_you_mean():
    out = run_cli("trian")
    assert out.returncode == 2
    assert "unknown command 'trian'" in out.stderr and "'train'" in out.stderr
    assert "Traceback" not in out.stderr


def test_missing_config_file_names_the_path(tmp_path):
    missing = tmp_path / "nope.yaml"
    out = run_cli("train", str(missing))
    assert out.returncode == 2
    assert str(missing) in out.stderr and "does not exist" in out.stderr
    assert "Traceback" not in out.stderr


def test_debug_env_shows_the_traceback(tmp_path):
    out = run_cli("validate", str(tmp_path / "nope.yaml"), env={"TUNEFACTORY_DEBUG": "1"})
    assert out.returncode != 0 and "Traceback" in out.stderr


def test_bad_config_reports_every_problem_at_once(tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text("model_name_or_path: some/model\nlora_rnak: 8\nlearning_rate: fast\nfinetuning_type: lorra\n")
    out = run_cli("validate", str(config))
    assert out.returncode == 2
    assert "3 problems" in out.stderr
    assert "lora_rank" in out.stderr and "learning_rate" in out.stderr and "finetuning_type" in out.stderr


def test_validate_accepts_a_good_config(tmp_path):
    config = tmp_path / "good.yaml"
    config.write_text("model_name_or_path: some/model\nstage: sft\nfinetuning_type: lora\nlora_rank: 16\n")
    out = run_cli("validate", str(config), "learning_rate=1e-4", "--lora-alpha", "32")
    assert out.returncode == 0, out.stderr
    assert "valid" in out.stdout


def test_help_train_lists_options_with_defaults():
    out = run_cli("help", "train")
    assert out.returncode == 0
    assert "--lora_rank (an integer, default 8)" in out.stdout
    assert "--flash_attn (a string, default 'auto')" in out.stdout
    assert run_cli("train", "--help").stdout == out.stdout


def test_env_reports_versions_and_devices():
    out = run_cli("env")
    assert out.returncode == 0, out.stderr
    for name in ("python", "torch", "transformers", "peft", "datasets", "accelerate", "trl"):
        assert f"\n{name} " in "\n" + out.stdout
    assert "optional packages:" in out.stdout and "bitsandbytes" in out.stdout
    assert "devices:" in out.stdout and "cpu:" in out.stdout


def test_plugins_list_json_is_valid_and_complete():
    out = run_cli("plugins", "list", "--json")
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    kinds = {row["kind"] for row in data["plugins"]}
    assert kinds == {"quantizer", "attention", "engine", "template", "media", "patch", "hub", "stage"}
    for row in data["plugins"]:
        assert row["status"] in ("ok", "unavailable")
        if row["status"] == "unavailable":
            assert row["reason"]


def test_plugins_list_kind_filter_and_bad_kind():
    out = run_cli("plugins", "list", "--kind", "quantizer", "--json")
    names = {row["name"] for row in json.loads(out.stdout)["plugins"]}
    assert {"bnb", "gptq", "awq", "aqlm", "quanto", "eetq", "hqq", "mxfp4", "fp8"} <= names
    bad = run_cli("plugins", "list", "--kind", "quantizers")
    assert bad.returncode == 2 and "'quantizer'" in bad.stderr


def test_plugins_check_exit_codes():
    assert run_cli("plugins", "check", "attention:sdpa").returncode == 0
    gpu_only = run_cli("plugins", "check", "attention:fa3")
    assert gpu_only.returncode == 1 and "cannot run" in gpu_only.stdout
    unknown = run_cli("plugins", "check", "sdpx")
    assert unknown.returncode == 1 and "sdpa" in unknown.stdout
