"""Recipe values checked against their columns before anything is written.

A recipe's ``values:`` are the user's own text, read by the server only when
the load casts them; a typo (``"3 "`` for a smallint, a label its enum
lacks, a code longer than its ``varchar``) would then fail the whole seed
after the tables were emptied and refilled up to that row. The server
casts them here first, so the error names the recipe key to fix. A
domain's checks are not applied here: values a check refuses are dropped
by :mod:`seeders.synthetic.checks`, as the recipe's list may mean "those that pass".
"""

from __future__ import annotations

from typing import Any

import psycopg
from psycopg import sql

from seeders.schema.model import Category, Schema
from seeders.synthetic.generator import SyntheticConfig
from seeders.synthetic.values import CannotGenerate


def check(conn: psycopg.Connection[Any], schema: Schema, config: SyntheticConfig) -> None:
    """Raise :class:`CannotGenerate` for the first recipe value its column cannot hold."""
    for table in schema.tables:
        for name, override in config.overrides.get(table.name, {}).items():
            if override.values is None:
                continue
            column = table.column(name)
            key = f"tables.{table.name}.columns.{name}.values"
            limit = column.max_length
            if column.category is Category.TEXT and limit is not None and not column.is_array:
                for value in override.values:
                    if len(value) > limit:
                        raise CannotGenerate(
                            f"{key}: {value!r} is longer than {column.type_name} holds"
                            f" ({limit} characters); shorten it"
                        )
            if column.base_type in ("bit", "varbit") and limit is not None and not column.is_array:
                # A cast pads or cuts a bit string; a column takes only its own length.
                for value in override.values:
                    exact = column.base_type == "bit"
                    if len(value) > limit or (exact and len(value) != limit):
                        raise CannotGenerate(
                            f"{key}: {value!r} is not {'exactly' if exact else 'at most'}"
                            f" {limit} bits, as {column.type_name} holds"
                        )
            cast = sql.SQL("CAST(v AS {})").format(sql.SQL(column.checked_as))
            if column.numeric_precision is not None and not column.is_array:
                # The digits its typmod allows (a cast to plain numeric takes any).
                cast = sql.SQL("CAST({} AS numeric({}, {}))").format(
                    cast,
                    sql.Literal(column.numeric_precision),
                    sql.Literal(column.numeric_scale or 0),
                )
            query = sql.SQL("SELECT {} FROM unnest(%s::text[]) AS u(v)").format(cast)
            try:
                with conn.transaction():
                    conn.execute(query, (list(override.values),))
            except psycopg.DataError as exc:
                reason = exc.diag.message_primary or str(exc)
                if exc.diag.message_detail:
                    reason += f"; {exc.diag.message_detail.rstrip('.')}"
                raise CannotGenerate(
                    f"{key}: not a value of {column.type_name} ({reason}); give values of that type"
                ) from None
