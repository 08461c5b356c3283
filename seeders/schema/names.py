"""How the seeders name a table's rows in SQL."""

from __future__ import annotations

from psycopg import sql

from seeders.schema.model import Table


def own_rows(table: Table) -> sql.Composable:
    """What a FROM clause names to read this table's rows and no other table's.

    ``FROM t`` also returns the rows of every table that inherits from
    ``t``, which are copied as those tables' own; ``ONLY`` leaves them out.
    A partitioned table's rows are its partitions', read through it.
    """
    name = sql.Identifier(table.schema, table.name)
    return name if table.partitioned else sql.SQL("ONLY {}").format(name)
