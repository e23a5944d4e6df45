"""`import hf_synth` and the CLI's parser are light: heavy libraries load when a name needs them."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

HEAVY = ("torch", "numba", "datasets", "nltk", "transformers", "sklearn", "pyarrow")


def _loaded(code: str) -> dict:
    script = code + f"\nimport json, sys\nprint(json.dumps({{m: m in sys.modules for m in {HEAVY!r}}}))"
    proc = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_import_hf_synth_loads_no_heavy_library():
    assert not any(_loaded("import hf_synth").values())


def test_the_cli_parser_and_config_classes_load_no_heavy_library():
    code = (
        "from hf_synth.cli import build_parser\n"
        "from hf_synth import EngineConfig, SelfInstructConfig, EvolInstructConfig\n"
        "build_parser().parse_args(['self-instruct', '--num-instructions', '3', '--output', 'x'])"
    )
    assert not any(_loaded(code).values())


def test_public_names_resolve_on_first_access_and_unknown_names_fail():
    import hf_synth

    assert hf_synth.SelfInstructConfig.__name__ == "SelfInstructConfig"
    assert "GenerationEngine" in dir(hf_synth) and "GenerationEngine" in hf_synth.__all__
    for name in hf_synth.__all__:
        assert getattr(hf_synth, name) is not None
    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        hf_synth.Nope  # noqa: B018


def test_an_argument_error_answers_before_anything_heavy_loads():
    code = (
        "import sys\n"
        "from hf_synth.cli import main\n"
        "try:\n"
        "    main(['self-instruct', '--num-instructions', '-5', '--output', 'x'])\n"
        "except SystemExit:\n"
        "    pass\n"
    )
    assert not any(_loaded(code).values())
