"""Run the coverage-guided fuzz targets of tests/fuzz/targets.py with atheris (libFuzzer).

    python -m tests.fuzz.run [--seconds N] [--out DIR] [target ...]     # all targets by default

Each target runs in its own process for N seconds (default $DEEPLAKE_LOADER_FUZZ_SECONDS, else 30)
from a corpus seeded by the target's generated seeds. atheris instruments deeplake_loader's Python
as it is imported; the C kernels add their own edges when they are the clang build of
scripts/sanitize.sh (``make fuzz``, ``make sanitize``: ASan + UBSan + -fsanitize=fuzzer-no-link,
with the merged sanitizer/libFuzzer runtime preloaded). With the normal gcc build only the Python
side guides the mutations. A finding — an exception other than the library's own, a crash, a
sanitizer report, a write outside the output — stops that target with its input saved as
DIR/<target>/crash-<sha1> (DIR: build/fuzz by default); the exit status is 1 when any target found
something.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def child(target: str, libfuzzer_args: list) -> None:
    import atheris

    with atheris.instrument_imports(include=["deeplake_loader"]):
        import deeplake_loader  # noqa: F401
        import deeplake_loader.format.chunk  # noqa: F401
        import deeplake_loader.pipeline.fetch  # noqa: F401
        import deeplake_loader.tql  # noqa: F401
    from tests.fuzz import targets

    targets.prepare()
    _, one = targets.TARGETS[target]
    atheris.Setup([sys.argv[0]] + libfuzzer_args, one)
    atheris.Fuzz()


def run_target(target: str, seconds: int, out_dir: str, env=None) -> tuple:
    """(ok, log tail, crash files) of one target's run."""
    from tests.fuzz import targets

    work = os.path.join(out_dir, target)
    corpus = os.path.join(work, "corpus")
    os.makedirs(corpus, exist_ok=True)
    for seed in targets.TARGETS[target][0]():
        with open(os.path.join(corpus, "seed-" + hashlib.sha1(seed).hexdigest()), "wb") as f:
            f.write(seed)
    before = set(os.listdir(work))
    cmd = [sys.executable, "-m", "tests.fuzz.run", "--child", target, corpus, f"-max_total_time={seconds}",
           f"-artifact_prefix={work}{os.sep}", "-rss_limit_mb=3072", "-timeout=30", "-max_len=65536",
           "-print_final_stats=1"]
    env = dict(os.environ if env is None else env)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=seconds + 300)
    crashes = sorted(os.path.join(work, f) for f in set(os.listdir(work)) - before
                     if f.startswith(("crash-", "timeout-", "oom-", "leak-")))
    log = (proc.stdout + proc.stderr)[-4000:]
    return proc.returncode == 0 and not crashes, log, crashes


def main(argv=None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--child"]:
        child(argv[1], argv[2:])
        return 0
    from tests.fuzz import targets

    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--seconds", type=int, default=int(os.environ.get("DEEPLAKE_LOADER_FUZZ_SECONDS", "30")))
    ap.add_argument("--out", default=os.path.join(ROOT, "build", "fuzz"))
    ap.add_argument("targets", nargs="*", default=sorted(targets.TARGETS))
    args = ap.parse_args(argv)
    failed = []
    for t in args.targets:
        start = time.monotonic()
        ok, log, crashes = run_target(t, args.seconds, args.out)
        stats = [ln for ln in log.splitlines() if ln.startswith(("stat::number_of_executed_units", "#", "Done"))]
        print(f"[fuzz] {t}: {'clean' if ok else 'FOUND SOMETHING'} in {time.monotonic() - start:.0f}s "
              f"({stats[-1] if stats else 'no stats'})", flush=True)
        if not ok:
            failed.append(t)
            print(log, "\n".join(f"[fuzz] input saved: {c}" for c in crashes), sep="\n", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
