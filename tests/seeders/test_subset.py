"""Subsetting through the FK graph, on the shop schema (self-reference, cycle, composite keys)."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg import sql

from envs.core.errors import ConfigError
from envs.environments.seeding import seed_anonymised
from seeders.anonymise import subset
from seeders.anonymise.rules import RulesError, parse_rules
from seeders.schema.introspect import introspect
from tests.seeders.shop_data import RULES

SALT = "salt-for-the-subset-tests-0123456789"


def count(url: str, query: str) -> int:
    with psycopg.connect(url) as conn:
        row = conn.execute(query).fetchone()
    assert row is not None
    value: int = row[0]
    return value


def test_the_subset_follows_children_and_pulls_in_what_they_reference(source: str) -> None:
    with psycopg.connect(source) as conn:
        keys = subset.compute(conn, introspect(conn), {"customers": "id IN (3, 7)"})
    # The chosen customers and, for integrity, everyone up their referral chains (to 1).
    assert sorted(int(k[0]) for k in keys["public.customers"]) == [1, 2, 3, 4, 5, 6, 7]
    # Orders follow the chosen customers only, not the ones pulled in for integrity.
    owned_orders = count(source, "SELECT count(*) FROM orders WHERE customer_id IN (3, 7)")
    assert len(keys["public.orders"]) == owned_orders > 0
    assert len(keys["public.shipments"]) == owned_orders  # one per order, through the cycle
    assert len(keys["public.order_lines"]) == owned_orders  # composite key (order_id, line_no)
    products = count(
        source,
        "SELECT count(DISTINCT p) FROM (SELECT product_id p FROM order_lines l JOIN orders o"
        " ON o.id = l.order_id WHERE o.customer_id IN (3, 7) UNION SELECT s.product_id FROM"
        " shipments s JOIN orders o ON o.id = s.order_id WHERE o.customer_id IN (3, 7)) x",
    )
    assert len(keys["public.products"]) == products
    assert len(keys["public.warehouses"]) == 1  # the one the shipments name
    # Stock rows come in only because shipments reference them (composite key), not as
    # children of the products and warehouses that were pulled in.
    named = "SELECT count(DISTINCT (warehouse_code, product_id)) FROM shipments s JOIN orders o"
    assert len(keys["public.stock"]) == count(
        source, named + " ON o.id = s.order_id WHERE o.customer_id IN (3, 7)"
    )
    assert len(keys["public.stock"]) < count(source, "SELECT count(*) FROM stock")


def test_an_anonymised_subset_loads_with_every_foreign_key_valid(
    source: str, target: str, tmp_path: Any
) -> None:
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES | {"subset": {"customers": "id IN (3, 7)"}}))
    summary = seed_anonymised(source, target, rules, SALT)
    assert summary.rows["public.customers"] == 7
    assert 0 < summary.rows["public.stock"] < count(source, "SELECT count(*) FROM stock")
    assert count(target, "SELECT count(*) FROM orders") == count(
        source, "SELECT count(*) FROM orders WHERE customer_id IN (3, 7)"
    )
    # The loader re-validated every foreign key; check the cycle by hand too.
    dangling = "SELECT count(*) FROM orders o LEFT JOIN shipments s ON s.id = o.last_shipment_id"
    assert count(target, dangling + " WHERE o.last_shipment_id IS NOT NULL AND s.id IS NULL") == 0
    assert count(target, "SELECT count(*) FROM customers WHERE email LIKE 'real.person%'") == 0


def test_bad_subsets_are_refused_before_anything_is_written(
    source: str, target: str, tmp_path: Any
) -> None:
    with pytest.raises(RulesError, match="subset"):
        parse_rules(RULES | {"subset": ["customers"]})
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES | {"subset": {"clients": "true"}}))
    with pytest.raises(ConfigError, match=r"(?s)nothing was written.*no such table"):
        seed_anonymised(source, target, rules, SALT)
    assert count(target, "SELECT count(*) FROM customers") == 0


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.sets(st.integers(min_value=1, max_value=200), min_size=1, max_size=12))
def test_every_subset_is_closed_under_its_foreign_keys(source: str, chosen: set[int]) -> None:
    """Whatever customers are chosen, every included row's references are included."""
    where = f"id IN ({', '.join(map(str, sorted(chosen)))})"
    with psycopg.connect(source) as conn:
        schema = introspect(conn)
        keys = subset.compute(conn, schema, {"customers": where})
        for table in schema.tables:
            for fk in table.foreign_keys:
                parent = schema.table(fk.ref_table)
                child_refs = _values(conn, table, fk.columns, keys[table.qualified])
                parent_refs = _values(conn, parent, fk.ref_columns, keys[parent.qualified])
                missing = {r for r in child_refs if None not in r} - parent_refs
                assert not missing, f"{table.qualified}.{fk.name} dangles: {sorted(missing)[:3]}"
    assert {int(k[0]) for k in keys["public.customers"]} >= chosen


def _values(
    conn: psycopg.Connection[Any], table: Any, columns: tuple[str, ...], keys: set[Any]
) -> set[tuple[str | None, ...]]:
    if not keys:
        return set()
    query = sql.SQL("SELECT {} FROM {} WHERE {}").format(
        sql.SQL(", ").join(sql.SQL("{}::text").format(sql.Identifier(c)) for c in columns),
        sql.Identifier(table.schema, table.name),
        subset.condition(table, keys),
    )
    return {tuple(row) for row in conn.execute(query).fetchall()}
