"""tune.dashboard: the smoke search's Optuna journal served by optuna-dashboard on loopback."""

import subprocess
import sys
import time

import pytest
from helpers import free_port, get_json

from tune.dashboard import main


def trial_attrs(trial: dict, key: str):
    return next((a["value"] for a in trial["user_attrs"] if a["key"] == key), None)


def test_dashboard_serves_the_smoke_study(smoke_experiment, smoke_spec):
    pytest.importorskip("optuna_dashboard")
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "tune.dashboard", str(smoke_experiment), "--port", str(port)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 60
        while True:
            try:
                studies = get_json(f"http://127.0.0.1:{port}/api/studies")["study_summaries"]
                break
            except OSError:
                pass
            assert server.poll() is None, "the dashboard exited early"
            assert time.time() < deadline, "the dashboard did not answer in 60 s"
            time.sleep(0.5)
        smoke = next(s for s in studies if s["study_name"] == "smoke")
        assert smoke["directions"] == ["minimize"]
        detail = get_json(f"http://127.0.0.1:{port}/api/studies/{smoke['study_id']}")
        assert len(detail["trials"]) == smoke_spec.num_samples
        for trial in detail["trials"]:  # its note names it as everything else does
            ray_id, name = trial_attrs(trial, "ray_trial_id"), trial_attrs(trial, "baseline")
            assert trial["note"]["body"] == (f"{name} (baseline), Ray trial {ray_id}" if name
                                             else f"Ray trial {ray_id}")
    finally:
        server.terminate()
        output, errors = server.communicate(timeout=30)
    assert output.splitlines()[0] == (f"optuna-dashboard for {smoke_experiment}: "
                                      f"http://127.0.0.1:{port}/ (Ctrl+C stops it)"), errors


@pytest.mark.parametrize("argv, message", [
    (["--port", "0"], "`1 <= port <= 65535` must hold, but got port=0"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    ([], "not an experiment folder of tune.run (no study.yaml)"),
])
def test_bad_use_is_one_line_and_exit_2(tmp_path, capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        sys.exit(main([str(tmp_path), *argv]))
    assert info.value.code == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err


def test_without_optuna_dashboard_says_how_to_install_it(tmp_path, capsys, monkeypatch):
    monkeypatch.setitem(sys.modules, "optuna_dashboard", None)  # makes the import fail
    assert main([str(tmp_path)]) == 2
    assert capsys.readouterr().err == ("error: optuna-dashboard is not installed; install it "
                                       "with: pip install optuna-dashboard\n")


@pytest.mark.parametrize("journal, message", [
    (None, "no Optuna journal (optuna-journal.log); the search never started"),
    (b'{"op_code": 0, "worker_id": "w", "study_name": "smoke", "directions": [1]}\n'
     b'{"op_code": 4, "wor\n{"op_code": 4}\n', "the Optuna journal is unreadable"),
])
def test_a_folder_without_a_readable_journal_is_one_line(tmp_path, capsys, journal, message,
                                                         smoke_spec):
    from tune.experiment import JOURNAL_FILE, STUDY_FILE

    (tmp_path / STUDY_FILE).write_text(smoke_spec.to_yaml())
    if journal is not None:
        (tmp_path / JOURNAL_FILE).write_bytes(journal)
    assert main([str(tmp_path)]) == 2
    err = capsys.readouterr().err.strip()
    assert message in err and "\n" not in err and "Traceback" not in err
