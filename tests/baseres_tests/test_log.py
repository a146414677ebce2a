"""baseres.log: library messages on the console of the moment, as the prints they replaced."""

import logging
import sys

import baseres  # noqa: F401  (its import sets the console up)
import tune  # noqa: F401
from baseres.log import ConsoleHandler, show_on_console


def test_a_library_message_is_the_bare_text_on_the_stderr_of_the_moment(capsys):
    for name in ("baseres.data.cache", "tune.cluster"):
        logging.getLogger(name).info("%s: working", name)
        assert capsys.readouterr() == ("", f"{name}: working\n")  # capsys came after the import
    logging.getLogger("baseres.data.cache").debug("not shown")
    assert capsys.readouterr().err == ""


def test_records_still_reach_the_applications_handlers(caplog):
    with caplog.at_level(logging.INFO):
        logging.getLogger("tune.callbacks").error("error: disk full")
    assert [r.getMessage() for r in caplog.records] == ["error: disk full"]


def test_setting_up_twice_keeps_one_handler():
    show_on_console("baseres")
    handlers = [h for h in logging.getLogger("baseres").handlers if isinstance(h, ConsoleHandler)]
    assert len(handlers) == 1 and handlers[0].stream is sys.stderr
