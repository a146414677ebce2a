"""tune.experiment: how a trial ended, read from its rows, Ray's status and the journal; and
a last line a kill cut short, dropped before anything is appended."""

import math
from pathlib import Path

import pytest
from helpers import fake_trial

from tune.errors import UsageError
from tune.experiment import Location, TrialEnd, new_location, trial_end
from tune.experiment.journal import cut_partial_line
from tune.experiment.location import local_path


@pytest.mark.parametrize("trial, reason", [
    (fake_trial(rows=[{"val_rmse": 2.0}] * 3), "completed"),
    (fake_trial(rows=[{"val_rmse": 2.0}]), "ASHA stop"),
    (fake_trial(status="RUNNING", rows=[{"val_rmse": 2.0}]), "running"),
    (fake_trial(status="ERROR", error="OSError: disk full", rows=[{"val_rmse": 2.0}]),
     "error: OSError: disk full"),
    (fake_trial(rows=[{"val_rmse": 2.0}, {"val_rmse": math.nan, "diverged": 1.0,
                                          "stop_reason": "diverged: loss became nan"}]),
     "diverged: loss became nan"),
])
def test_how_a_trial_ended_in_words(trial, reason):
    assert trial.how_it_ended(max_t=3, asha=True)[1] == reason


@pytest.mark.parametrize("told, reason", [
    ("completed", "completed"),  # its later rows cut from result.json by a kill
    ("early stop", "ASHA stop"),
    ("error", "error: see error.txt"),
    ("", "unknown"),  # no journal record, no Ray state: not guessed
])
def test_the_journal_says_why_a_trial_ended(told, reason):
    trial = fake_trial(status="unknown", rows=[{"val_rmse": 2.0}])
    told = TrialEnd(told) if told else None
    assert trial.how_it_ended(max_t=3, asha=True, told=told)[1] == reason


@pytest.mark.parametrize("text, kept", [
    (b'{"a": 1}\n{"b": 2}\n{"c"', b'{"a": 1}\n{"b": 2}\n'),  # cut mid-record by a kill
    (b'{"a": 1}\n', b'{"a": 1}\n'),
    (b'{"a"', b""),
    (b"", b""),
])
def test_a_line_cut_by_a_kill_is_dropped_before_anything_is_appended(tmp_path, text, kept):
    path = tmp_path / "result.json"
    path.write_bytes(text)
    cut_partial_line(path)
    assert path.read_bytes() == kept


@pytest.mark.parametrize("trial, kind", [
    (fake_trial(rows=[{"val_rmse": 2.0}] * 3), TrialEnd.COMPLETED),
    (fake_trial(rows=[{"val_rmse": 2.0}]), TrialEnd.EARLY),
    (fake_trial(status="PENDING", rows=[]), TrialEnd.PENDING),
    (fake_trial(status="ERROR", rows=[{"val_rmse": 2.0}]), TrialEnd.ERROR),
    (fake_trial(rows=[{"val_rmse": math.nan, "diverged": 1.0}]), TrialEnd.DIVERGED),
])
def test_the_end_is_a_kind_reports_count_without_reading_its_words(trial, kind):
    end, text = trial.how_it_ended(max_t=3, asha=False)
    assert end is kind
    assert end.problem == (kind in (TrialEnd.ERROR, TrialEnd.DIVERGED))
    if kind is TrialEnd.EARLY:
        assert text == "stopped early"  # no scheduler called ASHA without one


# what the searcher (measured, error), the summary (told, status) and the console each know
@pytest.mark.parametrize("known, end", [
    ({"epochs": 3}, TrialEnd.COMPLETED),
    ({"epochs": 1}, TrialEnd.EARLY),
    ({"epochs": 1, "diverged": True}, TrialEnd.DIVERGED),
    ({"epochs": 3, "measured": False}, TrialEnd.DIVERGED),  # ended without a finite value
    ({"epochs": 0, "measured": False, "error": True}, TrialEnd.ERROR),  # Ray: no result
    ({"epochs": 1, "told": TrialEnd.COMPLETED, "status": "RUNNING"}, TrialEnd.COMPLETED),
    ({"epochs": 1, "told": TrialEnd.ERROR}, TrialEnd.ERROR),
    ({"epochs": 1, "status": "PAUSED"}, TrialEnd.PAUSED),
    ({"epochs": 1, "status": "unknown"}, TrialEnd.UNKNOWN),
])
def test_one_rule_decides_a_trials_end_from_what_its_reader_knows(known, end):
    from tune.experiment.ends import RayStatus

    if "status" in known:
        known["status"] = RayStatus.of(known["status"])
    assert trial_end(max_t=3, **known) is end


@pytest.mark.parametrize("end, journal, summary, console", [
    (TrialEnd.COMPLETED, "completed", "completed", "completed"),
    (TrialEnd.EARLY, "early stop", "ASHA stop", "stopped early at epoch 2 (ASHA)"),
    (TrialEnd.DIVERGED, "diverged: loss nan", "diverged: loss nan", "diverged at epoch 2"),
    (TrialEnd.ERROR, "error", "error: see error.txt", "error after its retries; see t/error.txt"),
    (TrialEnd.LOST, "lost: the driver stopped before Ray saved this trial", "lost", "lost"),
])
def test_each_reader_says_an_end_in_the_words_it_always_said(end, journal, summary, console):
    reason = "diverged: loss nan" if end is TrialEnd.DIVERGED else ""
    assert end.journal_text(reason) == journal
    assert end.summary_text(reason) == summary
    assert end.console_text(2, "t") == console


@pytest.mark.parametrize("experiment, storage, name, local, state", [
    ("/runs/smoke/", "/runs", "smoke", "/runs/smoke", "/runs/smoke"),
    ("file:///mnt/nfs/runs/smoke", "file:///mnt/nfs/runs", "smoke", "/mnt/nfs/runs/smoke",
     "/mnt/nfs/runs/smoke"),
    # remote storage: the study and the journal stay on this machine, under results/<name>
    ("s3://bucket/runs/smoke", "s3://bucket/runs", "smoke", None, "results/smoke"),
    # a file:// URI's escapes decoded as Ray's filesystem (pyarrow) decodes them: one folder
    ("file:///mnt/a%20b/caf%C3%A9%25/smoke", "file:///mnt/a%20b/caf%C3%A9%25", "smoke",
     "/mnt/a b/café%/smoke", "/mnt/a b/café%/smoke"),
    # a plain path is a path: a space, or what reads as an escape, stays as written
    ("/mnt/a b%20c/smoke", "/mnt/a b%20c", "smoke", "/mnt/a b%20c/smoke", "/mnt/a b%20c/smoke"),
])
def test_a_location_knows_its_storage_name_and_local_folders(tmp_path, monkeypatch, experiment,
                                                             storage, name, local, state):
    monkeypatch.chdir(tmp_path)
    location = Location.of(experiment)
    assert (location.storage, location.name) == (storage, name)
    assert location.uri == f"{storage}/{name}" == str(location)
    assert location.local == (None if local is None else Path(local))
    assert location.state_folder == (tmp_path / state if state.startswith("results") else
                                     Path(state))
    assert location.child("question").uri == f"{storage}/{name}/question"


@pytest.mark.parametrize("uri", ["file:///mnt/a b/smoke", "file:///mnt/café/smoke",
                                 "file://otherhost/mnt/smoke"])
def test_a_file_uri_rays_filesystem_cannot_parse_is_refused_in_one_line(uri):
    from pyarrow.fs import FileSystem

    with pytest.raises(ValueError):  # what Ray would fail on, after the search had started
        FileSystem.from_uri(uri)
    with pytest.raises(UsageError) as info:
        local_path(uri)
    message = str(info.value)
    assert message.startswith(f"{uri}: Ray's filesystem (pyarrow) cannot read this file:// URI")
    assert message.endswith("percent-encode its path (a space as %20) or give a plain path")
    assert "\n" not in message


def test_a_file_uri_ray_cannot_parse_is_refused_by_the_cli_before_ray(tmp_path, capsys,
                                                                       monkeypatch):
    from tune.run import main

    def no_ray(*args):
        raise AssertionError("Ray must not start for a storage it cannot parse")

    monkeypatch.setattr("tune.run.start_ray", no_ray)
    assert main(["--space", "smoke.yaml", "--storage", f"file://{tmp_path}/a b"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "percent-encode" in err and "Traceback" not in err
    assert list(tmp_path.iterdir()) == []  # nothing written


def test_a_new_experiment_in_a_folder_with_a_space_is_one_folder(tmp_path):
    plain = new_location(str(tmp_path / "a b"), "smoke", chosen=True)
    assert plain.local == tmp_path / "a b" / "smoke" and plain.local.is_dir()
    encoded = new_location(f"file://{tmp_path}/a%20b", "other", chosen=True)
    assert encoded.local == tmp_path / "a b" / "other" and encoded.local.is_dir()


def test_a_relative_experiment_path_is_made_absolute(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert Location.of("results/smoke") == Location(str(tmp_path / "results"), "smoke")


def test_the_root_folder_is_a_location_without_a_name():
    assert Location.of("/") == Location("/", "") and Location.of("/").uri == "/"
