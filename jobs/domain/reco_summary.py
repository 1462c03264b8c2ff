"""The typed model summary: written by training, stored by the registry, shown by the API.

Pure pydantic (JSON in and out); the maths that fills it is in ``reco_eval``.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

MODEL, POPULAR, ITEMKNN = "model", "popular", "itemknn"


class Interval(BaseModel):
    """A mean with its bootstrap 95 % interval."""

    model_config = ConfigDict(frozen=True)
    value: float
    low: float
    high: float

    def text(self, digits: int = 4) -> str:
        return f"{self.value:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


class MethodScore(BaseModel):
    """One method's metrics on the test split (NDCG and recall with intervals)."""

    model_config = ConfigDict(frozen=True)
    ndcg: Interval
    recall: Interval
    precision: float
    coverage: float


class Tuning(BaseModel):
    """What the search on the validation split tried and chose."""

    model_config = ConfigDict(frozen=True)
    trials: int = 0
    seconds: float = 0.0
    budget_seconds: float = 0.0
    chosen: str = ""
    validation_ndcg: dict[str, float] = Field(default_factory=dict)  # best per method kind
    best: dict[str, dict[str, Any]] = Field(default_factory=dict)  # best parameters per kind


class ModelSummary(BaseModel):
    """How the served model was chosen and how it fared against the baselines.

    ``lifts`` (model / baseline NDCG@k, with paired bootstrap intervals) is empty and
    ``message`` says why when fewer than ``min_customers`` customers were evaluated.
    """

    model_config = ConfigDict(frozen=True)
    model: str  # the served kind: als | ease | itemknn
    params: dict[str, Any]
    k: int
    protocol: str
    evaluated_customers: int
    evaluated_items: int
    holdout_customers: int
    unseen_items: int
    repeat_purchases: int
    min_customers: int
    scores: dict[str, MethodScore]
    lifts: dict[str, Interval] = Field(default_factory=dict)
    tuning: Tuning = Field(default_factory=Tuning)
    message: str = ""

    @property
    def sufficient(self) -> bool:
        return self.evaluated_customers >= self.min_customers

    def metrics(self) -> dict[str, Any]:
        """The flat metrics (promotion, W&B summary): ``ndcg@10``, ``popularity_ndcg@10``..."""
        k = self.k
        out: dict[str, Any] = {}
        for name, prefix in ((MODEL, ""), (POPULAR, "popularity_"), (ITEMKNN, "itemknn_")):
            score = self.scores.get(name)
            if score is None:
                continue
            out |= {
                f"{prefix}ndcg@{k}": score.ndcg.value,
                f"{prefix}recall@{k}": score.recall.value,
                f"{prefix}precision@{k}": score.precision,
                f"{prefix}coverage": score.coverage,
            }
        for name, lift in self.lifts.items():
            out[f"lift_ndcg@{k}" if name == POPULAR else f"lift_{name}_ndcg@{k}"] = lift.value
        out["eval_customers"] = self.evaluated_customers
        out["eval_items"] = self.evaluated_items
        return out

    def lines(self) -> list[str]:
        """A human summary: one line per method, then the ratios (or why there are none)."""
        k = self.k
        head = (
            f"{self.model} {self.params}; {self.evaluated_customers} customers and "
            f"{self.evaluated_items} items evaluated ({self.protocol})"
        )
        out = [head]
        for name, score in self.scores.items():
            out.append(
                f"  {name:<8} NDCG@{k} {score.ndcg.text()}  recall@{k} {score.recall.text()}  "
                f"coverage {score.coverage:.1%}"
            )
        for name, lift in self.lifts.items():
            out.append(f"  model / {name}: x{lift.value:.2f} [{lift.low:.2f}, {lift.high:.2f}]")
        if self.message:
            out.append(f"  {self.message}")
        if self.tuning.trials:
            t = self.tuning
            out.append(
                f"  tuned on validation: {t.trials} trials in {t.seconds:.1f} s "
                f"(budget {t.budget_seconds:.0f} s), chose {t.chosen}"
            )
        return out
