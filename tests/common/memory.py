"""Real peak memory of a piece of code: run it in a fresh interpreter, reset the kernel's high-water
mark of resident memory just before it (writing 5 to /proc/self/clear_refs), and read that mark
(VmHWM) afterwards. Sampling the current RSS after the fact would miss whatever was allocated and
freed in between; this does not.

``peak_growth(setup, work)`` runs ``setup`` (imports, dataset, warm-up), then ``work``; both are
source text sharing one namespace. It returns the resident MiB when ``work`` started, the peak
growth in MiB during it, and whatever ``work`` stored in the dict ``RESULT`` (JSON values). Both
may call ``status(key, pid="self")``: a /proc/<pid>/status value in MiB (e.g. another process's
VmHWM, after writing 5 to its clear_refs).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

_ROOT = str(Path(__file__).resolve().parents[2])

_HARNESS = """
import json, sys
def status(key, pid="self"):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(key + ":"):
                return int(line.split()[1]) / 1024  # kB -> MiB
RESULT = {}
exec(compile(sys.argv[1], "<setup>", "exec"))
with open("/proc/self/clear_refs", "w") as f:
    f.write("5")  # reset VmHWM to the current RSS
_start = status("VmRSS")
exec(compile(sys.argv[2], "<work>", "exec"))
print(json.dumps({"start_mib": _start, "peak_growth_mib": status("VmHWM") - _start, "result": RESULT}))
"""


def can_reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def peak_growth(setup: str, work: str, timeout: float = 300) -> dict:
    if not can_reset_peak():
        pytest.skip("needs Linux /proc/self/clear_refs to reset the peak-RSS mark")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [_ROOT, os.environ.get("PYTHONPATH")])))
    r = subprocess.run([sys.executable, "-c", _HARNESS, textwrap.dedent(setup), textwrap.dedent(work)],
                       capture_output=True, text=True, timeout=timeout, env=env)
    assert r.returncode == 0, r.stderr[-4000:]
    return json.loads(r.stdout.strip().splitlines()[-1])
