"""The W&B registry: each version is a W&B model artifact, aliases are W&B aliases.

Everything goes through the ``wandb`` SDK. Offline (``mode="offline"`` or
``WANDB_MODE=offline``) a version is written into the local run folder for a later
``wandb sync``; the current ``production`` cannot be read then, so it is never moved.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

from jobs.adapters.registry.base import (
    PRODUCTION,
    ModelRegistry,
    PromotionPolicy,
    Registration,
)
from jobs.domain.recommender import ModelBundle
from jobs.errors import ServiceUnavailable

log = logging.getLogger(__name__)


class WandbRegistry(ModelRegistry):
    """Model artifacts of type ``model`` in one W&B project."""

    backend = "wandb"

    def __init__(
        self,
        project: str,
        *,
        run_dir: Path,
        base_url: str | None = None,
        api_key: str | None = None,
        entity: str | None = None,
        mode: str | None = None,
        timeout: float = 30.0,
        policy: PromotionPolicy | None = None,
        name: str = "recommender",
    ) -> None:
        super().__init__(policy, name)
        self.project, self.entity = project, entity
        self.base_url, self.api_key = base_url, api_key
        self.mode = mode or os.environ.get("WANDB_MODE", "online")
        self.run_dir, self.timeout = Path(run_dir), timeout
        self.last_run_dir: Path | None = None

    @property
    def offline(self) -> bool:
        return self.mode in ("offline", "disabled")

    @property
    def where(self) -> str:
        return self.base_url or "the default W&B server"

    # ---- reading (needs the server) ----
    def _api(self) -> Any:
        if self.offline:
            raise ServiceUnavailable(
                f"W&B registry is offline (WANDB_MODE={self.mode}): loading a model needs a "
                "W&B server; set WANDB_BASE_URL/WANDB_API_KEY or SHOPLAKE_REGISTRY=local"
            )
        import wandb

        overrides = {k: v for k, v in (("base_url", self.base_url), ("entity", self.entity)) if v}
        try:
            return wandb.Api(api_key=self.api_key, overrides=overrides, timeout=int(self.timeout))
        except Exception as exc:
            raise ServiceUnavailable(f"W&B at {self.where} is unreachable: {exc}") from exc

    def _artifact(self, ref: str) -> Any | None:
        import wandb

        api = self._api()
        path = f"{self.project}/{self.name}:{ref}"
        if self.entity:
            path = f"{self.entity}/{path}"
        try:
            return api.artifact(path, type="model")
        except wandb.errors.CommError as exc:
            if "not found" in str(exc).lower() or "does not contain" in str(exc).lower():
                return None
            raise ServiceUnavailable(f"W&B at {self.where}: {exc}") from exc
        except ValueError:  # the SDK's "artifact ... not found"
            return None

    def resolve(self, ref: str) -> str | None:
        art = self._artifact(ref)
        return None if art is None else str(art.version)

    def meta(self, ref: str) -> dict[str, Any] | None:
        art = self._artifact(ref)
        return None if art is None else dict(art.metadata)

    def set_alias(self, alias: str, version: str) -> None:
        art = self._artifact(version)
        if art is None:
            raise KeyError(f"no version {version} of {self.name} in W&B project {self.project}")
        art.aliases.append(alias)
        art.save()

    def _fetch(self, ref: str, dest: Path) -> tuple[str, Path]:
        art = self._artifact(ref)
        if art is None:
            raise KeyError(f"no version or alias '{ref}' of {self.name} in {self.project}")
        return str(art.version), Path(art.download(root=str(dest)))

    # ---- writing ----
    def register(self, bundle: ModelBundle) -> Registration:
        if not self.offline:
            return super().register(bundle)
        # offline the current production is unknown: promote only when the check is off
        return self._register_offline(bundle, promote=not self.policy.enabled)

    def _register_offline(self, bundle: ModelBundle, promote: bool) -> Registration:
        import tempfile

        from jobs.adapters.registry.bundle_io import meta_of, write_bundle

        aliases = ["latest"] + ([PRODUCTION] if promote else [])
        with tempfile.TemporaryDirectory(prefix="shoplake-model-") as tmp:
            write_bundle(bundle, Path(tmp))
            version = self._store(Path(tmp), meta_of(bundle), aliases)
        reason = (
            "promotion check disabled"
            if promote
            else ("offline: the current production cannot be read, so it was not moved")
        )
        return Registration(version, aliases, promote, reason, None, bundle.metrics)

    def _store(self, folder: Path, meta: dict[str, Any], aliases: list[str]) -> str:
        import wandb

        self.run_dir.mkdir(parents=True, exist_ok=True)
        settings = wandb.Settings(
            silent=True,
            console="off",
            x_disable_stats=True,
            disable_git=True,
            save_code=False,
            init_timeout=self.timeout,
        )
        if self.api_key:
            settings.api_key = self.api_key
        if self.base_url:
            settings.base_url = self.base_url
        try:
            run = wandb.init(
                project=self.project,
                entity=self.entity,
                job_type="train",
                dir=str(self.run_dir),
                mode=self.mode,  # type: ignore[arg-type]
                config=meta.get("info", {}).get("params", {}),
                settings=settings,
            )
        except Exception as exc:
            raise ServiceUnavailable(f"W&B at {self.where} refused the run: {exc}") from exc
        try:
            run.summary.update(_numbers(meta.get("metrics", {})))
            art = wandb.Artifact(self.name, type="model", metadata=meta)
            art.add_dir(str(folder))
            logged = run.log_artifact(art, aliases=aliases)
            if self.offline:
                version = f"offline-{run.id}"
            else:
                logged.wait(timeout=int(self.timeout))
                version = str(logged.version)
            self.last_run_dir = Path(run.dir).parent
        finally:
            run.finish()
        return version


def _numbers(metrics: dict[str, Any]) -> dict[str, float]:
    return {k: float(v) for k, v in metrics.items() if isinstance(v, int | float)}
