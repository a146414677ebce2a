"""Every command README shows works as pasted: each `python -m` module answers --help, the fast
ones run whole against an experiment laid out as `make run` leaves it (results/generalization
a link to it), each `make` target exists, and README stays a guide of at most 250 lines."""

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import RUN_LIMIT_S, copy_experiment

REPO = Path(__file__).resolve().parents[2]
README = REPO / "README.md"
ENV = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0"}
# Run whole: quick, and they only read (or write into the working directory).
WHOLE = ("tune.summary", "tune.export", "tune.run --space smoke.yaml --dry-run")


def commands() -> list[str]:
    """The command lines of README's code blocks, continuation lines joined, comments cut."""
    blocks = re.findall(r"```\n(.*?)```", README.read_text(), flags=re.S)
    found = []
    for block in blocks:
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line.startswith(("python -m ", "make ", "tensorboard ")):
                found.append(" ".join(line.split()))
    return found


def test_readme_is_a_short_guide_with_its_commands():
    assert len(README.read_text().splitlines()) <= 250
    found = commands()
    assert "make run" in found and "make test" in found
    assert any(c.startswith("python -m tune.confirm results/generalization") for c in found)
    for link in re.findall(r"\]\((docs/[^)#]+)", README.read_text()):
        assert (REPO / link).is_file(), link


@pytest.mark.parametrize("line", [c for c in commands() if c.startswith("make ")])
def test_each_make_target_exists(line):
    target = line.split()[1]
    assert re.search(rf"^{target}:", (REPO / "Makefile").read_text(), flags=re.M), line


@pytest.mark.parametrize("line", [c for c in commands() if c.startswith("python -m ")])
def test_each_module_answers_help(line):
    module = line.split()[2]
    done = subprocess.run([sys.executable, "-m", module, "--help"], capture_output=True,
                          text=True, cwd=REPO, env=ENV, timeout=300)
    assert done.returncode == 0, (line, done.stderr[-2000:])
    assert "Traceback" not in done.stderr
    assert "``" not in done.stdout  # docstrings' RST literals read as plain `literals`
    if "--top" in done.stdout:  # its default is shown
        assert re.search(r"--top TOP .*\(default: \d+\)", " ".join(done.stdout.split())), line


@pytest.mark.slow
def test_the_fast_commands_run_whole_as_pasted(question_experiment, tmp_path):
    # the layout make run leaves: results/generalization -> results/<experiment>
    copy_experiment(question_experiment, tmp_path / "results", "q-copy")
    (tmp_path / "results" / "generalization").symlink_to("q-copy")
    ran = []
    for line in commands():
        if not any(line.startswith(f"python -m {fast}") for fast in WHOLE):
            continue
        argv = shlex.split(line)
        done = subprocess.run([sys.executable, *argv[1:]], capture_output=True, text=True,
                              cwd=tmp_path, env={**ENV, "PYTHONPATH": str(REPO)},
                              timeout=RUN_LIMIT_S)
        assert done.returncode == 0, (line, done.stdout[-2000:], done.stderr[-2000:])
        ran.append(argv[2])
    assert {"tune.summary", "tune.export", "tune.run"} <= set(ran)
    assert (tmp_path / "best.yaml").is_file() and (tmp_path / "best.pt").is_file()
    assert (tmp_path / "results" / "q-copy" / "summary.md").read_text().count(
        "**Answer: ") == 1
