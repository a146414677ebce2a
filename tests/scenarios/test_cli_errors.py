"""Every command that reads an experiment folder answers a folder it cannot use with one line
and exit status 2: they all catch the one UserError base."""

import subprocess
import sys
from pathlib import Path

import pytest

from tune import confirm, dashboard, evaluate, export, run, summary
from tune.experiment import STUDY_FILE
from tune.study import load_study

REPO = Path(__file__).resolve().parents[2]
COMMANDS = {
    "summary": (summary.main, []),
    "export": (export.main, []),
    "evaluate": (evaluate.main, ["--split", "test"]),
    "confirm": (confirm.main, ["--seeds", "2"]),
    "dashboard": (dashboard.main, []),
    "run --resume": (run.main, None),
}


def folder_without_study(path):
    return "not an experiment folder"


def folder_with_a_bad_study(path):
    text = load_study("smoke.yaml").to_yaml()
    (path / STUDY_FILE).write_text(text.replace("\nnum_samples: 4\n", "\nnum_samples: many\n"))
    return "num_samples: must be an integer"


def folder_with_an_unparsable_study(path):
    (path / STUDY_FILE).write_text("name: [smoke\n")
    return "not valid YAML"


@pytest.mark.parametrize("make", [folder_without_study, folder_with_a_bad_study,
                                  folder_with_an_unparsable_study],
                         ids=lambda make: make.__name__)
@pytest.mark.parametrize("command", COMMANDS)
def test_an_unusable_folder_is_one_line_and_exit_2(command, make, tmp_path, capsys):
    main, extra = COMMANDS[command]
    message = make(tmp_path)
    argv = ["--resume", str(tmp_path)] if extra is None else [str(tmp_path), *extra]
    if command == "dashboard":
        pytest.importorskip("optuna_dashboard")
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and message in err, err
    assert "\n" not in err and "Traceback" not in err


def test_a_summary_that_cannot_be_written_is_still_printed(smoke_experiment, capsys,
                                                         monkeypatch):
    def read_only(path, data):
        raise OSError(30, "Read-only file system", str(path))

    monkeypatch.setattr("tune.summary.write_json", read_only)
    assert summary.main([str(smoke_experiment)]) == 0
    out = capsys.readouterr().out
    assert "## Search quality" in out
    assert " ".join(out.split()).endswith("not written (summary.md, summary.json, plots): "
                                          f"{smoke_experiment / 'summary.json'}: Read-only file "
                                          "system")


@pytest.mark.parametrize("module", ["tune.run", "tune.summary", "baseres.train"])
def test_outside_the_projects_environment_a_command_says_what_to_do(module):
    # -S: no site-packages, as a system Python without the project's packages
    done = subprocess.run([sys.executable, "-S", "-m", module, "--help"], capture_output=True,
                          text=True, cwd=REPO, timeout=120)
    assert done.returncode == 2 and "Traceback" not in done.stderr
    assert "which this Python does not have: run it in the project's environment " \
           "(. .venv/bin/activate" in done.stderr
