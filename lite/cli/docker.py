"""``shoplake docker``: what the compose files need (plugins, engine, base image, images)."""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated

import typer

from lite.cli.common import choice

docker_app = typer.Typer(help="Docker for the compose files: plugins, engine, images.")


class Profile(StrEnum):
    """The compose file an image set is for (``compose.<profile>.yml``)."""

    lite = "lite"
    full = "full"


ProfileOption = Annotated[
    Profile, typer.Option("--profile", **choice(Profile, "profile"), help="the compose file")
]


def _engine_host(start: bool) -> str:
    """A running engine's DOCKER_HOST, starting our own dockerd (root) when asked."""
    from jobs.errors import ServiceUnavailable
    from lite.cli.common import load_settings
    from lite.services.docker_engine import DockerEngine, running_engine

    found = running_engine()
    if found:
        return found
    engine = DockerEngine(load_settings())
    if engine.pid() is not None and engine.answers():
        return engine.url
    if not start:
        raise ServiceUnavailable("no Docker engine answers: `shoplake docker start` (root)")
    print(engine.start().line())
    return engine.url


@docker_app.command("install")
def install() -> None:
    """Build the Docker CLI plugins compose and buildx where the CLI lacks them (once)."""
    from lite import docker_images

    for line in docker_images.install_plugins():
        print(line)


@docker_app.command("start")
def start() -> None:
    """Start a Docker engine of our own (root) unless one answers; print its DOCKER_HOST."""
    print(f"export DOCKER_HOST={_engine_host(start=True)}")


@docker_app.command("stop")
def stop() -> None:
    """Stop the Docker engine `shoplake docker start` started (by its PID)."""
    from lite.cli.common import load_settings
    from lite.services.docker_engine import DockerEngine

    print(DockerEngine(load_settings()).stop().line())


@docker_app.command("images")
def images(profile: ProfileOption = Profile.lite) -> None:
    """The images a compose file runs: plugins, the Debian base (debootstrap), the build."""
    from lite import docker_images

    for line in docker_images.install_plugins():
        print(line)
    env = docker_images.docker_env(_engine_host(start=True))
    print(docker_images.ensure_base_image(env))
    print(docker_images.build_images(profile.value, env))


def register(app: typer.Typer) -> None:
    app.add_typer(docker_app, name="docker")
