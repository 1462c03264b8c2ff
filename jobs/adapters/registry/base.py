"""The model registry interface; the base class does the shared work (files, promotion)."""

from __future__ import annotations

import logging
import tempfile
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from jobs.adapters.registry.bundle_io import meta_of, read_bundle, write_bundle
from jobs.domain.reco_eval import MIN_CUSTOMERS
from jobs.domain.recommender import InvalidBundle, ModelBundle
from jobs.errors import ShoplakeError

log = logging.getLogger(__name__)

MODEL_NAME = "recommender"
PRODUCTION, LATEST = "production", "latest"


class InvalidModel(ShoplakeError):
    """A stored version that cannot be served: damaged, inconsistent or of unknown format."""

    def __init__(self, version: str, reason: str) -> None:
        super().__init__(f"model {version} is invalid: {reason}")
        self.version, self.reason = version, reason


@dataclass(frozen=True)
class PromotionPolicy:
    """A new version becomes ``production`` only if no listed metric got worse.

    ``tolerance`` is relative: 0.02 accepts a drop of up to 2 %. A version evaluated on
    fewer than ``min_customers`` customers (``eval_customers``) is never promoted, not even
    the first: its metrics say too little. ``enabled=False`` promotes every new version.
    """

    metrics: tuple[str, ...] = ("ndcg@10",)
    tolerance: float = 0.0
    enabled: bool = True
    min_customers: int = MIN_CUSTOMERS

    def too_few(self, new: dict[str, Any]) -> str | None:
        """Why ``new`` cannot be promoted on its evaluation size, None when it can."""
        evaluated = new.get("eval_customers")
        if evaluated is None or int(evaluated) >= self.min_customers:
            return None  # versions from before the count are judged on their metrics
        return (
            f"only {int(evaluated)} customers evaluated (minimum {self.min_customers}): "
            "not promoted"
        )

    def allows(self, new: dict[str, Any], current: dict[str, Any] | None) -> bool:
        if not self.enabled:
            return True
        if self.too_few(new):
            return False
        if current is None:
            return True
        for name in self.metrics:
            old = current.get(name)
            if old is None:
                continue  # the old version never measured it: nothing to be worse than
            if float(new.get(name, float("-inf"))) < float(old) * (1 - self.tolerance):
                return False
        return True


@dataclass(frozen=True)
class Registration:
    """What ``register`` did: the new version, its aliases, and why it was (not) promoted."""

    version: str
    aliases: list[str]
    promoted: bool
    reason: str
    previous_production: str | None = None
    metrics: dict[str, Any] = field(default_factory=dict)


class ModelRegistry(ABC):
    """Versioned model artifacts (v1, v2, ...) with aliases such as ``production``."""

    backend: str

    def __init__(self, policy: PromotionPolicy | None = None, name: str = MODEL_NAME) -> None:
        self.policy = policy or PromotionPolicy()
        self.name = name

    # ---- what each backend implements ----
    @abstractmethod
    def _store(self, folder: Path, meta: dict[str, Any], aliases: list[str]) -> str:
        """Save the files of ``folder`` as a new version carrying ``aliases``; return it."""

    @abstractmethod
    def _fetch(self, ref: str, dest: Path) -> tuple[str, Path]:
        """Materialise version or alias ``ref`` under ``dest``: (version, folder)."""

    @abstractmethod
    def meta(self, ref: str) -> dict[str, Any] | None:
        """The stored metadata of a version or alias, None if there is no such thing."""

    @abstractmethod
    def resolve(self, ref: str) -> str | None:
        """The version an alias (or version) points to, None if unknown."""

    @abstractmethod
    def set_alias(self, alias: str, version: str) -> None:
        """Point ``alias`` at ``version`` (moving it away from any other)."""

    # ---- shared work ----
    def register(self, bundle: ModelBundle) -> Registration:
        """Store ``bundle`` as the next version; ``production`` moves only if the policy allows."""
        current_version = self.resolve(PRODUCTION)
        current = self.meta(PRODUCTION) if current_version else None
        promoted = self.policy.allows(bundle.metrics, (current or {}).get("metrics"))
        too_few = self.policy.too_few(bundle.metrics) if self.policy.enabled else None
        if too_few:
            reason = too_few
        elif current is None:
            reason = "first version"
        elif not self.policy.enabled:
            reason = "promotion check disabled"
        else:
            verdict = "not worse than" if promoted else "worse than"
            reason = f"{', '.join(self.policy.metrics)} {verdict} {current_version}"
        aliases = [LATEST] + ([PRODUCTION] if promoted else [])
        with tempfile.TemporaryDirectory(prefix="shoplake-model-") as tmp:
            write_bundle(bundle, Path(tmp))
            version = self._store(Path(tmp), meta_of(bundle), aliases)
        log.info("registered %s %s (%s): %s", self.name, version, ", ".join(aliases), reason)
        return Registration(version, aliases, promoted, reason, current_version, bundle.metrics)

    def load(self, ref: str = PRODUCTION) -> tuple[str, ModelBundle]:
        """The bundle of a version or alias, with its resolved version.

        Raises ``KeyError`` when there is no such version, ``InvalidModel`` when its files
        are damaged or disagree (see ``check_bundle``).
        """
        with tempfile.TemporaryDirectory(prefix="shoplake-model-") as tmp:
            version, folder = self._fetch(ref, Path(tmp))
            try:
                return version, read_bundle(folder)
            except InvalidBundle as exc:
                raise InvalidModel(version, str(exc)) from None

    def has_production(self) -> bool:
        return self.resolve(PRODUCTION) is not None
