"""README's everyday commands, as pasted and in their order, after what make run leaves: an
experiment folder `results/generalization-<time>` and the link `results/generalization` to it
(here the session's question run at CI size stands in for make run's)."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from helpers import RUN_LIMIT_S, copy_experiment, free_port, reaped

pytestmark = pytest.mark.slow

README = Path(__file__).resolve().parents[2] / "README.md"
SERVERS = ("tensorboard", "tune.dashboard")  # they serve until Ctrl-C


def everyday_commands() -> list[str]:
    """The first code block under README's "Everyday commands" heading, comments dropped."""
    text = README.read_text().split("## Everyday commands", 1)[1]
    block = text.split("```", 2)[1]
    return [line.split("  #")[0].strip() for line in block.splitlines() if line.strip()]


def port_free(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) != 0


def answers(url: str) -> int:
    """The status of a GET of `url`, waiting up to a minute for the server to listen."""
    deadline = time.monotonic() + 60
    while True:
        try:
            with urllib.request.urlopen(url, timeout=30) as page:
                return page.status
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.5)


def serve_then_stop(command: str, cwd: Path, env: dict[str, str]) -> None:
    """A server command: it must answer at the address it prints, then stop on Ctrl-C with
    exit 0."""
    process = subprocess.Popen(["bash", "-c", f"exec {command}"], cwd=cwd, env=env, text=True,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               start_new_session=True)
    lines = []
    with reaped(process):
        for line in process.stdout:
            lines.append(line)
            if "http://" in line:
                url = next(w for w in line.split() if w.startswith("http://"))
                break
        else:
            pytest.fail(f"{command}: ended without serving:\n{''.join(lines)[-2000:]}")
        assert answers(url) == 200, command
        os.killpg(process.pid, signal.SIGINT)
        assert process.wait(timeout=60) == 0, command


def test_every_everyday_command_of_the_readme_runs_as_pasted(question_experiment, tmp_path):
    commands = everyday_commands()
    assert commands[0].startswith("python -m tune.summary results/generalization")
    assert len(commands) == 7
    results = tmp_path / "results"
    results.mkdir()
    copy_experiment(question_experiment, results, "generalization-20261206-040000")
    (results / "generalization").symlink_to("generalization-20261206-040000")
    # `python` and `tensorboard` as an activated .venv has them
    env = {**os.environ, "RAY_USAGE_STATS_ENABLED": "0",
           "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    for command in commands:
        if any(command.startswith(server) or f"-m {server} " in command
               for server in SERVERS):
            if "tune.dashboard" in command and not port_free(8080):
                command += f" --port {free_port()}"  # 8080 is taken on this machine
            serve_then_stop(command, tmp_path, env)
            continue
        done = subprocess.run(["bash", "-c", command], cwd=tmp_path, env=env, text=True,
                              capture_output=True, timeout=RUN_LIMIT_S)
        assert done.returncode == 0, f"{command}:\n{(done.stdout + done.stderr)[-3000:]}"
        assert "Traceback" not in done.stdout + done.stderr, command
    assert (tmp_path / "best.yaml").is_file() and (tmp_path / "best.pt").is_file()
    assert list((results / "generalization-20261206-040000" / "confirm").glob("trial_*"))
