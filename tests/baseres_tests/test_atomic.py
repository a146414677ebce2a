import os
import stat

import pytest
import torch

from baseres.atomic import write_atomic, write_bytes_atomic, write_text_atomic


class Cut(Exception):
    """A writer that dies mid-write."""


@pytest.mark.parametrize("crash", [Cut, KeyboardInterrupt, OSError])
def test_a_writer_that_fails_leaves_the_old_file_and_no_temporary_one(tmp_path, crash):
    path = tmp_path / "report.json"
    path.write_text("old, whole")

    def half_then_crash(tmp):
        tmp.write_text("new, half of it")
        raise crash("cut")

    with pytest.raises(crash):
        write_atomic(path, half_then_crash)
    assert path.read_text() == "old, whole"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report.json"]


def test_a_reader_sees_the_old_file_until_the_new_one_is_whole(tmp_path):
    path = tmp_path / "metrics.jsonl"
    path.write_text("old\n")
    seen = []

    def slowly(tmp):
        with tmp.open("w") as handle:
            for line in ("a\n", "b\n", "c\n"):
                handle.write(line)
                handle.flush()
                seen.append(path.read_text())  # a reader in the middle of the write
    write_atomic(path, slowly)
    assert seen == ["old\n"] * 3
    assert path.read_text() == "a\nb\nc\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["metrics.jsonl"]


def test_a_new_file_is_written_and_gets_a_plain_writes_mode(tmp_path):
    plain = tmp_path / "plain.txt"
    plain.write_text("x")
    write_text_atomic(tmp_path / "a.txt", "x")
    write_bytes_atomic(tmp_path / "b.bin", b"\x00\x01")
    assert (tmp_path / "a.txt").read_text() == "x"
    assert (tmp_path / "b.bin").read_bytes() == b"\x00\x01"
    mode = stat.S_IMODE(plain.stat().st_mode)
    assert {stat.S_IMODE(os.stat(tmp_path / n).st_mode) for n in ("a.txt", "b.bin")} == {mode}


def test_newline_is_kept_as_given(tmp_path):
    write_text_atomic(tmp_path / "progress.csv", "a,b\r\n1,2\r\n", newline="")
    assert (tmp_path / "progress.csv").read_bytes() == b"a,b\r\n1,2\r\n"


def test_torch_save_through_the_callback(tmp_path):
    path = tmp_path / "model.pt"
    write_atomic(path, lambda tmp: torch.save({"w": torch.ones(2)}, tmp))
    assert torch.equal(torch.load(path, weights_only=True)["w"], torch.ones(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.pt"]
