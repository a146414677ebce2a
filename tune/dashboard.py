"""``python -m tune.dashboard EXPERIMENT_DIR``: the experiment's Optuna study in optuna-dashboard.

tune.run keeps the search's Optuna journal (optuna-journal.log) in the experiment folder; this
serves it read from there, so trials, parameter importances and history plots are a browser away.
"""

from __future__ import annotations

import argparse
import socketserver
import sys
from wsgiref.simple_server import WSGIServer, make_server

from baseres.cli import DefaultsHelpFormatter, OneLineParser, bounded_int, run_command
from tune.errors import UsageError
from tune.experiment import JOURNAL_FILE, Experiment, journal_storage


class ThreadingWSGIServer(socketserver.ThreadingMixIn, WSGIServer):
    """Each request in a daemon thread, so the main thread only waits for connections and
    Ctrl+C always lands there. optuna_dashboard.run_server serves in the main thread: a Ctrl+C
    during a request (the page polls every few seconds) is caught by wsgiref's error handler and
    the server goes on serving."""

    daemon_threads = True
    block_on_close = False


def listen(app, host: str, port: int) -> ThreadingWSGIServer:
    try:
        return make_server(host, port, app, server_class=ThreadingWSGIServer)
    except OSError as err:  # the port is taken, or the address is not this machine's
        raise UsageError(f"--host {host} --port {port}: cannot listen there: "
                         f"{err.strerror}") from None


def serve_until_ctrl_c(server: ThreadingWSGIServer) -> None:
    with server:
        try:
            server.serve_forever()
        except KeyboardInterrupt:  # Ctrl+C is how it is stopped: a normal end
            pass


def build_parser() -> argparse.ArgumentParser:
    parser = OneLineParser(
        prog="python -m tune.dashboard",
        description="Serve the Optuna study of a tune.run experiment (its optuna-journal.log) in "
        "optuna-dashboard (pip install optuna-dashboard). Stop it with Ctrl+C.",
        formatter_class=DefaultsHelpFormatter,
    )
    parser.add_argument("experiment", metavar="EXPERIMENT_DIR",
                        help=f"experiment folder of tune.run (holds {JOURNAL_FILE})")
    # Loopback by default: the dashboard can edit the study (notes, trial states) and has no login.
    parser.add_argument("--host", default="127.0.0.1",
                        help="address to listen on (0.0.0.0 exposes it to the network)")
    parser.add_argument("--port", type=bounded_int("port", 1, 65535), default=8080,
                        help="port to listen on")
    return parser


def main(argv: list[str] | None = None) -> int:
    return run_command(build_parser, _main, argv)


def _main(args: argparse.Namespace) -> int:
    try:
        import optuna_dashboard
    except ImportError:
        raise UsageError("optuna-dashboard is not installed; install it with: pip install "
                         "optuna-dashboard") from None
    experiment = Experiment(args.experiment)
    experiment.optuna_study()  # an unreadable journal is one line here, not in the server
    server = listen(optuna_dashboard.wsgi(journal_storage(experiment.folder)), args.host,
                    args.port)
    print(f"optuna-dashboard for {args.experiment}: http://{args.host}:{args.port}/ "
          "(Ctrl+C stops it)", flush=True)
    serve_until_ctrl_c(server)
    return 0


if __name__ == "__main__":
    sys.exit(main())
