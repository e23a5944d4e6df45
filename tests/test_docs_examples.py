"""The examples of README.md and docs/*.md, run as written, offline, in one temporary folder.

README first, then the docs pages in the order of README's documentation table, so that a page can use what
the tour made (``runs/si``, ``my_seeds.jsonl``). Fenced blocks by language:

* ``bash``/``console``/``sh``/``shell``: run through ``bash -e -o pipefail`` with the venv's ``bin`` first on
  ``PATH`` (``hf-synth``, ``python``), from a folder holding links to the clone's ``scripts/``,
  ``hf_synth/`` and ``cards/`` (examples are written to run from the root of the clone);
* ``python``: run by the venv's python;
* ``yaml``/``json``/``jsonl``/``csv``/``text``: written to the file named at the end of the line before the
  block (``... `filters.yaml`:``), so that later commands read it;
* no language: output listings, not run.

A block that cannot run on a CPU-only machine offline (a GPU, the real Hub, a served model, a page that
serves until stopped) is preceded by ``<!-- not-run: REASON -->``. Its command lines are still checked:
``hf-synth`` (also under ``accelerate launch``/``torchrun -m hf_synth.cli``) by the real argument parser,
``python scripts/sft.py``/``dpo.py`` by their TRL parsers, ``make`` targets by ``make -n``.
"""

from __future__ import annotations

import importlib.util
import os
import re
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
DOCS = ROOT / "docs"
SHELL_LANGS = {"bash", "console", "sh", "shell"}
FILE_LANGS = {"yaml", "yml", "json", "jsonl", "csv", "text", "txt"}
NOT_RUN = re.compile(r"^<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->$")
FILE_NAME = re.compile(r"`(?P<name>[\w.\-/]+\.\w+)`[^`]*:\s*$")
BLOCK_TIMEOUT = 900  # seconds; a block that hangs fails instead of holding the suite


@dataclass
class Block:
    path: Path
    line: int  # 1-based line of the opening fence
    lang: str
    body: str
    not_run: str | None  # the reason, when tagged
    file_name: str | None  # for data blocks: the file named just before

    def where(self) -> str:
        return f"{self.path.relative_to(ROOT) if self.path.is_relative_to(ROOT) else self.path}:{self.line}"


def extract_blocks(path: Path) -> list[Block]:
    """Fenced blocks of a Markdown file with their language, tag and the file name introduced before them."""
    lines = path.read_text(encoding="utf-8").splitlines()
    blocks: list[Block] = []
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)(```+|~~~+)\s*([\w+-]*)", lines[i])
        if not fence:
            i += 1
            continue
        marker, lang, start = fence.group(2), fence.group(3).lower(), i
        body: list[str] = []
        i += 1
        while i < len(lines) and not lines[i].strip().startswith(marker):
            body.append(lines[i])
            i += 1
        if i >= len(lines):
            raise ValueError(f"{path}:{start + 1}: unclosed code fence")
        i += 1
        before = [line.strip() for line in lines[:start] if line.strip()]
        previous = before[-1] if before else ""
        tag = NOT_RUN.match(previous)
        # a data block's name: the line before it, or the line before a not-run tag
        named = FILE_NAME.search(before[-2] if tag and len(before) > 1 else previous)
        blocks.append(
            Block(
                path=path,
                line=start + 1,
                lang=lang,
                body="\n".join(body) + "\n",
                not_run=tag.group("reason") if tag else None,
                file_name=named.group("name") if named else None,
            )
        )
    return blocks


def doc_pages() -> list[Path]:
    """README, then docs/*.md in the order README's documentation table (its "## Documentation") lists them."""
    text = README.read_text(encoding="utf-8")
    table = text.split("\n## Documentation\n", 1)[-1].split("\n## ", 1)[0]
    linked = re.findall(r"^\| \[(docs/[\w.\-]+\.md)\]", table, re.M)
    ordered: list[Path] = []
    for name in linked:
        page = ROOT / name
        if page not in ordered:
            ordered.append(page)
    return [README] + ordered


def command_lines(script: str) -> list[str]:
    """Logical command lines of a shell block: continuations joined, comments and blank lines dropped."""
    commands, current = [], ""
    for raw in script.splitlines():
        line = raw.rstrip()
        if line.startswith("$ "):
            line = line[2:]
        if line.endswith("\\"):
            current += line[:-1] + " "
            continue
        current += line
        if current.strip() and not current.strip().startswith("#"):
            commands.append(current.strip())
        current = ""
    return commands


def _argv(command: str) -> list[str]:
    argv = shlex.split(command, comments=True)
    while argv and re.match(r"^[A-Za-z_][A-Za-z0-9_]*=", argv[0]):  # VAR=value prefixes
        argv.pop(0)
    return argv


def _training_parser(script: str):
    from trl import DPOConfig, ModelConfig, SFTConfig, TrlParser

    spec = importlib.util.spec_from_file_location(f"docs_{script}", ROOT / "scripts" / f"{script}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the script is executed
    spec.loader.exec_module(module)
    from hf_synth.training import cpu_friendly_defaults

    config = SFTConfig if script == "sft" else DPOConfig
    parser = TrlParser((module.DataArguments, config, ModelConfig))
    parser.set_defaults(**cpu_friendly_defaults())  # as the scripts do, so a CPU-only machine parses them
    return parser


def check_command_parses(command: str) -> str:
    """Parse a not-run command line with the parser that would read it; returns what was checked."""
    from hf_synth.cli import build_parser

    argv = _argv(command)
    if not argv:
        return "empty"
    if argv[0] == "hf-synth":
        hf_args = argv[1:]
    elif argv[0] in ("accelerate", "torchrun") and "hf_synth.cli" in argv:
        hf_args = argv[argv.index("hf_synth.cli") + 1 :]
    elif argv[0] == "python" and len(argv) > 1 and argv[1] in ("scripts/sft.py", "scripts/dpo.py"):
        parser = _training_parser(Path(argv[1]).stem)
        try:
            parser.parse_args_and_config(args=argv[2:])
        except (SystemExit, ValueError) as exit_:
            raise AssertionError(f"{argv[1]} refuses the arguments of: {command}") from exit_
        return argv[1]
    elif argv[0] == "make":
        for target in argv[1:]:
            dry = subprocess.run(["make", "-n", target], cwd=ROOT, capture_output=True, text=True)
            assert dry.returncode == 0, f"make has no target {target!r}: {dry.stderr.strip()}"
        return "make"
    else:
        return f"not checked ({argv[0]})"
    try:
        build_parser().parse_args(hf_args)
    except SystemExit as exit_:
        raise AssertionError(f"hf-synth's parser refuses: {command}") from exit_
    return "hf-synth"


def check_config(block: Block) -> list[str]:
    """A YAML block's hf-synth sections, read as the commands read them (unknown keys and bad values fail)."""
    import yaml

    from hf_synth.augment.augment_config import NegativeConfig, ParaphraseConfig
    from hf_synth.configuration import from_dict
    from hf_synth.engine.engine_config import EngineConfig
    from hf_synth.evol_instruct.evol_instruct_config import EvolInstructConfig
    from hf_synth.filters import resolve_filters
    from hf_synth.refine.refine_config import RefineConfig
    from hf_synth.review.review_config import ReviewConfig
    from hf_synth.self_instruct.self_instruct_config import SelfInstructConfig

    sections = {
        "engine": EngineConfig,
        "self_instruct": SelfInstructConfig,
        "evol_instruct": EvolInstructConfig,
        "refine": RefineConfig,
        "review": ReviewConfig,
        "paraphrase": ParaphraseConfig,
        "negatives": NegativeConfig,
    }
    data = yaml.safe_load(block.body) or {}
    checked = []
    for key, value in data.items() if isinstance(data, dict) else ():
        try:
            if key == "filters":
                resolve_filters(value)
            elif key in sections:
                from_dict(sections[key], value, key)
            else:
                continue
        except (ValueError, TypeError) as err:
            raise AssertionError(f"{block.where()}: section {key!r} of {block.file_name}: {err}") from err
        checked.append(key)
    return checked


def check_config_in(block: Block, workspace: Path) -> list[str]:
    """:func:`check_config` from the examples' folder: a file or folder a section names (a filter's model,
    a decontamination set written by an earlier block) is relative to where the commands run."""
    cwd = os.getcwd()
    os.chdir(workspace)
    try:
        return check_config(block)
    finally:
        os.chdir(cwd)


def _env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(HF_HUB_OFFLINE="1", HF_DATASETS_OFFLINE="1", TRANSFORMERS_OFFLINE="1", HF_EVALUATE_OFFLINE="1")
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.pop("PYTHONPATH", None)
    return env


def prepare_workspace(folder: Path) -> Path:
    """A folder that looks like the root of the clone to the examples (scripts/, hf_synth/ and cards/ linked)."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("scripts", "hf_synth", "cards"):
        link = folder / name
        if not link.exists():
            link.symlink_to(ROOT / name, target_is_directory=True)
    return folder


def run_block(block: Block, workspace: Path) -> str:
    """Run (or write, or parse) one block; raises AssertionError naming the block on failure."""
    if block.not_run is not None:
        if block.lang in SHELL_LANGS:
            checked = [check_command_parses(command) for command in command_lines(block.body)]
            return f"not run ({block.not_run}); parsed: {', '.join(checked)}"
        if block.lang == "python":
            compile(block.body, block.where(), "exec")
            return f"not run ({block.not_run}); compiled"
        if block.lang in ("yaml", "yml"):
            # checked as where it would run: a Hub dataset id it names is not refused for being uncached
            # offline (datasets loads nothing while a config is checked)
            from unittest import mock

            from datasets import config as datasets_config

            with mock.patch.object(datasets_config, "HF_HUB_OFFLINE", False):
                checked = check_config_in(block, workspace)
            return f"not run ({block.not_run}); checked: {', '.join(checked) or 'YAML syntax'}"
        return f"not run ({block.not_run})"
    if block.lang == "":
        return "output listing"
    if block.lang in FILE_LANGS:
        assert block.file_name, (
            f"{block.where()}: a {block.lang} block must be introduced by its file name (e.g. "
            "`filters.yaml`: at the end of the line before it), or be an output listing without a language"
        )
        target = workspace / block.file_name
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(block.body, encoding="utf-8")
        if block.lang in ("yaml", "yml"):
            checked = check_config_in(block, workspace)
            return f"wrote {block.file_name}" + (f" (checked: {', '.join(checked)})" if checked else "")
        return f"wrote {block.file_name}"
    if block.lang in SHELL_LANGS:
        body = "\n".join(line[2:] if line.startswith("$ ") else line for line in block.body.splitlines())
        argv = ["bash", "-e", "-o", "pipefail", "-c", body]
    elif block.lang == "python":
        argv = [sys.executable, "-c", block.body]
    else:
        raise AssertionError(
            f"{block.where()}: code block language {block.lang!r} is neither run nor written by this test; "
            f"use one of {sorted(SHELL_LANGS | FILE_LANGS | {'python'})} or no language for output"
        )
    started = time.perf_counter()
    try:
        done = subprocess.run(
            argv, cwd=workspace, env=_env(), capture_output=True, text=True, timeout=BLOCK_TIMEOUT
        )
    except subprocess.TimeoutExpired as timeout:
        raise AssertionError(f"{block.where()}: ran past {BLOCK_TIMEOUT}s:\n{block.body}") from timeout
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        tail = (done.stdout[-2000:] + "\n" + done.stderr[-4000:]).strip()
        raise AssertionError(
            f"{block.where()}: the example failed (exit {done.returncode}) after {seconds:.0f}s:\n"
            f"{block.body}\n--- output (tail) ---\n{tail}"
        )
    return f"ran in {seconds:.0f}s"


# --- the machinery itself (fast): each check must be able to fail -------------------------------


def test_extracts_languages_tags_and_file_names(tmp_path):
    page = tmp_path / "page.md"
    page.write_text(
        "Intro, `conf.yaml`:\n\n```yaml\na: 1\n```\n\n<!-- not-run: needs a GPU -->\n```bash\n"
        "hf-synth self-instruct --output x\n```\n\n```\nan output listing\n```\n",
        encoding="utf-8",
    )
    yaml_block, tagged, listing = extract_blocks(page)
    assert (yaml_block.lang, yaml_block.file_name, yaml_block.not_run) == ("yaml", "conf.yaml", None)
    assert (tagged.lang, tagged.not_run, tagged.line) == ("bash", "needs a GPU", 8)
    assert listing.lang == ""
    bad_yaml = Block(page, 1, "yaml", "self_instruct:\n  num_instructionz: 3\n", None, "bad.yaml")
    with pytest.raises(AssertionError, match="num_instructionz"):
        run_block(bad_yaml, tmp_path)
    bad_filter = Block(page, 1, "yaml", "filters:\n  - {name: no_such_filter}\n", None, "bad.yaml")
    with pytest.raises(AssertionError, match="no_such_filter"):
        run_block(bad_filter, tmp_path)
    assert (
        run_block(yaml_block, tmp_path) == "wrote conf.yaml"
        and (tmp_path / "conf.yaml").read_text() == "a: 1\n"
    )
    assert run_block(listing, tmp_path) == "output listing"


def test_a_broken_example_fails(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("```bash\necho fine\nfalse\necho never\n```\n\n```python\nraise SystemExit(3)\n```\n")
    shell, python = extract_blocks(page)
    for block in (shell, python):
        with pytest.raises(AssertionError, match="the example failed"):
            run_block(block, tmp_path)
    unnamed = Block(page, 1, "yaml", "a: 1\n", None, None)
    with pytest.raises(AssertionError, match="introduced by its file name"):
        run_block(unnamed, tmp_path)
    with pytest.raises(AssertionError, match="language 'rust'"):
        run_block(Block(page, 1, "rust", "fn main() {}\n", None, None), tmp_path)


def test_not_run_blocks_are_parsed():
    ok = Block(
        README,
        1,
        "bash",
        "# a comment\nHF_TOKEN=x hf-synth push runs/a user/b --private\n"
        "accelerate launch --multi_gpu --num_processes 2 -m hf_synth.cli generate \\\n"
        "    --input p.jsonl --output runs/gen\nvllm serve some/model --port 8000\n",
        "needs the Hub",
        None,
    )
    assert run_block(ok, ROOT).endswith("parsed: hf-synth, hf-synth, not checked (vllm)")
    for bad in ("hf-synth push runs/a user/b --no-such-flag", "hf-synth self-instruct --num-instructions x"):
        with pytest.raises(AssertionError, match="parser refuses"):
            run_block(Block(README, 1, "bash", bad + "\n", "needs a GPU", None), ROOT)
    sft = "python scripts/sft.py --dataset runs/a --output_dir out --max_steps 2 --use_peft --lora_r 8\n"
    assert run_block(Block(README, 1, "bash", sft, "needs the Hub", None), ROOT).endswith("scripts/sft.py")
    with pytest.raises(AssertionError, match="refuses the arguments"):
        run_block(Block(README, 1, "bash", sft.replace("--lora_r", "--lora_rank"), "x", None), ROOT)
    with pytest.raises(AssertionError, match="no target"):
        run_block(Block(README, 1, "bash", "make no-such-target\n", "set-up", None), ROOT)


def test_every_docs_page_is_linked_from_readme():
    linked = {page.name for page in doc_pages()[1:]}
    assert linked == {page.name for page in DOCS.glob("*.md")}, (
        "README's documentation table must list docs/*.md"
    )


# --- the examples (slow: they run the embedded model) ---------------------------------------------


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    return prepare_workspace(tmp_path_factory.mktemp("docs_examples"))


@pytest.mark.slow
@pytest.mark.parametrize("page", doc_pages(), ids=lambda page: page.name)
def test_examples_run_as_written(page, workspace):
    for block in extract_blocks(page):
        outcome = run_block(block, workspace)
        print(f"{block.where()}: {outcome}")
