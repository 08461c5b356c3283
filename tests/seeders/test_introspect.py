"""Schema introspection reads every shape the seeders rely on."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from envs.cli.main import main
from seeders.schema.graph import load_order
from seeders.schema.introspect import introspect
from seeders.schema.model import Category
from tests.pg_server import PgServer


def test_tables_and_keys(shop: psycopg.Connection[Any]) -> None:
    schema = introspect(shop)
    names = {t.qualified for t in schema.tables}
    assert names == {
        "public.customers", "public.warehouses", "public.products", "public.stock",
        "public.orders", "public.shipments", "public.order_lines",
    }  # fmt: skip
    assert schema.table("stock").primary_key == ("warehouse_code", "product_id")
    assert ("sku",) in schema.table("products").unique  # a unique index, not a constraint
    assert ("email",) in schema.table("customers").unique


def test_column_types_resolve_domains_enums_arrays(shop: psycopg.Connection[Any]) -> None:
    customers = introspect(shop).table("customers")
    email = customers.column("email")
    assert email.category is Category.TEXT  # domain over citext
    assert (email.type_ref, email.base_ref) == ("public.email_address", "public.citext")
    (domain,) = [c for c in customers.checks if c.domain]
    assert (domain.domain, domain.columns) == ("public.email_address", ("email",))
    assert domain.expression == """CHECK (("email" ~~ '%@%'::citext))"""
    assert not email.nullable
    assert customers.column("id").identity
    assert customers.column("tags").is_array
    assert customers.column("profile").category is Category.JSON
    assert customers.column("full_name").max_length == 80
    assert customers.column("country").max_length == 2
    orders = introspect(shop).table("orders")
    assert orders.column("status").enum_values == ("pending", "paid", "shipped", "cancelled")
    assert orders.column("id").identity  # bigserial
    products = introspect(shop).table("products")
    assert products.column("doubled").generated
    assert (products.column("price").numeric_precision, products.column("price").numeric_scale) == (
        10,
        2,
    )


def test_foreign_keys_composite_self_and_deferrable(shop: psycopg.Connection[Any]) -> None:
    schema = introspect(shop)
    [composite] = [fk for fk in schema.table("shipments").foreign_keys if len(fk.columns) == 2]
    assert composite.ref_table == "public.stock"
    assert composite.ref_columns == ("warehouse_code", "product_id")
    [self_ref] = schema.table("customers").foreign_keys
    assert self_ref.ref_table == "public.customers"
    cycle = next(
        fk for fk in schema.table("orders").foreign_keys if fk.name == "orders_last_shipment_fk"
    )
    assert cycle.deferrable
    assert any("price >= " in c.expression for c in schema.table("products").checks)


def test_load_order_puts_parents_first_and_breaks_the_cycle(shop: psycopg.Connection[Any]) -> None:
    order = load_order(introspect(shop))
    position = {name: i for i, name in enumerate(order.tables)}
    assert position["public.customers"] < position["public.orders"]
    assert position["public.warehouses"] < position["public.stock"] < position["public.shipments"]
    assert position["public.orders"] < position["public.order_lines"]
    assert order.broken == {("public.orders", "orders_last_shipment_fk")}


def test_a_materialized_views_unique_index_is_not_a_tables(
    pg_server: PgServer, capsys: pytest.CaptureFixture[str]
) -> None:
    """Django and Rails apps index a materialized view to refresh it concurrently.

    The unique-index query found the view's index, the column query reads
    tables only: both seed synthetic and seed inspect died with a KeyError.
    """
    url = pg_server.create_database("matview_unique")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("""
            CREATE TABLE sales (id int PRIMARY KEY, region text NOT NULL, amount int NOT NULL);
            CREATE MATERIALIZED VIEW totals AS
                SELECT region, sum(amount) AS total FROM sales GROUP BY region;
            CREATE UNIQUE INDEX totals_region ON totals (region);
        """)
    assert main(["seed", "synthetic", "--database-url", url, "--rows", "20"]) == 0
    with psycopg.connect(url) as conn:
        refreshed = conn.execute("SELECT count(*) FROM totals").fetchone()
        regions = conn.execute("SELECT count(DISTINCT region) FROM sales").fetchone()
    assert refreshed == regions, "the view shows the seeded rows"
    assert main(["seed", "inspect", url]) == 0
    assert "Traceback" not in capsys.readouterr().err
