"""A cold Airflow venv: creating it from its lock with empty caches, as root and as a user.

The route is exactly what ``shoplake services install`` does (``lite.pinned_venv``: uv,
hashes, byte-compiled), into a new folder with an empty uv cache, so everything is
downloaded again. The baseline, measured in the same run, is the machine's own limit for
the same bytes: ``pip download`` of the same locked wheels into an empty folder, no
install. As root it also runs as a throw-away ordinary user (0700 home, no certificate
variables in its environment), since that is where the first report (520 s) came from.
Target: at most 90 s cold for any user.

    python -m benchmarks.bench_install [--repeats 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lite.locks import uv_binary
from lite.pinned_venv import base_python
from lite.services.airflow import venv as airflow_venv

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "install.json"
TARGET_S = 90.0
USER = "shoplake-bench"
PLAIN_PATH = "/usr/local/bin:/usr/bin:/bin"


@contextlib.contextmanager
def scratch_user(new_user: bool) -> Iterator[tuple[str | None, Path]]:
    """(a new user's name, or None for ourselves; a fresh 0700 home), removed afterwards."""
    base = Path(tempfile.mkdtemp(prefix="shoplake-bench-"))
    base.chmod(0o755)
    home = base / "home"
    name = None
    try:
        if new_user:
            name = USER
            subprocess.run(["userdel", name], check=False, capture_output=True, timeout=30)
            subprocess.run(
                ["useradd", "--user-group", "--create-home", "--home-dir", str(home), name],
                check=True,
                timeout=30,
            )
        else:
            home.mkdir()
        home.chmod(0o700)
        yield name, home
    finally:
        if name is not None:
            subprocess.run(["userdel", name], check=False, capture_output=True, timeout=30)
        shutil.rmtree(base, ignore_errors=True)


def timed(cmd: list[str], env: dict[str, str], user: str | None) -> float:
    ids: dict[str, Any] = {}
    if user is not None:
        entry = pwd.getpwnam(user)
        ids = {"user": entry.pw_uid, "group": entry.pw_gid, "extra_groups": []}
    t0 = time.monotonic()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800, **ids)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(cmd[:4])} failed:\n{done.stderr[-2000:]}")
    return time.monotonic() - t0


def cold_venv(home: Path, user: str | None, uv: str, python: str) -> dict[str, float]:
    """uv venv + uv pip sync of the lock, with an empty cache under ``home``."""
    env = {"HOME": str(home), "PATH": PLAIN_PATH, "UV_SYSTEM_CERTS": "1", "LANG": "C.UTF-8"}
    env["UV_CACHE_DIR"] = str(home / ".cache" / "uv")
    venv = home / "airflow-venv"
    lock = str(airflow_venv.VENV.lock_file)
    create = timed([uv, "venv", "--quiet", "--python", python, str(venv)], env, user)
    sync = timed(
        [
            *(uv, "pip", "sync", "--python", str(venv / "bin" / "python")),
            *("--require-hashes", "--compile-bytecode", lock),
        ],
        env,
        user,
    )
    total = create + sync
    return {"venv_s": round(create, 2), "sync_s": round(sync, 2), "total_s": round(total, 2)}


def download_baseline(home: Path, user: str | None, python: str) -> float:
    """``pip download`` of the same locked files: the network and disk limit, no install."""
    env = {"HOME": str(home), "PATH": PLAIN_PATH, "LANG": "C.UTF-8"}
    # pip's own config (/etc/pip.conf) gives it the certificate store
    cmd = [python, "-m", "pip", "download", "--quiet", "--no-deps", "--no-cache-dir"]
    cmd += ["--require-hashes", "-r", str(airflow_venv.VENV.lock_file), "-d", str(home / "dl")]
    return round(timed(cmd, env, user), 2)


def shareable(path: str, home: Path) -> str:
    """A copy of a binary the scratch user can run (ours may sit in a 0700 folder)."""
    target = home.parent / Path(path).name
    if not target.exists():
        shutil.copy2(path, target)
        target.chmod(0o755)
    return str(target)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=1)
    args = parser.parse_args()
    runs: list[dict[str, Any]] = []
    whoami = pwd.getpwuid(os.getuid()).pw_name
    for _ in range(args.repeats):
        for as_user in (False, True):
            if as_user and os.geteuid() != 0:
                continue
            with scratch_user(as_user) as (who, home):
                uv = shareable(uv_binary(), home) if who else uv_binary()
                # Debian's python3 for the user: root's interpreter may sit in /root
                python = "/usr/bin/python3" if who else base_python()
                baseline = download_baseline(home, who, python)
                result = cold_venv(home, who, uv, python)
                ratio = round(result["total_s"] / baseline, 2)
                row = {"who": who or whoami, "download_baseline_s": baseline, **result}
                row["vs_download"] = ratio
                row["target_met"] = result["total_s"] <= TARGET_S
                runs.append(row)
                print(
                    f"{row['who']:>16}: cold Airflow venv {result['total_s']:.1f} s "
                    f"(target {TARGET_S:.0f} s), pip download of the same wheels "
                    f"{baseline:.1f} s, ratio {ratio}",
                    file=sys.stderr,
                )
    report = {
        "lock": airflow_venv.VENV.lock,
        "lock_digest": airflow_venv.VENV.digest(),
        "packages": sum(
            1 for ln in airflow_venv.VENV.lock_file.read_text().splitlines() if "==" in ln[:60]
        ),
        "target_s": TARGET_S,
        "load_avg": os.getloadavg(),
        "runs": runs,
    }
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
