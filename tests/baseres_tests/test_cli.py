"""baseres.cli: the shell every command runs in (one line and status 2 for a user's error,
130 on Ctrl-C with the command's own hint) and the range-checked int flags."""

import argparse
import shlex

import pytest

from baseres.cli import (
    CommandLineError,
    Interrupted,
    OneLineParser,
    bounded_int,
    command_line,
    run_command,
)
from baseres.errors import UserError


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(prog="python -m demo")
    parser.add_argument("--top", type=bounded_int("top", 1), default=3)
    parser.add_argument("--port", type=bounded_int("port", 1, 65535), default=8080)
    return parser


@pytest.mark.parametrize("argv, message", [
    (["--top", "0"], "argument --top: `top >= 1` must hold, but got top=0"),
    (["--port", "65536"], "argument --port: `1 <= port <= 65535` must hold, but got port=65536"),
    (["--top", "ten"], "argument --top: invalid int value: 'ten'"),
])
def test_a_bounded_int_out_of_range_is_argparses_one_line(capsys, argv, message):
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(argv)
    assert info.value.code == 2
    assert capsys.readouterr().err == f"python -m demo: error: {message} (see --help)\n"


def test_bounded_ints_in_range_and_defaults_pass():
    args = build_parser().parse_args(["--port", "65535"])
    assert (args.top, args.port) == (3, 65535)


def raising(error: BaseException):
    def body(args):
        raise error

    return body


@pytest.mark.parametrize("error, code, err", [
    (UserError("x.yaml: not valid YAML"), 2, "error: x.yaml: not valid YAML\n"),
    (KeyboardInterrupt(), 130, "\ninterrupted\n"),
    (Interrupted("resume with: python -m demo --resume"), 130,
     "\ninterrupted; resume with: python -m demo --resume\n"),
    (Interrupted("resume with: again", what="2 runs did not finish"), 130,
     "\n2 runs did not finish; resume with: again\n"),
])
def test_the_shell_turns_errors_and_interrupts_into_a_line_and_a_status(capsys, error, code,
                                                                        err):
    assert run_command(build_parser, raising(error), []) == code
    assert capsys.readouterr().err == err


def test_a_command_line_error_reads_as_argparses_own(capsys):
    with pytest.raises(SystemExit) as info:
        run_command(build_parser, raising(CommandLineError("--a cannot go with --b")), [])
    assert info.value.code == 2
    assert capsys.readouterr().err == "python -m demo: error: --a cannot go with --b (see --help)\n"


def test_the_body_gets_the_parsed_flags_and_its_status_is_returned():
    assert run_command(build_parser, lambda args: args.top, ["--top", "7"]) == 7


def test_train_interrupted_before_its_config_says_so_and_after_how_to_resume(
        tmp_path, capsys, monkeypatch):
    from baseres import train

    def interrupt(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(train, "config_from_args", interrupt)
    assert train.main(["--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err == "\ninterrupted\n"
    monkeypatch.undo()
    monkeypatch.setattr(train, "train_run", interrupt)
    assert train.main(["--out", str(tmp_path)]) == 130
    assert capsys.readouterr().err == (
        f"\ninterrupted; continue with: python -m baseres.train --out {tmp_path} --resume\n")


@pytest.mark.parametrize("path", ["/runs/a b", "/runs/it's", "/runs/$HOME;x", "/runs/plain"])
def test_a_printed_command_pastes_each_path_as_one_word(path):
    line = command_line("python -m tune.run --resume", path)
    assert shlex.split(line) == ["python", "-m", "tune.run", "--resume", path]
    assert ("'" in line) == (path != "/runs/plain")  # quoted only where the shell would split
