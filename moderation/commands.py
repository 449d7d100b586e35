"""Commands that need the app and its database, added to ``flask moderation``: seeding the
house rules, retraining from moderators' decisions, and switching models."""

from __future__ import annotations

import json
import pathlib

import click
from flask import Flask
from flask.cli import with_appcontext

from comments.audit import record
from comments.extensions import db

from . import registry, rules


@click.command("seed-rules")
@with_appcontext
def seed_rules() -> None:
    """Add the default house rules the site doesn't have yet."""
    added = rules.seed_defaults()
    db.session.commit()
    click.echo(f"Added {added} house rule(s).")


@click.command("retrain")
@click.option(
    "--data",
    "data",
    multiple=True,
    type=click.Path(exists=True, path_type=pathlib.Path),
    help="Base labelled sets (files or folders) to train from before fine-tuning.",
)
@click.option("--seed", default=0, show_default=True)
@click.option("--force", is_flag=True, help="Activate the candidate even if it is worse.")
@with_appcontext
def retrain(data: tuple[pathlib.Path, ...], seed: int, force: bool) -> None:
    """Train a candidate from this site's decisions; activate it if it is no worse."""
    from . import learning
    from .scoring import get_model, reset_model

    try:
        result = learning.retrain(get_model(), data, seed=seed, force=force, progress=click.echo)
    except ValueError as err:
        raise click.ClickException(str(err)) from None
    record(
        None,
        "model.retrain",
        "model",
        result["version"],
        {"activated": result["activated"], "no_worse": result["no_worse"]},
    )
    db.session.commit()
    reset_model()

    def fmt(figures: dict | None) -> str:
        return "n/a" if not figures else f"{figures['mean_log_loss']:.4f}"

    click.echo(
        f"held-back mean log loss: current {fmt(result['current'])}, "
        f"candidate {fmt(result['candidate'])}"
    )
    verdict = "activated" if result["activated"] else "kept inactive (worse, or nothing held back)"
    click.echo(f"candidate {result['version']} {verdict}; saved at {result['path']}")


@click.command("models")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def list_models(as_json: bool) -> None:
    """List the site's models; the shipped one is active when no other is."""
    rows = list(
        db.session.scalars(
            db.select(registry.ClassifierModel).order_by(registry.ClassifierModel.id)
        )
    )
    items = [r.to_json() for r in rows]
    shipped_active = not any(r.is_active for r in rows)
    if as_json:
        click.echo(json.dumps({"shipped_active": shipped_active, "models": items}))
        return
    click.echo(f"{'*' if shipped_active else ' '} shipped")
    for item in items:
        click.echo(f"{'*' if item['active'] else ' '} {item['version']}  {item['created_at']}")


@click.command("activate")
@click.argument("version")
@with_appcontext
def activate(version: str) -> None:
    """Make VERSION the active model ("shipped" for the model that ships with Parley)."""
    from .scoring import reset_model

    if version == "shipped":
        db.session.execute(db.update(registry.ClassifierModel).values(is_active=False))
    else:
        try:
            registry.activate(version)
        except LookupError:
            raise click.ClickException(
                f"No model {version!r}; see `flask moderation models`."
            ) from None
    record(None, "model.activate", "model", version)
    db.session.commit()
    reset_model()
    click.echo(f"Active model: {version}")


def init_app(app: Flask) -> None:
    from .cli import moderation_cli

    for command in (seed_rules, retrain, list_models, activate):
        moderation_cli.add_command(command)
    app.cli.add_command(moderation_cli)
