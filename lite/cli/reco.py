"""``shoplake train`` and ``shoplake serve``: the recommendation commands."""

from __future__ import annotations

from typing import Annotated

import typer

from lite.cli.common import load_settings as _settings


def train(
    holdout_share: Annotated[
        float,
        typer.Option(min=0.01, max=0.9, help="each customer's latest share of purchases tested"),
    ] = 0.1,
    holdout_last: Annotated[
        int | None,
        typer.Option(min=1, help="hold out each customer's last K purchases instead"),
    ] = None,
    window_days: Annotated[
        int | None, typer.Option(min=1, help="train on the last N Silver days (default: all)")
    ] = None,
    tune_seconds: Annotated[
        float,
        typer.Option(min=0.0, help="search budget on the validation split (0: ALS as given)"),
    ] = 30.0,
    min_customers: Annotated[
        int, typer.Option(min=1, help="fewest evaluated customers for a lift and a promotion")
    ] = 50,
    factors: Annotated[int, typer.Option(min=1, help="ALS latent factors (no search)")] = 16,
    iterations: Annotated[int, typer.Option(min=1, help="ALS sweeps (no search)")] = 15,
    regularization: Annotated[float, typer.Option(min=0.0, help="ALS L2 penalty")] = 5.0,
    alpha: Annotated[
        float, typer.Option(min=0.0, help="ALS confidence 1 + alpha * r of a purchase")
    ] = 2.0,
    tolerance: Annotated[
        float, typer.Option(min=0.0, help="promote if NDCG@10 dropped by at most this share")
    ] = 0.0,
    always_promote: Annotated[
        bool, typer.Option("--always-promote", help="make the new version production anyway")
    ] = False,
) -> None:
    """Tune on validation, compare with most-popular and item kNN on test, register."""
    from jobs import training
    from jobs.adapters.registry import PromotionPolicy
    from jobs.domain.recommender import ALSParams

    config = training.TrainConfig(
        params=ALSParams(
            factors=factors, regularization=regularization, alpha=alpha, iterations=iterations
        ),
        holdout_share=holdout_share,
        holdout_last=holdout_last,
        tune_seconds=tune_seconds,
        min_customers=min_customers,
        window_days=window_days,
    )
    policy = PromotionPolicy(
        tolerance=tolerance, enabled=not always_promote, min_customers=min_customers
    )
    print(training.train(_settings(), config=config, policy=policy).report())


def serve(
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[
        int | None, typer.Option(min=1, max=65535, help="port (SHOPLAKE_API_PORT, 8000)")
    ] = None,
) -> None:
    """Serve the recommendation API (loads the registry's production version)."""
    from api.server import serve as run

    settings = _settings()
    run(settings, host=host, port=port or settings.api_port)


def register(app: typer.Typer) -> None:
    """Add ``train`` and ``serve`` to the ``shoplake`` command."""
    app.command("train")(train)
    app.command("serve")(serve)
