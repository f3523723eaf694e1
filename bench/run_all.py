"""Run every bench/bench_*.py in turn (each in its own process, so one script's allocations and
threads do not colour the next one's numbers) and stop with the first failure's exit code.

    python3 bench/run_all.py            # all scripts, default sizes
    python3 bench/run_all.py loader tql # only bench_loader.py and bench_tql.py
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main(argv=None) -> int:
    wanted = list(sys.argv[1:] if argv is None else argv)
    scripts = sorted(HERE.glob("bench_*.py"))
    if wanted:
        scripts = [s for s in scripts if s.stem[len("bench_"):] in wanted]
        missing = set(wanted) - {s.stem[len("bench_"):] for s in scripts}
        if missing:
            print(f"no bench script for: {', '.join(sorted(missing))}", file=sys.stderr)
            return 2
    for script in scripts:
        print(f"\n===== {script.name} =====", flush=True)
        rc = subprocess.call([sys.executable, str(script)], cwd=HERE.parent)
        if rc:
            print(f"{script.name} failed with exit code {rc}", file=sys.stderr)
            return rc
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
