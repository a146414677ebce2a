"""tune.run and the Rays of this machine: without --address a Ray of its own, never the one a
ray_current_cluster file names (dead or alive); with --address a real two-node cluster (two
`ray start`), which loses its second node mid-search and still finishes every trial.

Every Ray here runs in a process of its own with a temp dir and HOME of its own, so nothing
reaches the test session's Ray, another test's, or the user's ~/.ray (Ray's auth token)."""

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from helpers import RUN_LIMIT_S, free_port

from tune.experiment import read_rows
from tune.run import prepare_data

pytestmark = pytest.mark.slow  # each test starts Rays of its own

REPO = Path(__file__).resolve().parents[2]
RAY = str(Path(sys.executable).with_name("ray"))
# start_ray(None, ...) as tune.run calls it without --address; prints how long it took and
# the GCS address of the Ray it got
OWN_RAY = ("import time\nfrom tune.cluster import start_ray\nstarted = time.monotonic()\n"
           "start_ray(None, '.', {'cpu': 1})\nimport ray\n"
           "print(time.monotonic() - started, ray.get_runtime_context().gcs_address)\n")


def descendants(pid: int) -> set[int]:
    found, stack = set(), [pid]
    while stack:
        for children in Path(f"/proc/{stack.pop()}/task").glob("*/children"):
            try:
                new = {int(child) for child in children.read_text().split()}
            except OSError:  # gone meanwhile
                continue
            stack.extend(new - found)
            found |= new
    return found


def kill_tree(process: subprocess.Popen) -> None:
    for pid in [process.pid, *descendants(process.pid)]:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    process.wait(timeout=30)


@pytest.fixture
def ray_env(tmp_path):
    # A short temp dir: Ray's socket paths must fit in 107 bytes.
    temp = Path(tempfile.mkdtemp(prefix="ray-", dir="/tmp"))
    # RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER: tune.run sets it to 0 (a local Ray on loopback), which
    # would keep these nodes from forming a cluster once an earlier test ran tune.run here
    env = {k: v for k, v in os.environ.items()
           if k not in ("RAY_ADDRESS", "RAY_AUTH_MODE", "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER")}
    env.update(RAY_TMPDIR=str(temp), HOME=str(tmp_path / "home"), RAY_USAGE_STATS_ENABLED="0")
    yield env
    shutil.rmtree(temp, ignore_errors=True)


def own_ray(env: dict[str, str]) -> tuple[float, str]:
    proc = subprocess.run([sys.executable, "-c", OWN_RAY], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0, proc.stderr[-2000:]
    seconds, address = proc.stdout.split()[-2:]
    return float(seconds), address


def test_without_address_a_stale_cluster_file_is_ignored(ray_env):
    dead = f"127.0.0.1:{free_port()}"  # a cluster that ended without `ray stop`
    folder = Path(ray_env["RAY_TMPDIR"], "ray")
    folder.mkdir()
    (folder / "ray_current_cluster").write_text(dead)
    seconds, address = own_ray(ray_env)
    assert address != dead
    assert seconds < 120  # Ray's default retried the dead address for over 6 minutes


def start_node(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen:
    """`ray start --block`: the node's processes stay this process's descendants."""
    ports = [f"--{name}={free_port()}" for name in ("dashboard-agent-listen-port",
                                                    "dashboard-agent-grpc-port",
                                                    "runtime-env-agent-port",
                                                    "metrics-export-port")]
    with log.open("w") as out:
        return subprocess.Popen([RAY, "start", "--block", "--num-cpus", "1",
                                 "--node-ip-address", "127.0.0.1", *ports, *args],
                                env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_for_nodes(env: dict[str, str], address: str, count: int) -> None:
    script = ("import sys, time, ray\nray.init(address=sys.argv[1])\n"
              "while sum(n['Alive'] for n in ray.nodes()) < int(sys.argv[2]):\n"
              "    time.sleep(0.5)\n")
    subprocess.run([sys.executable, "-c", script, address, str(count)], env=env,
                   capture_output=True, timeout=180, check=True)


def raylet(node: subprocess.Popen) -> int:
    (pid,) = [p for p in descendants(node.pid)
              if Path(f"/proc/{p}/comm").read_text().strip() == "raylet"]
    return pid


def test_a_search_survives_losing_a_node_of_a_two_node_cluster(ray_env, tmp_path, smoke_spec):
    port = free_port()
    address = f"127.0.0.1:{port}"
    # Ray 2.60: token authentication, the token in ~/.ray/auth_token on every node, and
    # RAY_AUTH_MODE=token for every process that joins (an explicit address never turns it on)
    subprocess.run([RAY, "get-auth-token", "--generate"], env=ray_env, check=True,
                   capture_output=True, timeout=60)
    env = {**ray_env, "RAY_AUTH_MODE": "token"}
    prepare_data(smoke_spec)  # the data root every node reads: here one machine's, shared
    nodes = {}
    search = None
    try:
        nodes["head"] = start_node(env, tmp_path / "head.log", "--head", f"--port={port}",
                                   "--include-dashboard=false",
                                   f"--ray-client-server-port={free_port()}")
        nodes["second"] = start_node(env, tmp_path / "second.log", f"--address={address}")
        wait_for_nodes(env, address, 2)
        # ray start --head wrote the live cluster's address for Ray's default to join
        assert Path(env["RAY_TMPDIR"], "ray", "ray_current_cluster").is_file()
        assert not own_ray(ray_env)[1].endswith(f":{port}")  # a Ray of its own, not this

        # --verbose: Ray's own status lines, whose last must count every trial TERMINATED
        command = [sys.executable, "-m", "tune.run", "--space", "smoke.yaml", "--address",
                   address, "--name", "cluster", "--verbose"]
        shared = f"file://{tmp_path}/shared"  # storage every node reaches (NFS on machines)
        for storage, environment, message in [
                (str(tmp_path / "local"), env, "needs shared storage"),  # head-local folder
                (shared, ray_env, "RAY_AUTH_MODE=token")]:  # joining without the token
            proc = subprocess.run([*command, "--storage", storage],
                                  cwd=REPO, env=environment, capture_output=True, text=True,
                                  timeout=RUN_LIMIT_S)
            assert proc.returncode == 2, proc.stderr[-3000:]
            assert message in proc.stderr and "Traceback" not in proc.stderr
        experiment = tmp_path / "shared" / "cluster"
        assert not experiment.exists()

        with (tmp_path / "search.log").open("w") as log:
            search = subprocess.Popen([*command, "--storage", shared],
                                      cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
        workers = {name: set() for name in nodes}  # every process seen on each node
        killed = None  # (trial folder, its last epoch with a checkpoint, its process)
        deadline = time.monotonic() + 600
        while search.poll() is None and time.monotonic() < deadline:
            for name, node in nodes.items():
                workers[name] |= descendants(node.pid)
            for trial in [] if killed else experiment.glob("trial_*"):
                rows = read_rows(trial / "result.json")
                if (rows and rows[-1]["pid"] in workers["second"]
                        and rows[-1]["training_iteration"] < smoke_spec.scheduler.max_t
                        and list(trial.glob("checkpoint_*"))):
                    os.kill(raylet(nodes["second"]), signal.SIGKILL)
                    killed = (trial, rows[-1]["training_iteration"], rows[-1]["pid"])
                    break
            time.sleep(0.2)
        assert search.wait(timeout=max(1, deadline - time.monotonic())) == 0, \
            (tmp_path / "search.log").read_text()[-3000:]
    finally:
        for process in [search, *nodes.values()]:
            if process is not None:
                kill_tree(process)

    output = (tmp_path / "search.log").read_text()
    statuses = [line for line in output.splitlines() if line.startswith("Trial status:")]
    assert statuses[-1].strip() == f"Trial status: {smoke_spec.num_samples} TERMINATED"
    trials = {t: read_rows(t / "result.json") for t in experiment.glob("trial_*")}
    assert len(trials) == smoke_spec.num_samples
    ran_on = {name for rows in trials.values() for row in rows
              for name, pids in workers.items() if row["pid"] in pids}
    assert ran_on == {"head", "second"}

    assert killed, "no trial on the second node had checkpointed before the search ended"
    trial, last_epoch, lost_pid = killed
    rows = trials[trial]
    iterations = [row["training_iteration"] for row in rows]
    assert iterations == list(range(1, smoke_spec.scheduler.max_t + 1))  # no epoch twice
    retried = [row for row in rows if row["pid"] != lost_pid]
    assert retried and all(row["pid"] in workers["head"] for row in retried)
    assert retried[0]["training_iteration"] > last_epoch  # from its checkpoint, not epoch 1
    epochs = [r["epoch"] for r in read_rows(trial / "metrics.jsonl")]
    assert epochs == iterations


NODE_2CPU = {"Alive": True, "Resources": {"CPU": 2.0, "memory": 8e9}}
NODE_GPU = {"Alive": True, "Resources": {"CPU": 8.0, "GPU": 1.0}}


@pytest.mark.parametrize("nodes, resources, local, outcome", [
    ([NODE_2CPU], {"cpu": 2, "gpu": 0}, True, "fits"),
    ([NODE_2CPU, NODE_GPU], {"cpu": 4, "gpu": 0.5}, True, "fits"),
    ([NODE_2CPU], {"cpu": 3, "gpu": 0}, True, "refused"),
    ([NODE_2CPU], {"cpu": 1, "gpu": 0.5}, True, "refused"),
    ([NODE_2CPU, {**NODE_GPU, "Alive": False}], {"cpu": 1, "gpu": 1}, True, "refused"),
    # CPUs on one node and the GPU on another do not make one trial's place
    ([NODE_2CPU, NODE_GPU], {"cpu": 10, "gpu": 1}, True, "refused"),
    ([NODE_2CPU], {"cpu": 1, "gpu": 1}, False, "warned"),  # a cluster may add a GPU node
])
def test_a_trial_must_fit_on_one_node(monkeypatch, capsys, nodes, resources, local, outcome):
    import ray

    from tune.cluster import alive_nodes, check_a_node_fits
    from tune.errors import UsageError

    monkeypatch.setattr(ray, "nodes", lambda: nodes)
    if outcome == "refused":
        with pytest.raises(UsageError) as err:
            check_a_node_fits(resources, local, alive_nodes())
        assert err.value.key == "resources_per_trial" and err.value.value == resources
        assert "no node of this machine has that" in str(err.value)
    else:
        check_a_node_fits(resources, local, alive_nodes())
    warning = capsys.readouterr().err
    assert ("trials wait until such a node joins" in warning) == (outcome == "warned")
