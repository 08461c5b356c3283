"""Options and argument checks shared by the ``previewctl`` commands."""

from __future__ import annotations

from pathlib import Path

import click

from envs.core.model import COMMIT_SHA, REPOSITORY


def repository_callback(_: click.Context, __: click.Parameter, value: str) -> str:
    if not REPOSITORY.match(value):
        raise click.BadParameter("expected OWNER/NAME, e.g. acme/shop")
    return value


def sha_callback(_: click.Context, __: click.Parameter, value: str) -> str:
    if not COMMIT_SHA.match(value):
        raise click.BadParameter("expected the full 40-character lowercase commit SHA")
    return value


repo_option = click.option(
    "--repo", "repository", required=True, callback=repository_callback, help="OWNER/NAME"
)
optional_repo_option = click.option(
    "--repo",
    "repository",
    callback=lambda c, p, v: repository_callback(c, p, v) if v else v,
    help="Only this OWNER/NAME.",
)
pr_option = click.option(
    "--pr", "pr_number", required=True, type=click.IntRange(min=1), help="PR number"
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="Machine-readable output on stdout."
)
spec_option = click.option(
    "--spec",
    "spec_path",
    type=click.Path(path_type=Path, dir_okay=False),
    help="Environment spec; default <PREVIEW_CONFIG_DIR>/<owner>/<repo>.yaml.",
)
