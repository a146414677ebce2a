"""Text for a terminal, at most WIDTH columns a line: the markdown of summary.md and of
tune.evaluate's table, and the commands' own lines, as make run prints them. Prose is wrapped
at word boundaries (a list item's continuation lines under its text); a shell command is never
split: one that would be goes whole on a line of its own. A table is aligned in columns (its
headers wrapped over a few lines, numbers to the right) and cut to its leading columns that
fit, with a line naming the columns left out. summary.md and the files keep the full text."""

from __future__ import annotations

import re

WIDTH = 120
GAP = "  "  # between a table's columns

SEPARATOR = re.compile(r"\|(?:\s*:?-+:?\s*\|)+")  # a markdown table's second line
LIST_MARKER = re.compile(r"(?:[-*+]|\d+[.)]) ")
CLOSING = (",", ";", ".", ")")  # a sentence's punctuation after a command
UNDERSCORE_BREAK = re.compile(r"(?<=_)(?=[^_])")  # a title's word may break there
NUMBER = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?")


def say(text: str) -> None:
    """Print `text` as console_text renders it, at once (a pipe would hold it back)."""
    print(console_text(text), flush=True)


def console_text(markdown: str, width: int = WIDTH) -> str:
    """`markdown` with every line at most `width` columns, but for a word (a path) or a shell
    command longer than that, which stays whole."""
    lines = markdown.split("\n")
    out: list[str] = []
    start = 0
    while start < len(lines):
        end = start
        while end < len(lines) and lines[end].lstrip().startswith("|"):
            end += 1
        if end - start >= 2 and SEPARATOR.fullmatch(lines[start + 1].strip()):
            out += table_lines(lines[start:end], width)
            start = end
        else:
            out += wrap(lines[start], width)
            start += 1
    return "\n".join(out)


def _atoms(words: list[str]) -> list[tuple[str, bool]]:
    """The words of a line, each shell command among them joined into one: (text, whether it
    is a command)."""
    atoms: list[tuple[str, bool]] = []
    i = 0
    while i < len(words):
        end = _command_end(words, i)
        atoms.append((" ".join(words[i:end]), end > i + 1))
        i = end
    return atoms


def _command_end(words: list[str], i: int) -> int:
    """Where the command that starts at words[i] ends (i + 1: none starts there). A command is
    `python -m MODULE` or `tensorboard --FLAG`, then its arguments: options, their values,
    paths and quoted words, up to the first one a sentence's punctuation closes."""
    word, after = words[i], words[i + 1:i + 2]
    if (word.startswith("python") or word.endswith("/python")) and after == ["-m"]:
        end = min(i + 3, len(words))
    elif word == "tensorboard" and after and after[0].startswith("--"):
        end = i + 1
    else:
        return i + 1
    if words[end - 1].endswith(CLOSING):
        return end
    quoted = False  # inside a quoted argument (shlex.quote's, a path with a space)
    while end < len(words):
        arg = words[end]
        if not (quoted or arg.startswith(("-", "'", '"', "~", ".")) or "/" in arg
                or words[end - 1].startswith("-")):
            break
        quoted ^= arg.count("'") % 2 == 1
        end += 1
        if not quoted and arg.endswith(CLOSING):
            break
    return end


def wrap(line: str, width: int = WIDTH) -> list[str]:
    """One line of prose in lines of at most `width` columns, broken at spaces: a list item's
    continuation indented under its text, a command that would be split on a line of its
    own."""
    if len(line) <= width:
        return [line]
    body = line.lstrip(" ")
    indent = line[:len(line) - len(body)]
    marker = LIST_MARKER.match(body)
    hang = indent + " " * (len(marker.group()) if marker else 0)
    out: list[str] = []
    prefix, current, alone = indent, "", False
    for text, command in _atoms(body.split()):
        joined = f"{current} {text}" if current else text
        if not alone and len(prefix) + len(joined) <= width:
            current = joined
            continue
        if current:
            out.append(prefix + current)
            prefix = hang
        current, alone = text, command  # a command moved to a new line keeps it to itself
    out.append(prefix + current)
    return out


def _cells(line: str) -> list[str]:
    # a cell's own "|" is written as a character reference (tune.report.markdown.md_text)
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def _pieces(title: str) -> list[str]:
    """A title's pieces no line of its header breaks: its words, cut after underscores."""
    return [piece for word in title.split() for piece in UNDERSCORE_BREAK.split(word)]


def _header_lines(title: str, size: int) -> list[str]:
    """A column's title in lines of at most `size` (but for a longer word), broken at spaces
    and, in a word too long, after an underscore (base_channel_ / divisor)."""
    lines: list[str] = []
    for word in title.split():
        pieces = [word] if len(word) <= size else UNDERSCORE_BREAK.split(word)
        for n, piece in enumerate(pieces):
            glue = "" if n else " "
            if lines and len(lines[-1]) + len(glue) + len(piece) <= size:
                lines[-1] += glue + piece
            else:
                lines.append(piece)
    return lines or [""]


def _widen(titles: list[str], sizes: list[int], room: int) -> None:
    """Spend `room` spare columns on the titles that take the most lines, while that takes
    a line off the header."""
    while True:
        depths = [len(_header_lines(title, size)) for title, size in zip(titles, sizes)]
        depth = max(depths)
        deepest = [c for c, d in enumerate(depths) if d == depth]
        wider = {c: next((s for s in range(sizes[c] + 1, len(titles[c]) + 1)
                          if len(_header_lines(titles[c], s)) < depth), None)
                 for c in deepest}
        if depth == 1 or None in wider.values():
            return
        cost = sum(size - sizes[c] for c, size in wider.items())
        if cost > room:
            return
        room -= cost
        for c, size in wider.items():
            sizes[c] = size


def table_lines(lines: list[str], width: int = WIDTH) -> list[str]:
    """A markdown table (header, separator, rows) aligned in columns, each as narrow as its
    widest cell and its title's longest piece allow (titles wrap), widened where that saves
    the header a line; numbers to the right; the leading columns that fit `width`, then a
    line naming the ones left out."""
    header = _cells(lines[0])
    rows = [(_cells(line) + [""] * len(header))[:len(header)] for line in lines[2:]]
    sizes = [max([len(row[c]) for row in rows] + [len(piece) for piece in _pieces(header[c])]
                 + [1]) for c in range(len(header))]
    kept, used = 1, sizes[0]
    while kept < len(header) and used + len(GAP) + sizes[kept] <= width:
        used += len(GAP) + sizes[kept]
        kept += 1
    sizes = sizes[:kept]
    _widen(header[:kept], sizes, width - used)
    numeric = [bool(cells) and all(NUMBER.fullmatch(cell) for cell in cells)
               for cells in ([row[c] for row in rows if row[c]] for c in range(kept))]

    def line(cells: list[str]) -> str:
        return GAP.join(cell.rjust(sizes[c]) if numeric[c] else cell.ljust(sizes[c])
                        for c, cell in enumerate(cells)).rstrip()

    titles = [_header_lines(header[c], sizes[c]) for c in range(kept)]
    depth = max(len(title) for title in titles)
    out = [line([title[n] if n < len(title) else "" for title in titles])
           for n in range(depth)]
    out.append(GAP.join("-" * size for size in sizes))
    out += [line(row[:kept]) for row in rows]
    if kept < len(header):
        left_out = len(header) - kept
        out += wrap(f"({left_out} column{'s' if left_out > 1 else ''} left out here, summary.md "
                    f"has the full table: {'; '.join(header[kept:])})", width)
    return out
