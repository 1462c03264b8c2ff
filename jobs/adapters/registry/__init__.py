"""Model registries by name: ``local`` (a versioned folder) and ``wandb`` (W&B artifacts)."""

from __future__ import annotations

from jobs.adapters.registry.base import (
    LATEST,
    PRODUCTION,
    InvalidModel,
    ModelRegistry,
    PromotionPolicy,
    Registration,
)
from jobs.settings import Settings

__all__ = [
    "LATEST",
    "PRODUCTION",
    "InvalidModel",
    "ModelRegistry",
    "PromotionPolicy",
    "Registration",
    "registry_for",
]


def registry_for(settings: Settings, policy: PromotionPolicy | None = None) -> ModelRegistry:
    """The registry the settings name (``SHOPLAKE_REGISTRY``; W&B when a key is set)."""
    if settings.registry_backend == "wandb":
        from jobs.adapters.registry.wandb import WandbRegistry

        key = settings.wandb_api_key.get_secret_value() if settings.wandb_api_key else None
        return WandbRegistry(
            settings.wandb_project,
            run_dir=settings.data_path / "wandb",
            base_url=settings.wandb_base_url,
            api_key=key,
            policy=policy,
        )
    from jobs.adapters.registry.local import LocalRegistry

    return LocalRegistry(settings.data_path / "registry", policy=policy)
