"""``shoplake cdc``: the Debezium connector of the full profile (register, remove, inspect).

``shoplake up --full`` registers it by itself; these commands are for running the pieces
one by one (``shoplake services start --full`` then ``shoplake cdc register``).
"""

from __future__ import annotations

import json

import typer

cdc_app = typer.Typer(help="The Debezium connector: public.orders -> cdc.public.orders.")


@cdc_app.command("register")
def register_connector() -> None:
    """Create (or update) the connector and wait until it streams changes."""
    from jobs.adapters import debezium
    from lite.cli.common import load_settings as _settings

    settings = _settings()
    debezium.register(settings)
    print(
        f"connector {debezium.connector_name(settings)} streaming public.orders to "
        f"{settings.cdc_topic} (slot {debezium.slot_name(settings)})"
    )


@cdc_app.command("unregister")
def unregister_connector() -> None:
    """Remove the connector and drop its replication slot and publication."""
    from jobs.adapters import debezium
    from lite.cli.common import load_settings as _settings

    removed = debezium.unregister(_settings())
    print("removed " + ", ".join(removed) if removed else "nothing to remove")


@cdc_app.command("status")
def connector_status() -> None:
    """The connector's and its task's state as Kafka Connect reports them."""
    from jobs.adapters import debezium
    from lite.cli.common import load_settings as _settings

    settings = _settings()
    found = debezium.status(settings)
    if found is None:
        print(f"no connector {debezium.connector_name(settings)} registered")
        return
    print(json.dumps(found, indent=2))


def register(app: typer.Typer) -> None:
    """Add the ``cdc`` group to the ``shoplake`` command."""
    app.add_typer(cdc_app, name="cdc")
