"""tune.dashboard: the smoke search's Optuna journal served by optuna-dashboard on loopback."""

import contextlib
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request

import pytest
from helpers import free_port, get_json, reaped

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


# A server whose one page takes a minute, as a slow request of the dashboard's page would.
SLOW_SERVER = """
import time
from tune.dashboard import listen, serve_until_ctrl_c

def slow_page(environ, start_response):
    print("serving a request", flush=True)
    time.sleep(60)
    start_response("200 OK", [])
    return [b""]

server = listen(slow_page, "127.0.0.1", 0)
print(server.server_port, flush=True)
serve_until_ctrl_c(server)
print("stopped", flush=True)
"""


def request_cut_off(url: str) -> None:
    """A GET that the server's end cuts off."""
    with contextlib.suppress(ConnectionError):
        urllib.request.urlopen(url, timeout=120)


def test_ctrl_c_during_a_request_stops_the_server():
    """A Ctrl+C that lands while a request is being served stops the server (served in the
    main thread, wsgiref's error handler caught it and the server went on)."""
    server = subprocess.Popen([sys.executable, "-c", SLOW_SERVER], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, start_new_session=True)
    with reaped(server):
        port = int(server.stdout.readline())
        url = f"http://127.0.0.1:{port}/"
        threading.Thread(target=request_cut_off, args=(url,), daemon=True).start()
        assert server.stdout.readline() == "serving a request\n"
        os.killpg(server.pid, signal.SIGINT)
        output, _ = server.communicate(timeout=30)
    assert server.returncode == 0 and output.endswith("stopped\n"), output[-2000:]


def test_a_taken_port_is_one_line_and_exit_2(smoke_experiment, capsys):
    pytest.importorskip("optuna_dashboard")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        assert main([str(smoke_experiment), "--port", str(port)]) == 2
    assert capsys.readouterr().err == (f"error: --host 127.0.0.1 --port {port}: cannot listen "
                                       "there: Address already in use\n")


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
