"""Where a search's Ray runs and where it writes: a local Ray bound to localhost, or a
cluster the user runs, with storage every node can reach."""

from __future__ import annotations

import logging
import os
import signal
import sys
from collections.abc import Iterator
from contextlib import contextmanager

from tune.errors import UsageError
from tune.experiment import is_uri
from tune.private_api import token_auth_notice_logger

logger = logging.getLogger(__name__)
_own_ray = False  # whether start_ray started this process's Ray (not a test's, a notebook's)


def keep_ray_on_localhost() -> None:
    """Make a Ray started by this process listen on 127.0.0.1 only.

    Ray rewrites a 127.0.0.1 node address to the machine's routable one, except where clusters
    are switched off (its macOS/Windows default), when it uses the loopback address for every
    server it starts. Read when ray is first imported, so call this before that.
    """
    os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")


def check_trial_folders() -> None:
    """Each trial writes its own files into Ray's trial working directory, which Ray makes its
    working directory unless RAY_CHDIR_TO_TRIAL_DIR=0 (tune.trainable.trial_folder)."""
    if os.environ.get("RAY_CHDIR_TO_TRIAL_DIR") == "0":
        raise UsageError("RAY_CHDIR_TO_TRIAL_DIR=0 leaves trials without their own folders, "
                         "but each trial writes its config, metrics and TensorBoard run there: "
                         "unset it")


def drop_ray_tensorboard_logger() -> None:
    """Switch Ray's automatic loggers off (read by Tuner.fit, so also on a resume): each
    trial's TensorBoard hook writes grouped scalars and HParams, and Ray's TBX logger would
    copy every scalar under ray/tune/. The loggers that are kept are named in RunConfig
    (tune.trainable.run_config)."""
    os.environ["TUNE_DISABLE_AUTO_CALLBACK_LOGGERS"] = "1"


class HideRayResumeHint(logging.Filter):
    """Ray's interrupt message tells to call Tuner.restore(...); tune.run and tune.confirm
    print their own resume command."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "Tuner.restore(" not in record.getMessage()


def hide_ray_resume_hint() -> None:
    log = logging.getLogger("ray.tune.tune")
    if not any(isinstance(f, HideRayResumeHint) for f in log.filters):
        log.addFilter(HideRayResumeHint())


class HideTokenAuthNotice(logging.Filter):
    """Ray's notice that token authentication is on (the default it keeps): a line at every
    start of a local Ray. Its warning that authentication is off is kept."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith("Token authentication is enabled for this")


def quiet_ray_console(verbose: bool) -> None:
    """Without --verbose, Ray's own console output off: Ray Tune's newer reporter prints a
    "Configuration for experiment" box and a "View detailed results here" line for every
    Tuner whatever RunConfig's verbosity (its older one prints nothing at verbosity 0), and
    Ray's start says that token authentication is on. The commands say each trial's end
    themselves (tune.console)."""
    # set either way: a process that runs several commands (a notebook, the tests) keeps
    # the environment of the one before
    os.environ["RAY_AIR_NEW_OUTPUT"] = "1" if verbose else "0"  # 1: Ray's default
    if not (sys.stdout.isatty() and sys.stderr.isatty()):
        # with --verbose, the forwarded lines of Ray's workers: their prefix uncoloured where
        # the console is a file or a pipe (Ray colours it whatever the console)
        os.environ["RAY_COLOR_PREFIX"] = "0"
    if verbose:
        return
    notice = token_auth_notice_logger()
    if not any(isinstance(f, HideTokenAuthNotice) for f in notice.filters):
        notice.addFilter(HideTokenAuthNotice())


def prepare_ray(address: str | None, verbose: bool) -> None:
    """The environment and logging a command that runs Ray Tune sets before Ray is imported
    (tune.run, tune.confirm); `address` None: a local Ray."""
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Ray warns at every forced state snapshot (each checkpoint past num_to_keep): noise here
    os.environ.setdefault("TUNE_WARN_EXCESSIVE_EXPERIMENT_CHECKPOINT_SYNC_THRESHOLD_S", "0")
    drop_ray_tensorboard_logger()
    quiet_ray_console(verbose)
    if address is None:
        keep_ray_on_localhost()  # nothing on the network can reach a local search's Ray
    hide_ray_resume_hint()


def start_ray(address: str | None, storage: str, resources: dict[str, float],
              verbose: bool = False) -> None:
    """Ray for a search whose trials each need `resources` ({"cpu": ..., "gpu": ...});
    `verbose`: what its workers print is forwarded to this console (see _init_ray)."""
    import ray

    global _own_ray
    if not ray.is_initialized():  # tests and notebooks may hold a Ray already
        _init_ray(address, verbose)
        _own_ray = True
    nodes = alive_nodes()
    try:
        if _own_ray:
            check_shared_storage(storage, len(nodes))
        check_a_node_fits(resources, local=address is None, nodes=nodes)
    except UsageError:
        stop_ray()
        raise


def stop_ray() -> None:
    """Shut down the Ray start_ray started (one a test or notebook holds stays), before the
    command's last line. Workers told to stop print Ray's own tracebacks (a SIGTERM handler's
    ``SystemExit: 1``), which the driver forwards to its console until it disconnects: at exit
    that came after the command's resume line. ray.shutdown stops the forwarding first."""
    import ray

    global _own_ray
    if _own_ray:
        ray.shutdown()
        _own_ray = False


@contextmanager
def sigterm_as_ctrl_c() -> Iterator[None]:
    """SIGTERM (`kill`, a job scheduler's stop) taken as Ctrl-C while Ray Tune runs the block:
    Tune stops its trials, saves its state and returns, and the command says how to resume.
    Left to Ray, SIGTERM aborted the driver in its C++ handler (exit 134, nothing said)."""
    previous = signal.signal(signal.SIGTERM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)


def alive_nodes() -> list[dict[str, float]]:
    """The resources of each node of the Ray this process joined that is alive."""
    import ray

    return [n["Resources"] for n in ray.nodes() if n.get("Alive")]


def check_shared_storage(storage: str, node_count: int) -> None:
    if node_count > 1 and not is_uri(storage):
        raise UsageError(f"--storage {storage}: a cluster of {node_count} nodes needs shared "
                         "storage (a URI such as s3://bucket/runs, or an NFS path given as a URI "
                         "like file:///mnt/nfs/runs); a head-local folder fails when a worker "
                         "checkpoints")


def check_a_node_fits(resources: dict[str, float], local: bool,
                      nodes: list[dict[str, float]]) -> None:
    """A trial runs on one node: if none has its CPUs and GPUs, Ray keeps every trial PENDING
    for ever, with only its autoscaler's warnings. A local Ray never grows, so that is
    refused; a cluster may still add such a node (autoscaling), so that is said and waited."""
    needs = {"CPU": resources["cpu"], "GPU": resources.get("gpu", 0)}
    if any(all(node.get(kind, 0) >= amount for kind, amount in needs.items())
           for node in nodes):
        return
    largest = ", ".join(
        f"{kind.lower()}={max((node.get(kind, 0) for node in nodes), default=0):g}"
        for kind in needs)
    problem = (f"resources_per_trial: a trial needs cpu={needs['CPU']:g}, gpu={needs['GPU']:g} "
               f"on one node, but no node of {'this machine' if local else 'the cluster'} "
               f"has that (the most any has: {largest})")
    if local:
        raise UsageError(f"{problem}, so every trial would wait for ever; lower them in the "
                         "study or with --cpus-per-trial / --gpus-per-trial",
                         key="resources_per_trial", rule="a node has a trial's resources",
                         value=resources)
    logger.warning("tune: %s: trials wait until such a node joins", problem)


def _init_ray(address: str | None, verbose: bool) -> None:
    """log_to_driver only with --verbose: Ray forwards each line a worker prints (a restored
    trial's "Restored on ... from checkpoint", a stopped worker's traceback) to this console,
    prefixed "(fold_trial pid=...)", coloured, and late, up to the driver's exit, after the
    summary. The commands say each trial's end themselves (tune.console); a trial's error is
    in its error.txt, every worker's log in Ray's session folder."""
    import ray

    if address is None:
        # "local": a Ray of its own, always. Left unset, Ray would join the cluster its
        # ray_current_cluster file names, live (not local at all) or dead (minutes of
        # retries). No dashboard: a local search needs no web server. Its servers listen on
        # localhost (keep_ray_on_localhost) and Ray 2.60 also guards them with a token.
        ray.init(address="local", include_dashboard=False, configure_logging=False,
                 log_to_driver=verbose)
        return
    try:
        ray.init(address=address, configure_logging=False, log_to_driver=verbose)
    except ConnectionError as err:
        # Ray 2.60 turns token authentication on for a cluster started where a token exists,
        # and a process joining an explicit address never turns it on itself.
        hint = ("" if os.environ.get("RAY_AUTH_MODE") else
                "; a cluster with token authentication also needs RAY_AUTH_MODE=token and its "
                "token (~/.ray/auth_token or RAY_AUTH_TOKEN) here")
        raise UsageError(f"--address {address}: {err}{hint}") from None
