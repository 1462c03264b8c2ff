"""What the compose files need from Docker: the CLI plugins, the Debian base, the images.

- The Compose v2 and buildx CLI plugins, when the Docker CLI lacks them (Debian ships
  neither): built once from their Go modules into ``~/.docker/cli-plugins``.
- ``debian:bookworm-slim``: pulled where a registry answers, else made with debootstrap
  from the Debian mirror apt already uses, and imported.
- The images: ``docker compose build`` of the compose file, with the host's CA bundle as
  the build secret ``ca`` (a network that re-signs TLS needs it; elsewhere it is the
  ordinary bundle and changes nothing).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

from jobs.errors import ServiceUnavailable
from lite.locks import REPO

log = logging.getLogger(__name__)

BASE_IMAGE = "debian:bookworm-slim"
SUITE = "bookworm"
# Go modules of the two CLI plugins (versions served by the Go module proxy, measured)
PLUGINS = {
    "docker-compose": ("github.com/docker/compose/v5", "v5.6.0", "./cmd", "internal.Version"),
    "docker-buildx": ("github.com/docker/buildx", "v0.38.2", "./cmd/buildx", "version.Version"),
}
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")
TIMEOUT_S = 1800.0


def plugin_dir() -> Path:
    config = os.environ.get("DOCKER_CONFIG") or str(Path.home() / ".docker")
    return Path(config) / "cli-plugins"


def docker_env(host: str) -> dict[str, str]:
    """The environment of a ``docker`` call against the engine at ``host``."""
    env = {**os.environ, "DOCKER_HOST": host}
    # compose builds through bake, which asks before reading a file outside the project
    # (the CA bundle): the compose file names it, so allow it
    env.setdefault("BUILDX_BAKE_ENTITLEMENTS_FS", "0")
    bundle = os.environ.get("SSL_CERT_FILE") or str(CA_BUNDLE)
    if Path(bundle).is_file():
        env.setdefault("SHOPLAKE_BUILD_CA", bundle)
    return env


def run(
    cmd: list[str], env: dict[str, str], timeout: float = TIMEOUT_S, cwd: str | None = None
) -> str:
    """Run ``cmd``; its output, or a ServiceUnavailable with the tail of it."""
    try:
        done = subprocess.run(
            cmd, env=env, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ServiceUnavailable(f"{' '.join(cmd[:3])} failed: {exc}") from exc
    if done.returncode != 0:
        out = (done.stdout + done.stderr)[-3000:]
        raise ServiceUnavailable(f"{' '.join(cmd[:4])} failed ({done.returncode}):\n{out}")
    return done.stdout


# ---------------------------------------------------------------- CLI plugins
def _plugin_version(name: str) -> str | None:
    """The version a plugin reports (None: missing or broken)."""
    binary = plugin_dir() / name
    if not binary.exists():
        return None
    done = subprocess.run(
        [str(binary), "docker-cli-plugin-metadata"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    try:
        return str(json.loads(done.stdout).get("Version") or "")
    except ValueError:
        return None


def install_plugins() -> list[str]:
    """Build the pinned compose and buildx plugins where they are missing; a line each."""
    lines = []
    for name, (module, version, package, variable) in PLUGINS.items():
        have = _plugin_version(name)
        if have == version:
            lines.append(f"{name} {version} in {plugin_dir()}")
            continue
        t0 = time.monotonic()
        _build_plugin(name, module, version, package, variable)
        lines.append(f"{name} {version} built in {time.monotonic() - t0:.0f} s")
    return lines


def _build_plugin(name: str, module: str, version: str, package: str, variable: str) -> None:
    go = shutil.which("go") or "/usr/local/go/bin/go"
    env = {**os.environ, "CGO_ENABLED": "0", "GOFLAGS": "-buildvcs=false -mod=mod"}
    log.info("building the Docker CLI plugin %s %s from its Go module (once)", name, version)
    # `go install` refuses modules whose go.mod has exclude directives: build inside it
    info = json.loads(run([go, "mod", "download", "-json", f"{module}@{version}"], env))
    plugin_dir().mkdir(parents=True, exist_ok=True)
    target = plugin_dir() / name
    ldflags = f"-X {module}/{variable}={version}"
    with tempfile.TemporaryDirectory() as tmp:
        built = Path(tmp) / name
        cmd = [go, "build", "-trimpath", "-ldflags", ldflags, "-o", str(built), package]
        run(cmd, env, cwd=info["Dir"])
        shutil.move(built, target)
    target.chmod(0o755)


# ---------------------------------------------------------------- the Debian base image
def have_image(ref: str, env: dict[str, str]) -> bool:
    done = subprocess.run(
        ["docker", "image", "inspect", ref], env=env, capture_output=True, timeout=60, check=False
    )
    return done.returncode == 0


def debian_mirror() -> str:
    """The Debian mirror apt uses here (deb822 ``URIs:`` or a ``deb`` line)."""
    sources = [*Path("/etc/apt/sources.list.d").glob("*.sources"), Path("/etc/apt/sources.list")]
    for path in sources:
        text = path.read_text() if path.is_file() else ""
        found = re.search(r"^URIs:\s*(\S+)", text, re.M) or re.search(
            r"^deb\s+(?:\[[^]]*\]\s+)?(\S+)\s+" + SUITE + r"\s", text, re.M
        )
        if found and "security" not in found.group(1):
            return found.group(1)
    raise ServiceUnavailable("no Debian mirror found in apt's sources to debootstrap from")


def ensure_base_image(env: dict[str, str]) -> str:
    """``debian:bookworm-slim``: present, pulled, or made with debootstrap; one line."""
    if have_image(BASE_IMAGE, env):
        return f"{BASE_IMAGE} present"
    pulled = subprocess.run(
        ["docker", "pull", "-q", BASE_IMAGE], env=env, capture_output=True, timeout=300, check=False
    )
    if pulled.returncode == 0:
        return f"{BASE_IMAGE} pulled"
    debootstrap = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if os.geteuid() != 0 or not Path(debootstrap).exists():
        raise ServiceUnavailable(
            f"{BASE_IMAGE} cannot be pulled and debootstrap needs root and the debootstrap "
            "package (make system-deps): make the image yourself or use a registry"
        )
    t0 = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="shoplake-debootstrap-") as tmp:
        rootfs = Path(tmp) / "rootfs"
        mirror = debian_mirror()
        run([debootstrap, "--variant=minbase", SUITE, str(rootfs), mirror], env)
        tar = subprocess.Popen(["tar", "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE)
        try:
            run_stdin = subprocess.run(
                ["docker", "import", "-", BASE_IMAGE],
                stdin=tar.stdout,
                env=env,
                capture_output=True,
                timeout=TIMEOUT_S,
                check=False,
            )
        finally:
            if tar.stdout is not None:
                tar.stdout.close()
            tar.wait(60)
        if run_stdin.returncode != 0:
            raise ServiceUnavailable(f"docker import failed: {run_stdin.stderr[-1000:]!r}")
    return f"{BASE_IMAGE} made with debootstrap in {time.monotonic() - t0:.0f} s"


# ---------------------------------------------------------------- the project's images
def compose_file(profile: str) -> Path:
    return REPO / f"compose.{profile}.yml"


def compose(profile: str, project: str | None = None) -> list[str]:
    """The ``docker compose`` command line for a profile (and a project name)."""
    cmd = ["docker", "compose", "-f", str(compose_file(profile))]
    return [*cmd, "-p", project] if project else cmd


def build_images(profile: str, env: dict[str, str]) -> str:
    """``docker compose build`` of a profile's images; one line with the time it took."""
    t0 = time.monotonic()
    run([*compose(profile), "build"], env)
    return f"images of compose.{profile}.yml built in {time.monotonic() - t0:.0f} s"
