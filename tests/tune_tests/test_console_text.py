"""make run's console fits 120 columns: prose wrapped at word boundaries, a shell command never
split, tables aligned and cut to the columns that fit with a line naming the rest; summary.md
keeps the full text."""

import re

import pytest
from helpers import copy_experiment

from tune.console_text import WIDTH, console_text
from tune.summary import main as summary_main

RULE = re.compile(r"-+(?:  -+)*")  # the line under a console table's header
CONFIRM = "python -m tune.confirm /tmp/results/generalization-20261206-035905 --seeds 3,"


def md_cells(line: str) -> list[str]:
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def md_table(header: list[str], rows: list[list[str]]) -> str:
    return "\n".join(["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
                      *("| " + " | ".join(row) + " |" for row in rows)])


def read_table(block: list[str]) -> tuple[list[str], list[list[str]], str]:
    """A console table read back by the columns its rule line spans: titles, rows, and the
    note after it."""
    (rule,) = [n for n, line in enumerate(block) if RULE.fullmatch(line)]
    spans = [m.span() for m in re.finditer("-+", block[rule])]
    titles = [" ".join(line[a:b].strip() for line in block[:rule]).split() for a, b in spans]
    after = block[rule + 1:]
    body = after[:next((n for n, line in enumerate(after) if line.startswith("(")), len(after))]
    note = " ".join(after[len(body):])
    return ([" ".join(words) for words in titles],
            [[line[a:b].strip() for a, b in spans] for line in body], note)


def check_console(markdown: str, console: str) -> None:
    """Every console line fits; each paragraph of prose has the markdown's words in order
    (only the spaces differ); each table keeps its leading columns' titles (a title may
    break after an underscore) and cells, and names the columns left out."""
    assert max(len(line) for line in console.splitlines()) <= WIDTH, console
    paragraphs = [p for p in re.split(r"\n\s*\n", markdown) if p.strip()]
    shown = [p for p in re.split(r"\n\s*\n", console) if p.strip()]
    assert len(shown) == len(paragraphs)
    for text, seen in zip(paragraphs, shown):
        if not text.lstrip().startswith("|"):
            assert seen.split() == text.split(), seen
            continue
        header, *rows = [md_cells(line) for line in text.splitlines()]
        del rows[0]  # the separator
        titles, cells, note = read_table(seen.splitlines())
        kept = len(titles)
        assert [t.replace(" ", "") for t in titles] == [h.replace(" ", "") for h in header[:kept]]
        assert cells == [row[:kept] for row in rows]
        if kept < len(header):
            assert note.startswith(f"({len(header) - kept} column") and \
                "summary.md has the full table" in note
            assert all(" ".join(title.split()) in note for title in header[kept:]), note
        else:
            assert not note


def test_a_table_wider_than_the_console_keeps_the_columns_that_fit_and_names_the_rest():
    header = ["trial", *(f"metric_number_{n} at its best epoch" for n in range(12))]
    rows = [[f"trial-{r}", *(f"{0.1 * r + n:.4f} [{n:.4f}, {n + 1:.4f}]" for n in range(12))]
            for r in range(4)]
    markdown = md_table(header, rows)
    assert len(markdown.splitlines()[0]) > WIDTH
    console = console_text(markdown)
    check_console(markdown, console)
    titles, cells, note = read_table(console.splitlines())
    assert 1 < len(titles) < len(header)
    assert "metric_number_11 at its best epoch" in note


def test_a_narrow_table_is_aligned_and_whole():
    markdown = md_table(["arm", "seeds", "place gap (m)"],
                        [["base_channel_divisor 1", "3", "+0.222 [+0.078, +0.366]"],
                         ["control", "12", ""]])
    console = console_text(markdown)
    check_console(markdown, console)
    assert console.splitlines() == [
        "arm                     seeds  place gap (m)",
        "----------------------  -----  -----------------------",
        "base_channel_divisor 1      3  +0.222 [+0.078, +0.366]",
        "control                    12"]  # numbers to the right


@pytest.mark.parametrize("command", [
    CONFIRM, "python -m tune.run --resume '/tmp/my results/generalization'",
    "tensorboard --logdir /tmp/results/generalization-20261206-035905",
    ".venv/bin/python -m tune.evaluate results/generalization --split test --top 2."])
@pytest.mark.parametrize("width", range(60, 200, 9))
def test_a_command_is_never_split(command, width):
    line = (f"For a half-width of 0.020 m the components call for 6 seeds in all: {command} "
            "about 5 min here, at the question's pace.")
    lines = console_text(line, width).splitlines()
    assert " ".join(lines).split() == line.split()  # nothing lost, in order
    (holding,) = [text for text in lines if "-m " in text or "--logdir" in text]
    assert command in holding
    if len(line) > width:
        assert all(len(text) <= width for text in lines if text != command)
        assert holding == command or len(holding) <= width  # moved whole to a line of its own


def test_a_list_item_wraps_under_its_text():
    item = "  - parameter importance (Optuna, PED-ANOVA): " + ", ".join(
        f"lambda_parameter_{n} 0.{n}0" for n in range(12))
    lines = console_text(item, 80).splitlines()
    assert len(lines) > 2 and lines[0].startswith("  - parameter")
    assert all(line.startswith("    ") and line[4] != " " for line in lines[1:])
    assert " ".join(lines).split() == item.split()


@pytest.mark.parametrize("fixture", ["smoke_experiment", "question_experiment"])
def test_the_printed_summary_fits_the_console_and_loses_no_prose(request, tmp_path, capsys,
                                                                 fixture):
    experiment = copy_experiment(request.getfixturevalue(fixture), tmp_path)
    capsys.readouterr()  # the search's own lines, where this test ran it
    assert summary_main([str(experiment)]) == 0
    printed = capsys.readouterr().out
    markdown = (experiment / "summary.md").read_text()
    assert max(len(line) for line in markdown.splitlines()) > WIDTH  # the file keeps it all
    text, written = printed.rstrip("\n").rsplit("\n\n", 1)
    check_console(markdown, text)
    assert "summary.md has the full table" in text  # the trial table, cut
    assert written.startswith(f"written: {experiment / 'summary.md'}")
    assert max(len(line) for line in written.splitlines()) <= WIDTH
