"""``flask users ...``, ``flask articles ...`` and ``flask demo load``."""

from __future__ import annotations

import click
from flask import Flask
from flask.cli import AppGroup

from . import auth, services
from .audit import record
from .errors import ParleyError
from .extensions import db
from .models import Role

users_cli = AppGroup("users", help="Manage accounts.")
articles_cli = AppGroup("articles", help="Manage articles.")
demo_cli = AppGroup("demo", help="Demo data.")


def _fail(err: ParleyError) -> None:
    db.session.rollback()
    raise click.ClickException(f"{err.message} ({err.code})")


@users_cli.command("create")
@click.argument("email")
@click.option("--name", "display_name", required=True, help="Display name shown with comments.")
@click.option("--password", prompt=True, hide_input=True, confirmation_prompt=True)
@click.option(
    "--role",
    type=click.Choice([r.value for r in Role]),
    default=Role.READER.value,
    show_default=True,
)
def create_user(email: str, display_name: str, password: str, role: str) -> None:
    """Create an account, for example a moderator or editor."""
    try:
        user = auth.create_user(email, display_name, password, Role(role))
        record(None, "user.create", "user", user.id, {"role": role, "via": "cli"})
        db.session.commit()
    except ParleyError as err:
        _fail(err)
    click.echo(f"Created {role} {user.display_name} <{user.email}> (id {user.id})")


@articles_cli.command("add")
@click.argument("key")
@click.option("--title", required=True)
@click.option("--url", required=True)
@click.option("--auto-close-days", type=int, default=None, help="Close comments after N days.")
def add_article(key: str, title: str, url: str, auto_close_days: int | None) -> None:
    """Register an article so readers can comment under it."""
    try:
        article = services.create_article(key, title, url, auto_close_days, via="cli")
        db.session.commit()
    except ParleyError as err:
        _fail(err)
    click.echo(f"Registered article {article.key!r}: {article.title}")


@articles_cli.command("recount")
@click.argument("keys", nargs=-1)
def recount_articles(keys: tuple[str, ...]) -> None:
    """Count articles' published comments again from the comments (all articles, or KEYS).

    Parley keeps the counts with every change; this repairs them after comments were
    changed around it (by hand in SQL, say)."""
    try:
        ids = {services.get_article(key).id for key in keys} if keys else None
    except ParleyError as err:
        _fail(err)
    services.recount(ids)
    for target in keys or ("*",):
        record(None, "article.recount", "article", target, {"via": "cli"})
    db.session.commit()
    click.echo(f"Recounted {len(ids) if ids is not None else 'every'} article(s).")


@demo_cli.command("load")
def load_demo() -> None:
    """Load demo articles, threads and one user per role (prints the passwords)."""
    from .demo import load

    for line in load():
        click.echo(line)


def init_app(app: Flask) -> None:
    app.cli.add_command(users_cli)
    app.cli.add_command(articles_cli)
    app.cli.add_command(demo_cli)
