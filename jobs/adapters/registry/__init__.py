"""Model registries: ``local`` (a versioned folder) and ``wandb`` (W&B artifacts); which one
serves an installation is chosen in ``jobs.bootstrap``."""

from __future__ import annotations

from jobs.adapters.registry.base import (
    LATEST,
    PRODUCTION,
    InvalidModel,
    ModelRegistry,
    PromotionPolicy,
    Registration,
)

__all__ = [
    "LATEST",
    "PRODUCTION",
    "InvalidModel",
    "ModelRegistry",
    "PromotionPolicy",
    "Registration",
]
