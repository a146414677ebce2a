"""`python -m bench.gpu` on a machine without CUDA: one line saying so, exit 0."""

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_gpu_bench_skips_cleanly_without_cuda():
    # No visible device, even on a machine that has one.
    env = {**os.environ, "CUDA_VISIBLE_DEVICES": ""}
    proc = subprocess.run([sys.executable, "-m", "bench.gpu"], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.splitlines() == [
        "bench.gpu: skipped, no CUDA device (torch.cuda.is_available() is False)"]
    assert "Traceback" not in proc.stderr
