"""What the medallion's steps return and what the validation report says, as typed records.

The producers (``jobs.medallion``) build them; the consumers (the CLI, ``shoplake up``, the
Airflow DAG through XCom, the lake's ``validation_report`` object) read them. Their JSON form
(``model_dump(mode="json")``) is the wire and file format, unchanged from the dicts they
replace.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

Status = Literal["ok", "warn", "fail"]


class _Record(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    def as_json(self) -> dict[str, object]:
        """The JSON-ready form (XCom, the CLI, the lake)."""
        return self.model_dump(mode="json")


class Thresholds(_Record):
    """Reject-rate limits: above ``warn`` a day warns, above ``fail`` it fails."""

    warn: float = Field(ge=0, le=1)
    fail: float = Field(ge=0, le=1)

    def status(self, reject_rate: float, consistent: bool) -> Status:
        """A day's status from its reject rate and whether its layers add up."""
        if not consistent or reject_rate > self.fail:
            return "fail"
        return "warn" if reject_rate > self.warn else "ok"


class ExtractResult(_Record):
    step: Literal["extract"] = "extract"
    date: str
    run_id: str
    rows: int
    undated: int  # rows without an order_date: silver quarantines them
    unplaceable_in_source: int  # source rows no day's extract can take (see source_db)
    path: str


class SilverResult(_Record):
    step: Literal["silver"] = "silver"
    date: str
    run_id: str
    bronze: int
    silver: int
    rejected: int
    paths: list[str]


class GoldResult(_Record):
    step: Literal["gold"] = "gold"
    date: str
    run_id: str
    silver: int
    paths: list[str]


class LayerCounts(_Record):
    bronze: int
    silver: int
    rejected: int


class Repaired(_Record):
    price: int
    total_mismatch: int


class GoldTotals(_Record):
    total_orders: int | None
    total_revenue: str | None  # DECIMAL as text: exact


class ValidationReport(_Record):
    """One day's validation: counts per layer, reject reasons and rate, status."""

    date: str
    status: Status
    consistent: bool
    counts: LayerCounts
    reject_rate: float
    reject_reasons: dict[str, int]
    repaired: Repaired
    gold: GoldTotals
    thresholds: Thresholds
    validated_at: str

    def summary(self) -> dict[str, object]:
        """The few fields a DAG run keeps in XCom and prints on failure."""
        keep = ("date", "status", "consistent", "counts", "reject_rate", "thresholds")
        return {k: v for k, v in self.as_json().items() if k in keep}


class SourceNotes(_Record):
    undated: int
    unplaceable_in_source: int


class DayRun(ValidationReport):
    """``run_date``: the validation report plus the extract's run, its notes and step times."""

    run_id: str
    source: SourceNotes
    seconds: dict[str, float]
