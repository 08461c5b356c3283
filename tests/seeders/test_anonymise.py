"""Anonymised copies: privacy by default, determinism, joins kept, leaks caught."""

from __future__ import annotations

import dataclasses
import hmac
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from typing import Any

import psycopg
import pytest
from psycopg import sql

from seeders.anonymise import anonymiser
from seeders.anonymise.anonymiser import Anonymiser, LeakDetected
from seeders.anonymise.rules import Rule, Rules, RulesError, parse_rules
from seeders.schema.introspect import introspect
from seeders.synthetic.generator import SyntheticConfig, SyntheticGenerator, seed_database
from seeders.synthetic.values import faker_pool, unescape
from tests.pg_server import PgServer
from tests.seeders.connections import (
    SALT,
    copy_between,
    copy_connections,
    databases,
    rows,
    rules_for,
)
from tests.seeders.shop_data import RULES


@pytest.fixture
def connections(source: str, target: str) -> Iterator[tuple[Any, Any, Any]]:
    with copy_connections(source, target) as conns:
        yield conns


def run(connections: tuple[Any, Any, Any], rules: Rules, salt: bytes = SALT) -> Any:
    return Anonymiser(*connections, rules, salt).run()


def test_copies_every_table_and_transforms_personal_data(
    connections: Any, source: str, target: str
) -> None:
    report = run(connections, parse_rules(RULES))
    assert report.rows["public.customers"] == 200
    assert report.rows["public.orders"] == 300
    assert report.leak_hits == {}
    assert report.digests > 0
    emails = [r[0] for r in rows(target, "SELECT email FROM customers")]
    assert all("corp.example" not in e for e in emails)
    assert len(set(emails)) == 200, "unique column stays unique"
    # '+49 30 12341' with keep_last: 2
    assert rows(target, "SELECT phone FROM customers WHERE id = 1") == [("*" * 10 + "41",)]
    assert rows(target, "SELECT count(*) FROM customers WHERE profile IS NOT NULL") == [(0,)]
    assert rows(target, "SELECT shipping_address FROM orders WHERE id = 7") == [
        ("7 Example Street",)
    ]


def test_pseudonymised_keys_still_join(connections: Any, target: str) -> None:
    run(connections, parse_rules(RULES))
    orphans = rows(
        target,
        "SELECT count(*) FROM shipments s LEFT JOIN stock k ON (k.warehouse_code, k.product_id)"
        " = (s.warehouse_code, s.product_id) WHERE k.product_id IS NULL",
    )
    assert orphans == [(0,)]
    codes = {r[0] for r in rows(target, "SELECT code FROM warehouses")}
    assert codes.isdisjoint({"BER-1", "HAM-2"})


def test_same_salt_same_output_other_salt_other_output(
    connections: Any, pg_server: PgServer, target: str
) -> None:
    run(connections, parse_rules(RULES))
    first = rows(target, "SELECT id, email, full_name, created_at FROM customers ORDER BY id")
    run(connections, parse_rules(RULES))
    assert (
        rows(target, "SELECT id, email, full_name, created_at FROM customers ORDER BY id") == first
    )
    run(connections, parse_rules(RULES), salt=b"other")
    assert (
        rows(target, "SELECT id, email, full_name, created_at FROM customers ORDER BY id") != first
    )


def test_unruled_columns_are_refused_before_writing(connections: Any, target: str) -> None:
    rules = parse_rules(RULES | {"tables": RULES["tables"] | {"orders": {"id": "keep"}}})
    with pytest.raises(RulesError) as info:
        run(connections, rules)
    problems = "\n".join(info.value.problems)
    for column in ("customer_id", "status", "placed_on", "shipping_address", "last_shipment_id"):
        assert f"public.orders.{column}: no rule" in problems
    assert rows(target, "SELECT count(*) FROM customers") == [(0,)]


def test_rule_type_mismatch_and_null_on_not_null_are_refused(connections: Any) -> None:
    tables = RULES["tables"] | {
        "products": RULES["tables"]["products"] | {"price": {"fake": "name"}, "name": "null"},
    }
    with pytest.raises(RulesError) as info:
        run(connections, parse_rules(RULES | {"tables": tables}))
    problems = "\n".join(info.value.problems)
    assert "public.products.price: rule 'fake' needs a text column" in problems
    assert "public.products.name: rule 'null' on a NOT NULL column" in problems


def test_noise_on_money_is_refused_before_anything_is_written(pg_server: PgServer) -> None:
    ddl = "CREATE TABLE fees (id int PRIMARY KEY, amount money)"
    source, target = databases(pg_server, "money", ddl, "INSERT INTO fees VALUES (1, 12.5)")
    with pytest.raises(RulesError, match="'noise' does not take money"):
        copy_between(source, target, rules_for({"fees": {"id": "keep", "amount": {"noise": 0.1}}}))
    # Other rules copy money as it is.
    copy_between(source, target, rules_for({"fees": {"id": "keep", "amount": "keep"}}))
    assert rows(target, "SELECT amount::numeric FROM fees") == [(Decimal("12.50"),)]


def test_a_composite_column_takes_only_whole_rules_that_write_a_row_of_its_type(
    pg_server: PgServer,
) -> None:
    """Before, a fake street or a hash for an address failed the copy mid-way (not a row)."""
    ddl = """
        CREATE TYPE address AS (street text, city text, postcode text);
        CREATE TABLE people (id int PRIMARY KEY, home address NOT NULL, work address);
    """
    fill = "INSERT INTO people VALUES (1, ROW('1 Main St', 'Berlin', '10115'), NULL)"
    source, target = databases(pg_server, "composite_rules", ddl, fill)
    for rule in ({"fake": "street_address"}, "hash", "redact", {"mask": {"keep_last": 2}},
                 {"template": "{id}"}):  # fmt: skip
        with pytest.raises(RulesError) as info:
            copy_between(source, target, rules_for({"people": {"id": "keep", "home": rule,
                                                               "work": "null"}}))  # fmt: skip
        assert info.value.problems == [
            "public.people.home: a column of composite type public.address takes keep, null,"
            " constant (a row literal, e.g. {constant: '(,,)'}: every field NULL) or a rule per"
            " field ({fields: {FIELD: RULE, ...}})"
        ]
        assert rows(target, "SELECT count(*) FROM people") == [(0,)]
    blank = {"id": "keep", "home": {"constant": "(,,)"}, "work": "null"}
    assert copy_between(source, target, rules_for({"people": blank})).leak_hits == {}
    assert rows(target, "SELECT (home).street IS NULL, (home).city IS NULL FROM people") == [
        (True, True)
    ]


COMPOSITE_PEOPLE = """
    CREATE TYPE address AS (street text, city varchar(20), postcode char(5), floor int);
    CREATE TYPE contact AS (email text, home address, since date, score numeric(4, 1));
    CREATE TABLE people (id int PRIMARY KEY, home address NOT NULL, reach contact);
"""
COMPOSITE_ROWS = """
    INSERT INTO people SELECT g, ROW(g || ' Secret Road', 'Berlin', '10115', g % 9)::address,
        ROW('p' || g || '@corp.example', ROW(g || ' Hidden Lane', 'Köln', '50667', 2)::address,
            date '2020-01-01' + g, 50.5)::contact
    FROM generate_series(1, 40) g;
    UPDATE people SET reach = NULL WHERE id = 40;
"""
FIELD_RULES = {
    "id": "keep",
    "home": {"fields": {"street": {"fake": "street_address"}, "city": "keep",
                        "postcode": {"mask": {"keep_first": 2}}, "floor": "hash"}},
    "reach": {"fields": {"email": {"fake": "email"}, "since": {"date_shift": {"max_days": 30}},
                         "score": {"noise": 0.1},
                         "home": {"fields": {"street": "hash", "city": {"constant": "Town"},
                                             "postcode": "null", "floor": "keep"}}}},
}  # fmt: skip


def test_a_composite_column_is_anonymised_field_by_field(pg_server: PgServer) -> None:
    """Each field by its own rule, at any depth; the row stays of its type, NULL stays NULL."""
    source, target = databases(pg_server, "composite_fields", COMPOSITE_PEOPLE, COMPOSITE_ROWS)
    first = copy_between(source, target, rules_for({"people": FIELD_RULES}))
    assert (first.leak_hits, first.rows["public.people"]) == ({}, 40)
    out = rows(
        target,
        "SELECT (home).street, (home).city, (home).postcode, (home).floor, (reach).email,"
        " (reach).since, (reach).score, ((reach).home).street, ((reach).home).city,"
        " ((reach).home).postcode, ((reach).home).floor FROM people WHERE id = 7",
    )
    street, city, postcode, floor, email, since, score, inner, town, code, level = out[0]
    assert (city, postcode, town, code, level) == ("Berlin", "10***", "Town", None, 2)
    assert "Secret" not in street
    assert "Hidden" not in inner
    assert floor != 7
    assert "corp.example" not in email
    assert "@" in email
    assert 1 <= abs(since - date(2020, 1, 8)).days <= 30
    assert 0 < abs(score - Decimal("50.5")) <= Decimal("5.1")
    assert rows(target, "SELECT reach IS NULL FROM people WHERE id = 40") == [(True,)]
    # Deterministic: the same salt gives the same rows.
    before = rows(target, "SELECT * FROM people ORDER BY id")
    copy_between(source, target, rules_for({"people": FIELD_RULES}))
    assert rows(target, "SELECT * FROM people ORDER BY id") == before


def test_a_field_without_a_rule_is_refused_like_a_column(pg_server: PgServer) -> None:
    source, target = databases(pg_server, "composite_unruled", COMPOSITE_PEOPLE, COMPOSITE_ROWS)
    home = {"fields": {"street": "keep", "cty": "keep", "postcode": {"noise": 0.1},
                       "floor": "keep"}}  # fmt: skip
    with pytest.raises(RulesError) as info:
        copy_between(source, target, rules_for({"people": {"id": "keep", "home": home,
                                                           "reach": {"fields": {}}}}))  # fmt: skip
    assert info.value.problems == [
        "rules: tables.people.reach: fields takes a mapping of field: rule, e.g. {fields:"
        " {street: {fake: street_address}, city: keep}}"
    ]
    with pytest.raises(RulesError) as info:
        copy_between(source, target, rules_for({"people": {"id": "keep", "home": home,
                                                           "reach": "null"}}))  # fmt: skip
    assert info.value.problems == [
        "public.people.home.cty: no such field in public.address",
        "public.people.home.city: no rule (character varying(20)); add one, or 'keep' to copy"
        " it as is",
        "public.people.home.postcode: rule 'noise' needs a numeric column, not character(5)",
    ]
    assert rows(target, "SELECT count(*) FROM people") == [(0,)]


def test_a_fake_field_from_its_pool_is_no_leak_but_an_original_elsewhere_is(
    pg_server: PgServer,
) -> None:
    """A synthetic source's streets are the pool's own: faking them again leaks nothing."""
    pool = [unescape(v) for v in faker_pool("street_address", 0)]
    ddl = """
        CREATE TYPE address AS (street text, city text);
        CREATE TABLE people (id int PRIMARY KEY, home address, note text);
    """
    source, target = databases(pg_server, "composite_pool", ddl)
    with psycopg.connect(source, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO people VALUES (%s, ROW(%s, 'Berlin'), 'fine')",
            [(i, street) for i, street in enumerate(pool[:300], start=1)],
        )
    fields = {"fields": {"street": {"fake": "street_address"}, "city": "keep"}}
    rules = rules_for({"people": {"id": "keep", "home": fields, "note": "keep"}})
    assert copy_between(source, target, rules).leak_hits == {}
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE people SET note = (home).street WHERE id = 3")
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    assert info.value.hits == {"public.people.note": 1}


def test_fk_and_key_must_share_a_rule(connections: Any) -> None:
    tables = RULES["tables"] | {"stock": RULES["tables"]["stock"] | {"warehouse_code": "keep"}}
    with pytest.raises(RulesError, match="give both the same rule"):
        run(connections, parse_rules(RULES | {"tables": tables}))


def test_leak_check_catches_pii_a_rule_forgot(connections: Any, source: str, target: str) -> None:
    # Plant customers' e-mail addresses in a column whose rule keeps it.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute(
            "UPDATE products SET name = (SELECT email FROM customers WHERE id = products.id)"
        )
    run_rules = parse_rules(RULES)
    with pytest.raises(LeakDetected) as info:
        run(connections, run_rules)
    assert info.value.hits == {"public.products.name": 20}
    assert rows(target, "SELECT count(*) FROM products") == [(0,)], "rolled back"


def test_a_kept_column_of_public_reference_data_can_be_left_out_of_the_search(
    pg_server: PgServer,
) -> None:
    """A country list holds "Jordan"; a customer may be called that. Before, no way out."""
    ddl = """
        CREATE TABLE countries (code text PRIMARY KEY, name text NOT NULL);
        CREATE TABLE customers (id int PRIMARY KEY, first_name text NOT NULL,
                                country text REFERENCES countries);
        INSERT INTO countries VALUES ('JO', 'Jordan'), ('GE', 'Georgia'), ('FR', 'France');
        INSERT INTO customers VALUES (1, 'Jordan', 'JO'), (2, 'Georgia', 'GE'),
                                     (3, 'Camille', 'FR');
    """
    source, target = databases(pg_server, "public_reference", ddl)
    tables = {
        "countries": {"code": "keep", "name": "keep"},
        "customers": {"id": "keep", "first_name": {"fake": "first_name"}, "country": "keep"},
    }
    with pytest.raises(LeakDetected, match=r"leak_check: false") as info:
        copy_between(source, target, rules_for(tables))
    assert info.value.hits == {"public.countries.name": 2}
    tables["countries"]["name"] = {"keep": {"leak_check": False}}
    report = copy_between(source, target, rules_for(tables))
    assert report.leak_hits == {}
    assert rows(target, "SELECT name FROM countries ORDER BY code") == [
        ("France",),
        ("Georgia",),
        ("Jordan",),
    ]
    # Only that column: the same names planted anywhere else are still found.
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("ALTER TABLE customers ADD nick text")
        conn.execute("UPDATE customers SET nick = first_name")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("ALTER TABLE customers ADD nick text")
    tables["customers"]["nick"] = "keep"
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules_for(tables))
    assert info.value.hits == {"public.customers.nick": 3}


def test_a_rules_options_are_checked_not_ignored() -> None:
    """Before, ``keep_frist`` masked everything silently and ``{mask: 3}`` raised a TypeError."""
    columns = {
        "a": {"mask": {"keep_frist": 2}},
        "b": {"mask": 3},
        "c": {"date_shift": {"max_days": "a lot"}},
        "d": {"keep": {"leak_check": "no"}},
        "e": {"mask": {"char": "**"}},
        "f": {"date_shift": {"max_days": 0}},
        "g": {"hash": {"length": -1}},
        "ok": {"mask": {"keep_first": 1, "keep_last": 2, "char": "#"}},
    }
    with pytest.raises(RulesError) as info:
        parse_rules({"version": 1, "tables": {"people": columns}})
    assert [p.split(": ", 2)[1] for p in info.value.problems] == [
        f"tables.people.{c}" for c in "abcdefg"
    ]
    assert "its options: keep_first, keep_last, char" in info.value.problems[0]
    kept = parse_rules({"version": 1, "tables": {"t": {"c": {"keep": {"leak_check": True}}}}})
    assert kept.tables["t"]["c"] == Rule("keep", {})  # what plain keep does


def test_leak_check_looks_inside_arrays_and_json_documents(pg_server: PgServer) -> None:
    """An original e-mail kept as an array element or deep in a JSON document is a leak."""
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, phone bigint);
        CREATE TABLE events (id int PRIMARY KEY, cc text[], payload jsonb, raw json);
    """
    fill = """
        INSERT INTO people VALUES (1, 'alice@corp.example', 4930123456),
                                  (2, 'bob@corp.example', NULL);
        INSERT INTO events VALUES
            (1, ARRAY['team@x.example', 'alice@corp.example'], '{"ok": true}', '[]'),
            (2, '{{a,b},{c,bob@corp.example}}', '{"to": [{"mail": "bob@corp.example"}]}', '{}'),
            (3, '{}', '{"phone": 4930123456, "note": "alice@corp.example is fine"}',
             '{"deep": {"er": ["alice@corp.example"]}}'),
            (4, '{}', '{"roles": {"bob@corp.example": "admin"}}', '{}');
    """
    source, target = databases(pg_server, "leak_containers", ddl, fill)
    rules = rules_for(
        {
            "people": {"id": "keep", "email": {"fake": "email"}, "phone": "hash"},
            "events": {"id": "keep", "cc": "keep", "payload": "keep", "raw": "keep"},
        }
    )
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    # Elements, leaf values and keys, at any depth; not substrings of longer text.
    assert info.value.hits == {
        "public.events.cc": 2,
        "public.events.payload": 3,
        "public.events.raw": 1,
    }
    assert rows(target, "SELECT count(*) FROM events") == [(0,)]


@pytest.mark.parametrize(
    ("per_query", "group"),
    [(anonymiser.PROBES_PER_QUERY, anonymiser.APPEND_GROUP), (anonymiser.PROBES_PER_QUERY, 2),
     (2, anonymiser.APPEND_GROUP), (1, anonymiser.APPEND_GROUP)],
)  # fmt: skip
def test_leak_check_counts_each_tables_hits_however_its_probes_are_split(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, per_query: int, group: int
) -> None:
    """Every table's columns are searched in one probe (the fingerprints hashed once), or in as
    many as PROBES_PER_QUERY asks: the same hits, each counted once against its own column,
    even where one column's whole values and its elements land in different probes. Scans
    nested in groups of two (groups of groups, as a schema of thousands of columns gets them)
    find the same."""
    monkeypatch.setattr(anonymiser, "PROBES_PER_QUERY", per_query)
    monkeypatch.setattr(anonymiser, "APPEND_GROUP", group)
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL);
        CREATE TABLE notes (id int PRIMARY KEY, body text, cc text[]);
        CREATE TABLE codes (code text PRIMARY KEY);
        CREATE TABLE audit (id int PRIMARY KEY, actor text);
    """
    fill = """
        INSERT INTO people VALUES (1, 'alice@corp.example', 'Alice Anders'),
                                  (2, 'bob@corp.example', 'Bobby Brown');
        INSERT INTO notes VALUES (1, 'Alice Anders', ARRAY['bob@corp.example']),
                                 (2, 'nothing to see', ARRAY['alice@corp.example', 'x']),
                                 (3, 'bob@corp.example', '{}');
        INSERT INTO codes VALUES ('short'), ('harmless');
        INSERT INTO audit VALUES (1, 'Bobby Brown'), (2, 'system'), (3, 'Bobby Brown');
    """
    source, target = databases(pg_server, f"leak_split_{per_query}_{group}", ddl, fill)
    rules = rules_for(
        {
            "people": {"id": "keep", "email": {"fake": "email"}, "name": {"fake": "name"}},
            "notes": {"id": "keep", "body": "keep", "cc": "keep"},
            "codes": {"code": "keep"},
            "audit": {"id": "keep", "actor": "keep"},
        }
    )
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    assert info.value.hits == {
        "public.notes.body": 2,
        "public.notes.cc": 2,
        "public.audit.actor": 2,
    }
    assert rows(target, "SELECT count(*) FROM notes") == [(0,)]


def test_leak_check_finds_an_original_whatever_the_case_of_its_letters(
    pg_server: PgServer,
) -> None:
    """ASP.NET Identity keeps every e-mail again upper-cased, in ``NormalizedEmail``: rules
    that keep it leak them all. Before, the check compared exact text and found none."""
    ddl = """
        CREATE TABLE "AspNetUsers" (
            "Id" int PRIMARY KEY, "Email" text, "NormalizedEmail" text, "Note" text
        )
    """
    fill = """
        INSERT INTO "AspNetUsers" VALUES
            (1, 'Alice.Anders@Corp.example', 'ALICE.ANDERS@CORP.EXAMPLE', 'first'),
            (2, 'bob.brown@corp.example', 'BOB.BROWN@CORP.EXAMPLE', 'alice.anders@corp.example'),
            (3, NULL, NULL, 'nothing to see');
    """
    source, target = databases(pg_server, "leak_case", ddl, fill)
    ruled = {"Id": "keep", "Email": {"fake": "email"}, "Note": "keep"}
    with pytest.raises(LeakDetected) as info:
        copy_between(
            source, target, rules_for({"AspNetUsers": ruled | {"NormalizedEmail": "keep"}})
        )
    assert info.value.hits == {
        "public.AspNetUsers.NormalizedEmail": 2,
        "public.AspNetUsers.Note": 1,
    }
    assert rows(target, 'SELECT count(*) FROM "AspNetUsers"') == [(0,)]
    with pytest.raises(LeakDetected) as info:  # the note's lower-cased copy still counts
        copy_between(
            source, target, rules_for({"AspNetUsers": ruled | {"NormalizedEmail": "null"}})
        )
    assert info.value.hits == {"public.AspNetUsers.Note": 1}


def test_leak_check_reads_the_lexemes_of_a_search_vector_a_trigger_kept(
    pg_server: PgServer,
) -> None:
    """pg_search's and Django's ``tsvector`` columns hold the row's words: kept, a leak.

    Before, the vector was searched only as its whole text and nothing was found.
    """
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, name text NOT NULL,
                             search tsvector);
        CREATE FUNCTION people_search() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN NEW.search := to_tsvector('simple', NEW.name || ' ' || NEW.email); RETURN NEW; END
        $$;
        CREATE TRIGGER people_search BEFORE INSERT OR UPDATE ON people
            FOR EACH ROW EXECUTE FUNCTION people_search();
    """
    fill = """
        INSERT INTO people (id, email, name) VALUES (1, 'alice@corp.example', 'Alice Real'),
            (2, 'bob@corp.example', 'Bob Real'), (3, 'carol@corp.example', 'Carol Real');
    """
    source, target = databases(pg_server, "leak_tsvector", ddl, fill)
    ruled = {"id": "keep", "email": {"fake": "email"}, "name": {"fake": "name"}}
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules_for({"people": ruled | {"search": "keep"}}))
    assert info.value.hits == {"public.people.search": 3}  # the e-mails, as lexemes
    assert rows(target, "SELECT count(*) FROM people") == [(0,)]
    copy_between(source, target, rules_for({"people": ruled | {"search": "null"}}))
    assert rows(target, "SELECT count(*) FROM people WHERE search IS NULL") == [(3,)]


def test_leak_check_reads_each_key_and_value_of_an_hstore(pg_server: PgServer) -> None:
    """An older Rails app's ``properties hstore`` kept an original e-mail as a value."""
    ddl = """
        CREATE EXTENSION IF NOT EXISTS hstore;
        CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL, properties hstore);
    """
    fill = """
        INSERT INTO people VALUES (1, 'alice@corp.example', 'contact=>alice@corp.example'),
            (2, 'bob@corp.example', '"bob@corp.example"=>owner, plan=>pro'),
            (3, 'c@x.example', NULL);
    """
    source, target = databases(pg_server, "leak_hstore", ddl, fill)
    ruled = {"id": "keep", "email": {"fake": "email"}}
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules_for({"people": ruled | {"properties": "keep"}}))
    assert info.value.hits == {"public.people.properties": 2}  # a value, and a key
    copy_between(source, target, rules_for({"people": ruled | {"properties": "null"}}))
    assert rows(target, "SELECT count(*) FROM people WHERE properties IS NULL") == [(3,)]


def test_leak_check_reads_every_text_field_of_composite_values(pg_server: PgServer) -> None:
    """An original kept as a field of a row value, of one inside it or of an array's element."""
    ddl = """
        CREATE TYPE address AS (street text, city text);
        CREATE TYPE contact AS (email text, home address, tags text[]);
        CREATE TABLE people (id int PRIMARY KEY, email text NOT NULL);
        CREATE TABLE orders (id int PRIMARY KEY, buyer contact, past contact[]);
    """
    fill = """
        INSERT INTO people VALUES (1, 'alice@corp.example'), (2, '9 Secret Road');
        INSERT INTO orders VALUES
            (1, ROW('alice@corp.example', ROW('1 Main St', 'Berlin'), '{}'), '{}'),
            (2, ROW('x@y.example', ROW('9 Secret Road', 'Berlin'), '{}'),
             ARRAY[ROW('z@y.example', ROW('2 Side St', 'Köln'), '{}')::contact,
                   ROW('alice@corp.example', NULL, '{}')::contact]),
            (3, ROW('fine@y.example', NULL, '{alice@corp.example}'), '{}'),
            (4, ROW('fine@y.example', ROW('1 Main St', 'Berlin'), '{}'), NULL);
    """
    source, target = databases(pg_server, "leak_composites", ddl, fill)
    rules = rules_for(
        {
            "people": {"id": "keep", "email": {"fake": "email"}},
            "orders": {"id": "keep", "buyer": "keep", "past": "keep"},
        }
    )
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    # The e-mail (row 1), the street of the home (row 2), the tags' whole text (row 3,
    # read as "{alice@corp.example}": no hit), the array element's e-mail (row 2's past).
    assert info.value.hits == {"public.orders.buyer": 2, "public.orders.past": 1}
    assert rows(target, "SELECT count(*) FROM orders") == [(0,)]


def test_values_a_rule_writes_from_no_original_are_no_leak_in_its_column(
    pg_server: PgServer,
) -> None:
    """A fake from its pool, a constant: no leak in their own column, even equal to originals.

    Real data holds names a Faker pool holds too: here every source name is
    one of the pool's, and every plan is the constant its rule writes. An
    original copied elsewhere is still caught. A ``character(n)`` column
    reads its values back without trailing spaces: a fake cut to fit
    ("Amy Lee Smith" → "Amy Lee ") is still the rule's own there.
    """
    pool = [unescape(v) for v in faker_pool("name", 0)]
    ddl = """
        CREATE TABLE people (
            id int PRIMARY KEY, name text NOT NULL, nick varchar(8), short char(8),
            plan text DEFAULT 'standard'
        );
        CREATE TABLE notes (id int PRIMARY KEY, body text, tier text DEFAULT 'standard');
    """
    source, target = databases(pg_server, "fake_collisions", ddl)
    with psycopg.connect(source, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO people (id, name, nick, short) VALUES (%s, %s, %s, %s)",
            [(i, name, name[:8], name[:8]) for i, name in enumerate(pool, start=1)],
        )
        cur.execute("INSERT INTO notes (id, body) VALUES (1, 'fine'), (2, %s)", (pool[41],))
    rules = rules_for(
        {
            "people": {
                "id": "keep",
                "name": {"fake": "name"},
                "nick": {"fake": "name"},
                "short": {"fake": "name"},
                "plan": {"constant": "standard"},  # which is also every row's original
            },
            "notes": {"id": "keep", "body": "keep", "tier": "keep"},
        }
    )
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    # Only where an original was copied: the fakes and the constant are the rules' own.
    assert info.value.hits == {"public.notes.body": 1, "public.notes.tier": 2}
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE notes SET body = 'also fine', tier = 'gold' WHERE id = 2")
        conn.execute("UPDATE notes SET tier = 'silver' WHERE id = 1")
    report = copy_between(source, target, rules)
    assert report.leak_hits == {}
    written = {name for (name,) in rows(target, "SELECT name FROM people")}
    assert len(written & set(pool)) > 500, "the fakes are the pool's own values"


def test_cli_refuses_a_missing_salt_and_runs_with_one(
    source: str, target: str, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    import json

    import yaml

    from envs.cli.main import main

    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(RULES))
    args = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(rules)]
    monkeypatch.delenv("PREVIEW_ANONYMISE_SALT", raising=False)
    assert main(args) == 2
    assert "PREVIEW_ANONYMISE_SALT" in capsys.readouterr().err
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    assert main([*args, "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows"]["public.customers"] == 200
    assert summary["leak_check"]["hits"] == {}
    assert main([*args, "--jobs", "1", "--json"]) == 0, "one connection, no parallel readers"
    alone = json.loads(capsys.readouterr().out)
    assert alone["rows"] == summary["rows"]
    assert alone["leak_check"] == summary["leak_check"]
    assert summary["skipped"] == []
    rules.write_text(yaml.safe_dump(RULES | {"tables": RULES["tables"] | {"order_lines": "skip"}}))
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "(1 skipped, left empty)" in printed
    assert "leak check:" in printed


def test_noise_stays_within_its_ratio_and_never_returns_the_original(
    pg_server: PgServer,
) -> None:
    ddl = "CREATE TABLE readings (id int PRIMARY KEY, n int, r real, m numeric(8, 1))"
    fill = (
        "INSERT INTO readings SELECT g, g * 10, g * 1.5, g / 10.0 FROM generate_series(1, 500) g;"
        "INSERT INTO readings VALUES (501, NULL, NULL, NULL)"
    )
    urls = databases(pg_server, "noise", ddl, fill)
    noisy = {"noise": 0.2}
    rules = rules_for({"readings": {"id": "keep", "n": noisy, "r": noisy, "m": noisy}})
    copy_between(*urls, rules)
    original = {r[0]: r[1:] for r in rows(urls[0], "SELECT * FROM readings")}
    for id_, *values in rows(urls[1], "SELECT * FROM readings"):
        before = original[id_]
        if id_ == 501:
            assert values == [None, None, None], "NULL stays NULL"
            continue
        for old, new in zip(before, values, strict=True):
            assert new != old
            # Within 20 %, plus the one step a rounded-away noise moves.
            assert abs(float(new) - float(old)) <= 0.2 * abs(float(old)) + 1


def test_noise_stays_inside_the_range_the_columns_checks_allow(pg_server: PgServer) -> None:
    """Before, a discount of 100 noised up to 104 failed the whole copy on the check."""
    ddl = """
        CREATE DOMAIN stars AS smallint CHECK (VALUE BETWEEN 1 AND 5);
        CREATE TABLE offers (
            id int PRIMARY KEY,
            rating int CHECK (rating BETWEEN 1 AND 5),
            discount numeric(5, 2) CHECK (discount >= 0 AND discount <= 100),
            share real CHECK (share > 0 AND share < 1),
            debt int CHECK (debt <= 0),
            given stars
        )
    """
    fill = """
        INSERT INTO offers SELECT g, 1 + g % 5, (g % 3) * 50, CASE WHEN g % 2 = 0 THEN 0.999
               ELSE 0.0001 END, -(g % 4), 1 + g % 5
        FROM generate_series(1, 300) g
    """
    urls = databases(pg_server, "noise_checks", ddl, fill)
    noisy = {"noise": 0.2}
    columns = dict.fromkeys(("rating", "discount", "share", "debt", "given"), noisy)
    copy_between(*urls, rules_for({"offers": {"id": "keep", **columns}}))  # the checks hold
    query = "SELECT id, rating, discount, share, debt, given FROM offers ORDER BY id"
    for before, after in zip(rows(urls[0], query), rows(urls[1], query), strict=True):
        for old, new in zip(before[1:], after[1:], strict=True):
            assert new != old
            assert abs(float(new) - float(old)) <= 0.2 * abs(float(old)) + 1
    ranges = "SELECT min(rating), max(rating), min(discount), max(discount), max(debt) FROM offers"
    low_rating, high_rating, low_discount, high_discount, high_debt = rows(urls[1], ranges)[0]
    assert 1 <= low_rating <= high_rating <= 5
    assert 0 <= low_discount <= high_discount <= 100  # 0 and 100 moved, inwards
    assert high_debt <= 0


def test_date_shift_keeps_to_the_dates_the_columns_checks_allow(pg_server: PgServer) -> None:
    """Before, a birthday of last week shifted into the future failed the whole copy."""
    ddl = """
        CREATE TABLE patients (
            id int PRIMARY KEY,
            born date NOT NULL CHECK (born <= CURRENT_DATE),
            seen timestamptz CHECK (seen <= now()),
            since date CHECK (since >= '2000-01-01' AND since <= CURRENT_DATE)
        )
    """
    fill = """
        INSERT INTO patients SELECT g, CURRENT_DATE - g % 10, now() - (g % 10) * interval '1 day',
               DATE '2000-01-01' + g % 10
        FROM generate_series(1, 200) g
    """
    urls = databases(pg_server, "shift_checks", ddl, fill)
    shifted = {"date_shift": {"max_days": 30}}
    rules = rules_for({"patients": {"id": "keep", "born": shifted, "seen": shifted,
                                    "since": shifted}})  # fmt: skip
    copy_between(*urls, rules)  # every check held on every row
    query = "SELECT id, born, seen, since FROM patients ORDER BY id"
    moved = 0
    for before, after in zip(rows(urls[0], query), rows(urls[1], query), strict=True):
        for old, new in zip(before[1:], after[1:], strict=True):
            assert new != old
            assert abs((new - old).days) <= 30
            moved += 1
    assert moved == 600


def test_a_rule_whose_values_a_check_refuses_is_named_with_the_way_out(
    pg_server: PgServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """Before, the run failed with the server's bare "violates check constraint"."""
    import yaml

    from envs.cli.main import main

    ddl = "CREATE TABLE users (id int PRIMARY KEY, email text CHECK (email LIKE '%@%'))"
    fill = "INSERT INTO users SELECT g, 'u' || g || '@corp.example' FROM generate_series(1, 50) g"
    source, target = databases(pg_server, "refused_rule", ddl, fill)
    path = tmp_path / "rules.yaml"
    masked = {"version": 1, "tables": {"users": {"id": "keep", "email": {"mask": {}}}}}
    path.write_text(yaml.safe_dump(masked))
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    args = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(path)]
    capsys.readouterr()
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "public.users.email: rule 'mask' gives values its check users_email_check" in err
    assert "nothing was written" in err
    assert rows(target, "SELECT count(*) FROM users") == [(0,)]
    masked["tables"]["users"]["email"] = {"fake": "email"}
    path.write_text(yaml.safe_dump(masked))
    assert main(args) == 0


def test_text_crosses_databases_of_different_encodings_intact(pg_server: PgServer) -> None:
    """A UTF-8 source and a LATIN1 target: the bytes in between are UTF-8 both ways."""
    ddl = "CREATE TABLE towns (id int PRIMARY KEY, name text, code text)"
    fill = "INSERT INTO towns VALUES (1, 'Düsseldorf', 'Köln-Süd 1'), (2, 'Zürich', 'x')"
    source, target = databases(pg_server, "encoding", ddl, fill, target_encoding="LATIN1")
    rules = rules_for({"towns": {"id": "keep", "name": "keep", "code": "hash"}})
    copy_between(source, target, rules)  # the target's client encoding: LATIN1 by default
    assert rows(target, "SELECT name FROM towns ORDER BY id") == [("Düsseldorf",), ("Zürich",)]
    hashed = rows(target, "SELECT code FROM towns WHERE id = 1")[0][0]
    assert hashed == hmac.new(SALT, "hash\0Köln-Süd 1".encode(), "sha256").hexdigest()[:16]


@pytest.mark.parametrize("target_encoding", ["LATIN1", "UTF8"])
def test_the_leak_check_sees_non_ascii_originals_across_encodings(
    pg_server: PgServer, target_encoding: str
) -> None:
    """A fingerprint is of the characters, not of one server's bytes for them."""
    ddl = "CREATE TABLE people (id int PRIMARY KEY, name text, note text)"
    fill = (
        "INSERT INTO people VALUES (1, 'Jürgen Müller', 'ok'), (2, 'Zoë Ørsted', 'Jürgen Müller')"
    )
    source, target = databases(
        pg_server, f"leak_{target_encoding.lower()}", ddl, fill, target_encoding=target_encoding
    )
    rules = rules_for({"people": {"id": "keep", "name": {"fake": "name"}, "note": "keep"}})
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    assert info.value.hits == {"public.people.note": 1}
    assert rows(target, "SELECT count(*) FROM people") == [(0,)]


KINDS_DDL = """
    CREATE TYPE mood AS ENUM ('calm', 'busy');
    CREATE DOMAIN ints AS int[];
    CREATE TABLE kinds (
        id int PRIMARY KEY, small smallint UNIQUE, code varchar(12) UNIQUE, pad char(6),
        born date, seen timestamp, at time, price numeric(5, 2), ratio real, spent interval,
        feeling mood, scores int[], grid numeric[], span int4range, words tsvector,
        doc xml, blob bytea, token uuid, host inet, meta jsonb, nums ints, note text,
        flag boolean, big bigint
    );
"""
KINDS_FILL = """
    INSERT INTO kinds SELECT g, g - 500, 'code-' || g, 'ab', date '2024-02-29' + g,
        timestamp '2024-01-01 10:00' + g * interval '1 hour', time '08:30' + g * interval '1 min',
        (g % 900) + 0.99, g / 7.0, g * interval '1 day 2 hours',
        (ARRAY['calm', 'busy'])[1 + g % 2]::mood,
        ARRAY[g, NULL, -g], ARRAY[g / 3.0], int4range(g, g + 10), to_tsvector('simple', 'w' || g),
        ('<a n="' || g || '">é</a>')::xml, ('\\x' || lpad(to_hex(g), 4, '0'))::bytea,
        md5(g::text)::uuid, ('10.0.' || g % 250 || '.1')::inet,
        jsonb_build_object('g', g, 'ü', 'ö'),
        ARRAY[g], CASE WHEN g % 3 = 0 THEN NULL ELSE 'n' || g || E'\\t\\\\' END,
        g % 2 = 0, g * 1000003
    FROM generate_series(1, 300) g;
"""
KINDS_RULES = {
    "kinds": {
        "id": "keep", "small": "hash", "code": {"fake": "user_name"},
        "pad": {"mask": {"keep_first": 1}},
        "born": {"date_shift": {"max_days": 40}}, "seen": {"date_shift": {"max_days": 3}},
        "at": "keep", "price": {"noise": 0.3}, "ratio": {"noise": 0.2}, "spent": "keep",
        "feeling": "keep", "scores": "keep", "grid": "keep", "span": "keep", "words": "keep",
        "doc": "keep", "blob": "keep", "token": "keep", "host": "keep", "meta": "null",
        "nums": "keep", "note": {"template": "note {id}"}, "flag": {"constant": "true"},
        "big": "hash",
    }
}  # fmt: skip


def test_binary_rows_equal_text_rows_for_every_kind_of_column(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same copy, once as binary COPY rows and once as text: the same target."""
    source, target = databases(pg_server, "kinds", KINDS_DDL, KINDS_FILL)
    rules = rules_for(KINDS_RULES)
    dump = "SELECT k::text FROM kinds AS k ORDER BY id"
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        assert Anonymiser(src, dst, dst, rules, SALT).binary == {"public.kinds": True}
    copy_between(source, target, rules)
    binary = rows(target, dump)
    monkeypatch.setattr(anonymiser, "binary_form", lambda source, target: False)
    copy_between(source, target, rules)
    assert rows(target, dump) == binary
    assert len(binary) == 300


def test_tables_travel_as_text_unless_their_binary_form_is_portable(
    pg_server: PgServer,
) -> None:
    ddl = """
        CREATE TYPE mood AS ENUM ('calm', 'busy');
        CREATE TYPE pair AS (a int, b text);
        CREATE TABLE plain (id int PRIMARY KEY, m mood, t text);
        CREATE TABLE moods (id int PRIMARY KEY, m mood[]);
        CREATE TABLE pairs (id int PRIMARY KEY, p pair);
        CREATE TABLE widths (id int PRIMARY KEY, v varchar(10));
    """
    source, target = databases(pg_server, "forms", ddl)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("ALTER TABLE widths ALTER v TYPE varchar(20)")
    keep = {"id": "keep"}
    rules = rules_for(
        {"plain": keep | {"m": "keep", "t": "keep"}, "moods": keep | {"m": "keep"},
         "pairs": keep | {"p": "keep"}, "widths": keep | {"v": "keep"}}
    )  # fmt: skip
    with psycopg.connect(source) as src, psycopg.connect(target) as dst:
        forms = Anonymiser(src, dst, dst, rules, SALT).binary
    assert forms == {
        "public.plain": True,  # an enum travels as its label
        "public.moods": False,  # an array of enums carries the enum's OID
        "public.pairs": False,  # a composite carries its fields' OIDs
        "public.widths": False,  # not the same type on both sides
    }


def test_columns_named_like_the_transforms_helpers_are_copied(pg_server: PgServer) -> None:
    """A table's own ``i``, ``v``, ``head`` or ``tail`` next to a fake: no ambiguous name."""
    ddl = "CREATE TABLE t (id int PRIMARY KEY, i int, v text, head text, tail text, email text)"
    fill = """INSERT INTO t SELECT g, -g, 'v' || g, 'h', 't', 'p' || g || '@x.example'
              FROM generate_series(1, 50) g"""
    source, target = databases(pg_server, "helper_names", ddl, fill)
    keep = dict.fromkeys(["id", "i", "v", "head", "tail"], "keep")
    copy_between(source, target, rules_for({"t": keep | {"email": {"fake": "email"}}}))
    assert rows(target, "SELECT i, v, head, tail FROM t WHERE id = 7") == [(-7, "v7", "h", "t")]
    assert rows(target, "SELECT count(*) FROM t WHERE email LIKE '%@example.%'") == [(50,)]


def test_integer_keys_are_pseudonymised_within_their_type_and_still_join(
    pg_server: PgServer,
) -> None:
    ddl = """
        CREATE DOMAIN account_no AS integer;
        CREATE TABLE accounts (id int PRIMARY KEY, pin smallint UNIQUE, no account_no UNIQUE);
        CREATE TABLE payments (id bigint PRIMARY KEY, account_id int REFERENCES accounts);
    """
    fill = (
        "INSERT INTO accounts SELECT g, g - 32768, g FROM generate_series(1, 20000) g;"
        "INSERT INTO accounts VALUES (2147483647, 32767, 0), (-2147483648, 32766, -1);"
        "INSERT INTO payments SELECT g, 1 + g % 20000 FROM generate_series(1, 30000) g"
    )
    urls = databases(pg_server, "intkey", ddl, fill)
    rules = rules_for(
        {
            "accounts": {"id": "hash", "pin": "hash", "no": "hash"},
            "payments": {"id": "hash", "account_id": "hash"},
        }
    )
    report = copy_between(*urls, rules)
    assert report.rows == {"public.accounts": 20002, "public.payments": 30000}
    # The unique indexes were rebuilt, so 20 002 keys and pins stayed distinct.
    joined = rows(
        urls[1],
        "SELECT count(*) FROM payments p JOIN accounts a ON a.id = p.account_id",
    )
    assert joined == [(30000,)]
    same = rows(urls[1], "SELECT count(*) FROM accounts WHERE id BETWEEN 1 AND 20000")
    assert same[0][0] < 10, "a pseudonym is rarely its original"


def test_rules_that_cannot_fit_a_unique_or_short_column_are_refused(pg_server: PgServer) -> None:
    urls = databases(
        pg_server, "short", "CREATE TABLE codes (id int PRIMARY KEY, code varchar(4) UNIQUE)"
    )
    refused = {
        "hash": "public.codes.code: rule 'hash' needs room for 8 hex digits",
        "constant": "public.codes.code: rule 'constant' on a unique column",
    }
    for rule, message in refused.items():
        code = rule if rule == "hash" else {rule: "x"}
        rules = rules_for({"codes": {"id": "keep", "code": code}})
        with pytest.raises(RulesError) as info:
            copy_between(*urls, rules)
        assert message in str(info.value)


def test_unique_short_columns_keep_their_tags_whole(pg_server: PgServer) -> None:
    """A masked or faked unique value is shortened to fit, never its uniqueness tag."""
    ddl = (
        "CREATE TABLE handles (id int PRIMARY KEY, nick varchar(20) UNIQUE,"
        " email varchar(30) UNIQUE NOT NULL, code varchar(12) UNIQUE)"
    )
    fill = (
        "INSERT INTO handles SELECT g, 'nickname number ' || g,"
        " 'person' || g || '@corp.example', 'C' || g FROM generate_series(1, 5000) g"
    )
    urls = databases(pg_server, "tags", ddl, fill)
    rules = rules_for(
        {
            "handles": {
                "id": "keep",
                "nick": {"mask": {"keep_first": 2}},
                "email": {"fake": "email"},
                "code": {"mask": {}},
            }
        }
    )
    copy_between(*urls, rules)  # the unique indexes were rebuilt
    for nick, email in rows(urls[1], "SELECT nick, email FROM handles"):
        assert len(nick) <= 20
        assert nick.startswith("ni*")
        assert nick[-17] == "-", "a whole 16-digit tag"
        assert len(email) <= 30
        assert email.count("@") == 1


def test_noise_never_pushes_a_value_out_of_its_type(pg_server: PgServer) -> None:
    """Values at the edge of numeric(5, 2), smallint and real stay representable."""
    ddl = "CREATE TABLE edges (id int PRIMARY KEY, m numeric(5, 2), i smallint, r real)"
    fill = (
        "INSERT INTO edges SELECT g, 999.99 - g / 100.0, 32767 - g, 3.4e38"
        " FROM generate_series(0, 199) g;"
        "INSERT INTO edges SELECT g, -999.99, -32768, -3.4e38 FROM generate_series(200, 399) g"
    )
    urls = databases(pg_server, "edges", ddl, fill)
    noisy = {"noise": 0.05}
    rules = rules_for({"edges": {"id": "keep", "m": noisy, "i": noisy, "r": noisy}})
    copy_between(*urls, rules)  # the load refuses any value its column cannot hold
    original = {r[0]: r[1:] for r in rows(urls[0], "SELECT id, m, i FROM edges")}
    changed = rows(urls[1], "SELECT id, m, i FROM edges")
    assert len(changed) == 400
    for id_, m, i in changed:
        assert m != original[id_][0], "the original never survives, even at the bound"
        assert i != original[id_][1]


SETTINGS_DDL = """
    CREATE TYPE mood AS ENUM ('calm', 'busy');
    CREATE TABLE moments (
        id int PRIMARY KEY, born date, seen timestamptz, met timestamptz, at timestamp,
        spent interval, ratio float8, blob bytea, moods mood[], note text
    );
"""
SETTINGS_FILL = """
    INSERT INTO moments SELECT g, date '2024-01-01' + g * 3,
        timestamptz '2024-01-01 10:00+00' + g * interval '37 hours',
        timestamptz '2024-06-01 23:30+00' + g * interval '1 day',
        timestamp '2024-03-10 01:30' + g * interval '1 hour', g * interval '-1 day 2 hours',
        1.0 / g, ('\\x' || lpad(to_hex(g * 37), 4, '0'))::bytea, ARRAY['calm']::mood[], ''
    FROM generate_series(1, 120) g;
"""
SETTINGS_RULES = {
    "moments": {
        "id": "keep", "born": "keep", "seen": {"date_shift": {"max_days": 200}},
        "met": {"date_shift": {"max_days": 9, "by": "born"}}, "at": "keep", "spent": "keep",
        "ratio": {"noise": 0.1}, "blob": "keep", "moods": "keep",
        "note": {"template": "{born} {met} {spent} {blob}"},
    }
}  # fmt: skip
# Every setting that changes how a value is written as text, at its most unlike the defaults.
HOSTILE = {
    "source": {"DateStyle": "SQL, DMY", "TimeZone": "America/New_York",
               "IntervalStyle": "sql_standard", "extra_float_digits": "-3",
               "bytea_output": "escape"},
    "target": {"DateStyle": "German", "TimeZone": "Asia/Kolkata",
               "IntervalStyle": "iso_8601", "extra_float_digits": "0"},
}  # fmt: skip


def dump(url: str, query: str = "SELECT m::text FROM moments AS m ORDER BY id") -> list[Any]:
    """Rows as text, written the same way whatever the database's own settings."""
    with psycopg.connect(url) as conn:
        conn.execute(
            "SET DateStyle = ISO; SET TimeZone = UTC; SET IntervalStyle = postgres;"
            " SET extra_float_digits = 3; SET bytea_output = hex"
        )
        return conn.execute(query.encode()).fetchall()


def test_noise_that_rounds_back_moves_a_step_but_never_across_zero(pg_server: PgServer) -> None:
    """A quantity of 1 noised by 5 % rounds back to 1: it must still change, and stay > 0."""
    ddl = """
        CREATE TABLE lines (
            id int PRIMARY KEY, quantity int NOT NULL CHECK (quantity > 0),
            price numeric(8, 2) NOT NULL CHECK (price > 0), stock int CHECK (stock >= 0),
            debt numeric(8, 2) CHECK (debt < 0)
        );
    """
    fill = """
        INSERT INTO lines SELECT g, g, 0.01 * g, g - 1, -0.01 * g FROM generate_series(1, 300) g
    """
    urls = databases(pg_server, "zero_side", ddl, fill)
    tiny = {"noise": 0.001}  # rounds back for every value here
    rules = rules_for(
        {"lines": {"id": "keep", "quantity": tiny, "price": tiny, "stock": tiny, "debt": tiny}}
    )
    copy_between(*urls, rules)  # the checks hold for every row, or the load fails
    moves = rows(
        urls[1],
        "SELECT quantity - id, price - 0.01 * id, stock - (id - 1), debt + 0.01 * id"
        " FROM lines ORDER BY id",
    )
    assert len(moves) == 300
    steps = {(1,), (-1,), (Decimal("0.01"),), (Decimal("-0.01"),)}
    for column in range(4):
        assert all((m[column],) in steps for m in moves), "one step, never the original"
    first = moves[0]
    assert (first[0], first[1], first[2], first[3]) == (1, Decimal("0.01"), 1, Decimal("-0.01"))
    # Away from zero only next to it: elsewhere the step's direction is keyed.
    assert {m[0] for m in moves[1:]} == {1, -1}
    assert {m[1] for m in moves[1:]} == {Decimal("0.01"), Decimal("-0.01")}


@pytest.mark.parametrize("form", ["binary", "text"])
def test_copies_and_keyed_outputs_do_not_depend_on_the_servers_settings(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch, form: str
) -> None:
    """Values arrive unchanged and keyed outputs stay the same, whatever the servers' settings.

    DateStyle, TimeZone, IntervalStyle, extra_float_digits and bytea_output
    change how a session writes values as text: a date written '01/02/2024'
    by one server is read back as 2 January by another, and a shift keyed by
    a date's text moves with the server's DateStyle.
    """
    source, target = databases(pg_server, f"settings_{form}", SETTINGS_DDL, SETTINGS_FILL)
    if form == "text":
        monkeypatch.setattr(anonymiser, "binary_form", lambda source, target: False)
    rules = rules_for(SETTINGS_RULES)
    copy_between(source, target, rules)
    plain = dump(target)
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        for side, url in (("source", source), ("target", target)):
            name = url.rsplit("/", 1)[1]
            for setting, value in HOSTILE[side].items():
                admin.execute(
                    sql.SQL("ALTER DATABASE {} SET {} = {}").format(
                        sql.Identifier(name), sql.Identifier(setting), sql.Literal(value)
                    )
                )
    copy_between(source, target, rules)
    assert dump(target) == plain
    kept = "SELECT (id, born, at, spent, blob, moods)::text FROM moments ORDER BY id"
    assert dump(target, kept) == dump(source, kept)
    assert len(plain) == 120


def test_functions_of_the_databases_own_cannot_stand_in_for_the_built_in_ones(
    pg_server: PgServer,
) -> None:
    """A ``public.left(varchar, int)`` matches a varchar better than ``pg_catalog.left(text, int)``.

    Resolved by the default search_path, it would run instead of the
    built-in inside the transforms, and this one hands back the whole
    original: a mask that keeps one character would copy the name.
    """
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, name varchar(40), note text);
        CREATE FUNCTION public.left(character varying, integer) RETURNS text
            LANGUAGE sql AS 'SELECT $1::text';
    """
    fill = "INSERT INTO people VALUES (1, 'Jürgen Müller', 'ok'), (2, 'Zoë Ørsted', 'x')"
    source, target = databases(pg_server, "shadowed", ddl, fill)
    rules = rules_for(
        {"people": {"id": "keep", "name": {"mask": {"keep_first": 1}}, "note": "keep"}}
    )
    copy_between(source, target, rules)
    assert rows(target, "SELECT name FROM people ORDER BY id") == [
        ("J************",),
        ("Z*********",),
    ]


def test_a_target_without_a_schema_to_create_in_is_refused_before_writing(
    pg_server: PgServer,
) -> None:
    ddl = "CREATE TABLE t (id int PRIMARY KEY, email text)"
    source, target = databases(pg_server, "no_schema", ddl, "INSERT INTO t VALUES (1, 'a@b.c')")
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (7, 'kept@b.c')")
        conn.execute("ALTER DATABASE no_schema_target SET search_path = nowhere")
    rules = rules_for({"t": {"id": "keep", "email": "hash"}})
    with pytest.raises(anonymiser.SchemaMismatch, match="search_path names no existing schema"):
        copy_between(source, target, rules)
    assert rows(target, "SELECT id FROM public.t") == [(7,)]


def test_timeouts_set_for_the_servers_roles_do_not_cut_a_long_copy_short(
    pg_server: PgServer,
) -> None:
    """Production roles often carry a statement_timeout; a copy of a large table outlasts it."""
    ddl = "CREATE TABLE events (id bigint PRIMARY KEY, email text)"
    fill = "INSERT INTO events SELECT g, 'p' || g || '@x.example' FROM generate_series(1, 200000) g"
    source, target = databases(pg_server, "timeouts", ddl, fill)
    with psycopg.connect(pg_server.url(), autocommit=True) as admin:
        for name in ("timeouts_source", "timeouts_target"):
            admin.execute(f"ALTER DATABASE {name} SET statement_timeout = '20ms'")
            admin.execute(f"ALTER DATABASE {name} SET idle_in_transaction_session_timeout = '20ms'")
    rules = rules_for({"events": {"id": "keep", "email": "hash"}})
    report = copy_between(source, target, rules)
    assert report.rows == {"public.events": 200000}


def test_a_copy_never_silently_leaves_out_rows_row_level_security_hides(
    pg_server: PgServer,
) -> None:
    """A role under a row-level security policy sees some rows: the copy fails, never partial."""
    ddl = """
        CREATE TABLE accounts (id int PRIMARY KEY, email text);
        ALTER TABLE accounts ENABLE ROW LEVEL SECURITY;
        CREATE POLICY first_ten ON accounts USING (id <= 10);
    """
    fill = "INSERT INTO accounts SELECT g, 'p' || g || '@x.example' FROM generate_series(1, 50) g"
    source, target = databases(pg_server, "rls", ddl, fill)
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("DROP ROLE IF EXISTS limited_reader")
        conn.execute("CREATE ROLE limited_reader LOGIN")
        conn.execute("GRANT SELECT ON accounts TO limited_reader")
    limited = source.replace("postgresql://postgres@", "postgresql://limited_reader@")
    with psycopg.connect(limited) as conn:
        assert conn.execute("SELECT count(*) FROM accounts").fetchone() == (10,)
    rules = rules_for({"accounts": {"id": "keep", "email": "hash"}})
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="row-level security"):
        copy_between(limited, target, rules)
    assert rows(target, "SELECT count(*) FROM accounts") == [(0,)]


def test_partitioned_and_inheriting_tables_are_copied_once_each(pg_server: PgServer) -> None:
    """A partitioned table is read through its parent; an inheriting child's rows stay the child's.

    ``SELECT … FROM cities`` also returns the rows of every table that
    inherits from it, which the copy of ``capitals`` already writes.
    """
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, email text UNIQUE);
        CREATE TABLE events (id int, at date, person int REFERENCES people, PRIMARY KEY (id, at))
            PARTITION BY RANGE (at);
        CREATE TABLE events_2024 PARTITION OF events
            FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
        CREATE TABLE events_2025 PARTITION OF events
            FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
        CREATE TABLE cities (name text PRIMARY KEY, mayor text);
        CREATE TABLE capitals (country text) INHERITS (cities);
    """
    fill = """
        INSERT INTO people SELECT g, 'p' || g || '@x.example' FROM generate_series(1, 100) g;
        INSERT INTO events SELECT g, date '2024-06-01' + g * 2, 1 + g % 100
            FROM generate_series(1, 200) g;
        INSERT INTO cities VALUES ('Lyon', 'Grégory Doucet'), ('Graz', 'Elke Kahr');
        INSERT INTO capitals VALUES ('Paris', 'Anne Hidalgo', 'FR'),
                                    ('Vienna', 'Michael Ludwig', 'AT');
    """
    source, target = databases(pg_server, "families", ddl, fill)
    keep = "keep"
    rules = rules_for(
        {"people": {"id": keep, "email": "hash"},
         "events": {"id": keep, "at": keep, "person": keep},
         "cities": {"name": keep, "mayor": {"fake": "name"}},
         "capitals": {"name": keep, "mayor": {"fake": "name"}, "country": keep}}
    )  # fmt: skip
    report = copy_between(source, target, rules)
    assert report.rows == {
        "public.people": 100, "public.events": 200, "public.cities": 2, "public.capitals": 2
    }  # fmt: skip
    counts = """SELECT (SELECT count(*) FROM ONLY cities), (SELECT count(*) FROM capitals),
                       (SELECT count(*) FROM events_2024), (SELECT count(*) FROM events_2025)"""
    assert rows(target, counts) == rows(source, counts) == [(2, 2, 106, 94)]


def test_rows_whose_faked_column_is_null_are_copied_with_the_null(pg_server: PgServer) -> None:
    """A fake draws from its pool by the value's MAC; a NULL has none, and keeps its row."""
    ddl = """CREATE TABLE people (id int PRIMARY KEY, name text, email text UNIQUE,
                                  city varchar(12), code text)"""
    fill = """INSERT INTO people SELECT g, CASE WHEN g % 3 = 0 THEN NULL ELSE 'Name ' || g END,
                     CASE WHEN g % 4 = 0 THEN NULL ELSE 'p' || g || '@x.example' END,
                     CASE WHEN g % 5 = 0 THEN NULL ELSE 'Town ' || g END,
                     CASE WHEN g % 2 = 0 THEN NULL ELSE 'c' || g END
              FROM generate_series(1, 300) g"""
    source, target = databases(pg_server, "null_fakes", ddl, fill)
    rules = rules_for(
        {"people": {"id": "keep", "name": {"fake": "name"}, "email": {"fake": "email"},
                    "city": {"fake": "city"}, "code": {"mask": {"keep_first": 1}}}}
    )  # fmt: skip
    report = copy_between(source, target, rules)
    assert report.rows == {"public.people": 300}
    nulls = """SELECT count(*), count(*) FILTER (WHERE name IS NULL),
                      count(*) FILTER (WHERE email IS NULL), count(*) FILTER (WHERE city IS NULL),
                      count(*) FILTER (WHERE code IS NULL) FROM people"""
    assert rows(target, nulls) == rows(source, nulls) == [(300, 100, 75, 60, 150)]


def test_hostile_schema_table_and_column_names_survive_both_modes(pg_server: PgServer) -> None:
    """Spaces, quotes, capitals and reserved words in names: seeded, then anonymised."""
    ddl = '''
        CREATE SCHEMA "Sales Dept";
        CREATE TABLE "Sales Dept"."Customer ""VIP""" ("Id" int PRIMARY KEY,
            "E-Mail Address" text UNIQUE, "select" text, "Name" varchar(30));
        CREATE TABLE "Sales Dept".orders (id int PRIMARY KEY,
            "Customer" int REFERENCES "Sales Dept"."Customer ""VIP""", "when" timestamptz);
    '''
    source, target = databases(pg_server, "hostile_names", ddl)
    with psycopg.connect(source, autocommit=True) as conn:
        generator = SyntheticGenerator(introspect(conn), SyntheticConfig(default_rows=300))
        assert sum(seed_database(conn, generator).rows.values()) == 600
    rules = rules_for(
        {'Sales Dept.Customer "VIP"': {"Id": "hash", "E-Mail Address": {"fake": "email"},
                                       "select": {"mask": {"keep_first": 1}},
                                       "Name": {"fake": "name"}},
         "Sales Dept.orders": {"id": "keep", "Customer": "hash",
                               "when": {"date_shift": {"max_days": 3}}}}
    )  # fmt: skip
    report = copy_between(source, target, rules)
    assert report.rows == {'Sales Dept.Customer "VIP"': 300, "Sales Dept.orders": 300}
    joined = '''SELECT count(*) FROM "Sales Dept".orders AS o
                JOIN "Sales Dept"."Customer ""VIP""" AS c ON c."Id" = o."Customer" '''
    assert rows(target, joined) == rows(source, joined)


def test_a_copy_that_loses_rows_fails_and_writes_nothing(
    pg_server: PgServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every table must arrive with the rows the snapshot holds: a lossy transform is caught."""
    ddl = "CREATE TABLE t (id int PRIMARY KEY, email text)"
    fill = "INSERT INTO t SELECT g, 'p' || g || '@x.example' FROM generate_series(1, 100) g"
    source, target = databases(pg_server, "lossy", ddl, fill)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO t VALUES (7, 'kept@x.example')")
    reads = anonymiser.TablePipeline.select

    def lossy(self: anonymiser.TablePipeline, part: Any = None) -> Any:
        return reads(dataclasses.replace(self, where=sql.SQL("id % 2 = 0")), part)

    monkeypatch.setattr(anonymiser.TablePipeline, "select", lossy)
    rules = rules_for({"t": {"id": "keep", "email": "hash"}})
    with pytest.raises(anonymiser.IncompleteCopy, match=r"public.t: 50 of 100"):
        copy_between(source, target, rules)
    assert rows(target, "SELECT id FROM t") == [(7,)]


def test_a_target_that_cannot_take_the_rows_is_refused_before_writing(
    pg_server: PgServer,
) -> None:
    """A missing table or column, or a new NOT NULL column without a default, is named up front."""
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, email text, city text);
        CREATE TABLE gone (id int PRIMARY KEY);
    """
    source, target = databases(
        pg_server, "mismatch", ddl, "INSERT INTO people VALUES (1, 'a', 'b')"
    )
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("""
            DROP TABLE gone;
            ALTER TABLE people DROP COLUMN city;
            ALTER TABLE people ADD COLUMN plan text NOT NULL, ADD COLUMN seen boolean,
                ADD COLUMN tier int NOT NULL DEFAULT 1, ADD COLUMN n bigint GENERATED ALWAYS
                AS IDENTITY;
        """)
    rules = rules_for(
        {"people": {"id": "keep", "email": "hash", "city": "keep"}, "gone": {"id": "keep"}}
    )
    with pytest.raises(anonymiser.SchemaMismatch) as info:
        copy_between(source, target, rules)
    message = str(info.value)
    assert "target has no table public.gone" in message
    assert "lacks columns ['city']" in message
    assert "target columns ['plan'] of public.people are NOT NULL without a default" in message
    for fine in ("seen", "tier", "'n'"):  # nullable, defaulted, identity: they fill themselves
        assert fine not in message


def test_a_skipped_table_is_copied_empty_and_needs_no_rules(pg_server: PgServer) -> None:
    """An audit log or a huge event table: `skip` leaves it empty in the target."""
    ddl = """
        CREATE TABLE people (id int PRIMARY KEY, email text, best_friend int);
        CREATE TABLE audit_log (id int PRIMARY KEY, who int REFERENCES people, what text);
        CREATE TABLE sessions (id int PRIMARY KEY, person int REFERENCES people, token text);
        ALTER TABLE people ADD FOREIGN KEY (best_friend) REFERENCES sessions;
    """
    fill = """
        INSERT INTO people SELECT g, 'p' || g || '@x.example', NULL FROM generate_series(1, 20) g;
        INSERT INTO audit_log SELECT g, 1 + g % 20, 'login' FROM generate_series(1, 500) g;
        INSERT INTO sessions SELECT g, g, md5(g::text) FROM generate_series(1, 20) g;
        UPDATE people SET best_friend = id;
    """
    source, target = databases(pg_server, "skipped", ddl, fill)
    with psycopg.connect(target, autocommit=True) as conn:
        conn.execute("INSERT INTO people VALUES (99, 'old', NULL)")
        conn.execute("INSERT INTO audit_log VALUES (1, 99, 'old')")
    rules = rules_for(
        {"people": {"id": "keep", "email": "hash", "best_friend": "keep"},
         "audit_log": "skip", "sessions": "skip"}
    )  # fmt: skip
    with pytest.raises(RulesError, match=r"public.people references public.sessions, which is"):
        copy_between(source, target, rules)
    rules = rules_for(
        {"people": {"id": "keep", "email": "hash", "best_friend": "null"},
         "audit_log": "skip", "sessions": "skip"}
    )  # fmt: skip
    report = copy_between(source, target, rules)
    assert report.rows == {"public.people": 20, "public.audit_log": 0, "public.sessions": 0}
    counts = "SELECT (SELECT count(*) FROM people), (SELECT count(*) FROM audit_log)"
    assert rows(target, counts) == [(20, 0)]


def test_skip_is_a_whole_tables_rule_and_must_name_a_real_table(connections: Any) -> None:
    expected = r"tables.orders: expected a mapping of column: rule, 'skip'.* or 'leave'"
    with pytest.raises(RulesError, match=expected):
        rules_for({"orders": "keep"})
    rules = rules_for(dict(RULES["tables"]) | {"ordrs": "skip"})
    with pytest.raises(RulesError, match=r"rules name table 'ordrs', which the source does not"):
        run(connections, rules)


def test_an_empty_text_stays_empty_and_a_partial_unique_index_still_builds(
    pg_server: PgServer,
) -> None:
    """Supabase's auth keeps ``''`` for "no pending token" and indexes tokens as unique where
    not empty: before, every ``''`` got the pseudonym (or fake) of ``''``, one value for all
    of them, and the index could not be rebuilt ("Key (confirmation_token)=(…) is
    duplicated"); the app would also have seen a pending token for every user."""
    ddl = """
        CREATE TABLE users (id int PRIMARY KEY, token varchar(255) DEFAULT '',
            pending_email text DEFAULT '', code char(16) DEFAULT '', nick text DEFAULT '');
        CREATE UNIQUE INDEX users_token ON users (token) WHERE token !~ '^[0-9 ]*$';
        CREATE UNIQUE INDEX users_pending ON users (pending_email) WHERE pending_email <> '';
        CREATE UNIQUE INDEX users_nick ON users (nick) WHERE nick <> '';
    """
    fill = """
        INSERT INTO users (id) SELECT g FROM generate_series(1, 40) g;
        INSERT INTO users SELECT g, 'tok-' || g, 'new' || g || '@corp.example', 'c' || g,
            'nick-' || g FROM generate_series(41, 50) g;
        INSERT INTO users VALUES (51, NULL, NULL, NULL, NULL);
    """
    source, target = databases(pg_server, "empty_stays_empty", ddl, fill)
    rules = {"id": "keep", "token": "hash", "pending_email": {"fake": "email"},
             "code": "hash", "nick": {"mask": {"keep_first": 1}}}  # fmt: skip
    report = copy_between(source, target, rules_for({"users": rules}))
    assert (report.leak_hits, report.rows["public.users"]) == ({}, 51)
    counts = rows(
        target,
        "SELECT count(*) FILTER (WHERE token = ''), count(*) FILTER (WHERE pending_email = ''),"
        " count(*) FILTER (WHERE code = ''), count(*) FILTER (WHERE nick = ''),"
        " count(DISTINCT token) FILTER (WHERE token <> ''),"
        " count(DISTINCT pending_email) FILTER (WHERE pending_email LIKE '%@%'),"
        " count(DISTINCT nick) FILTER (WHERE nick LIKE 'n%'),"
        " count(*) FILTER (WHERE token IS NULL AND pending_email IS NULL AND nick IS NULL)"
        " FROM users",
    )
    assert counts == [(40, 40, 40, 40, 10, 10, 10, 1)]
    assert not rows(target, "SELECT 1 FROM users WHERE token LIKE 'tok-%' OR nick LIKE 'nick-%'")


JSON_PEOPLE = """
    CREATE TABLE people (id int PRIMARY KEY, contact_email text, doc jsonb, legacy json);
"""
JSON_ROWS = """
    INSERT INTO people SELECT g, 'person' || g || '@corp.example',
        jsonb_build_object('email', 'person' || g || '@corp.example', 'plan', 'pro',
            'name', jsonb_build_object('first', 'Firstname' || g, 'last', 'Lastname' || g),
            'tags', jsonb_build_array('a', 'b')),
        json_build_object('email', 'person' || g || '@corp.example', 'n', g)
    FROM generate_series(1, 30) g;
    INSERT INTO people VALUES (31, NULL, '{"plan": "free"}', '{}'), (32, NULL, '{"email": null}',
        NULL), (33, NULL, '["someone@corp.example"]', '[1]'), (34, NULL, NULL, NULL),
        (35, NULL, '{"name": ["Firstname35"]}', NULL);
"""
JSON_RULES = {
    "id": "keep",
    "contact_email": {"fake": "email"},
    "doc": {"keys": {"email": {"fake": "email"}, "name.first": {"fake": "first_name"},
                     "name.last": "null", "phone": "hash"}},
    "legacy": {"keys": {"email": {"mask": {"keep_last": 8}}}},
}  # fmt: skip


def test_a_json_document_is_anonymised_key_by_key_and_keeps_its_shape(
    pg_server: PgServer,
) -> None:
    """Before, a document holding someone's e-mail could only be kept, nulled or replaced
    whole (Supabase's ``identity_data``, whose generated ``email`` column reads it, became
    ``{}``); now each ruled key is rewritten, the others stay."""
    source, target = databases(pg_server, "json_keys", JSON_PEOPLE, JSON_ROWS.replace("\n", " "))
    report = copy_between(source, target, rules_for({"people": JSON_RULES}))
    assert (report.leak_hits, report.rows["public.people"]) == ({}, 35)
    out = rows(
        target,
        "SELECT doc->>'email', doc->>'plan', doc->'name'->>'first', doc->'name' ? 'last',"
        " doc->'tags', legacy->>'email', legacy->>'n', pg_typeof(legacy)::text"
        " FROM people WHERE id = 7",
    )
    email, plan, first, has_last, tags, masked, n, kind = out[0]
    assert "@" in email
    assert "corp.example" not in email
    assert (plan, has_last, tags, n, kind) == ("pro", False, ["a", "b"], "7", "json")
    assert first not in (None, "Firstname7")
    assert masked == "*" * 12 + ".example"
    others = rows(
        target, "SELECT id, doc::text, legacy::text FROM people WHERE id > 30 ORDER BY id"
    )
    assert others == [
        (31, '{"plan": "free"}', "{}"),
        (32, '{"email": null}', None),
        (33, '["someone@corp.example"]', "[1]"),  # no object, no keys: left whole
        (34, None, None),
        (35, '{"name": ["Firstname35"]}', None),  # a list where a key was looked for
    ]
    # The same e-mail gets the same fake in every run; the key rules are checked.
    before = rows(target, "SELECT doc FROM people ORDER BY id")
    copy_between(source, target, rules_for({"people": JSON_RULES}))
    assert rows(target, "SELECT doc FROM people ORDER BY id") == before


def test_a_key_left_unruled_is_kept_and_the_leak_check_still_sees_it(pg_server: PgServer) -> None:
    source, target = databases(pg_server, "json_keys_leak", JSON_PEOPLE, JSON_ROWS)
    rules = {**JSON_RULES, "doc": {"keys": {"plan": {"constant": "x"}}}}
    with pytest.raises(LeakDetected) as caught:
        copy_between(source, target, rules_for({"people": rules}))
    assert caught.value.hits == {"public.people.doc": 30}


def test_keys_rules_are_checked_before_anything_is_written(pg_server: PgServer) -> None:
    source, target = databases(pg_server, "json_keys_bad", JSON_PEOPLE)
    keys = {"a..b": "keep", "born": {"date_shift": {"max_days": 3}}}
    with pytest.raises(RulesError) as caught:
        parse_rules({"version": 1, "tables": {"people": {"doc": {"keys": keys}}}})
    assert caught.value.problems == [
        "rules: tables.people.doc.keys.a..b: a key's path is its keys joined by dots",
        "rules: tables.people.doc.keys.born: a key takes keep, null, constant, mask, redact,"
        " fake, hash ('null' removes it), not 'date_shift'",
    ]
    bad = {**JSON_RULES, "contact_email": {"keys": {"x": "keep"}},
           "doc": {"keys": {"email": {"fake": "no_such_provider"}}}}  # fmt: skip
    with pytest.raises(RulesError) as refused:
        copy_between(source, target, rules_for({"people": bad}))
    assert refused.value.problems == [
        "public.people.contact_email: rule 'keys' needs a json or jsonb column, not text",
        "public.people.doc.email: 'no_such_provider' is not a Faker provider",
    ]
    assert rows(target, "SELECT count(*) FROM people") == [(0,)]


def test_a_keys_fake_from_its_pool_is_no_leak_in_its_document(pg_server: PgServer) -> None:
    """A synthetic source's streets inside a document are the pool's own: faking them again
    leaks nothing, as for a column or a field; a kept original beside them still does."""
    pool = [unescape(v) for v in faker_pool("street_address", 0)]
    ddl = "CREATE TABLE people (id int PRIMARY KEY, doc jsonb);"
    source, target = databases(pg_server, "json_keys_pool", ddl)
    with psycopg.connect(source, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO people VALUES (%s, jsonb_build_object('street', %s::text))",
            [(i, street) for i, street in enumerate(pool[:300], start=1)],
        )
    rules = rules_for(
        {"people": {"id": "keep", "doc": {"keys": {"street": {"fake": "street_address"}}}}}
    )
    assert copy_between(source, target, rules).leak_hits == {}
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE people SET doc = doc || jsonb_build_object('old', doc->>'street')")
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    assert info.value.hits == {"public.people.doc": 300}


def test_a_generated_column_of_a_fakes_pool_values_is_no_leak(pg_server: PgServer) -> None:
    """Supabase's ``identities.email`` is generated from ``identity_data``: the fakes a key
    rule wrote from its pool came back in it, and equal to other rows' originals (a seeded
    source holds the pool's own values) they failed the leak check."""
    pool = [unescape(v) for v in faker_pool("first_name", 0)]
    ddl = """CREATE TABLE people (id int PRIMARY KEY, first text, note text,
        shown text GENERATED ALWAYS AS (btrim(first)) STORED,
        kept text GENERATED ALWAYS AS (note) STORED);"""
    source, target = databases(pg_server, "generated_pool", ddl)
    with psycopg.connect(source, autocommit=True) as conn, conn.cursor() as cur:
        cur.executemany(
            "INSERT INTO people (id, first, note) VALUES (%s, %s, 'fine')",
            [(i, name) for i, name in enumerate(pool[:300], start=1)],
        )
    rules = rules_for({"people": {"id": "keep", "first": {"fake": "first_name"}, "note": "keep"}})
    assert copy_between(source, target, rules).leak_hits == {}
    assert rows(target, "SELECT count(*) FROM people WHERE shown = first") == [(300,)]
    with psycopg.connect(source, autocommit=True) as conn:
        conn.execute("UPDATE people SET first = 'Originalname', note = 'Originalname' WHERE id = 3")
    with pytest.raises(LeakDetected) as info:
        copy_between(source, target, rules)
    assert info.value.hits == {"public.people.kept": 1, "public.people.note": 1}


def test_a_rule_that_repeats_a_value_under_a_partial_unique_index_is_named(
    pg_server: PgServer, tmp_path: Any, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    """GoTrue indexes a token as unique only where it is not all digits, and a one-time code
    repeats: its pseudonym is no longer digits, and the run failed with the server's bare
    "could not create unique index"."""
    import yaml

    from envs.cli.main import main

    ddl = """CREATE TABLE users (id int PRIMARY KEY, token text);
        CREATE UNIQUE INDEX users_token ON users (token) WHERE token !~ '^[0-9 ]*$';"""
    fill = """INSERT INTO users SELECT g, CASE WHEN g <= 40 THEN '123456' ELSE 'tok-' || g END
        FROM generate_series(1, 50) g"""
    source, target = databases(pg_server, "repeated_rule", ddl, fill)
    path = tmp_path / "rules.yaml"
    hashed = {"version": 1, "tables": {"users": {"id": "keep", "token": "hash"}}}
    path.write_text(yaml.safe_dump(hashed))
    monkeypatch.setenv("PREVIEW_ANONYMISE_SALT", "0123456789abcdef0123")
    args = ["seed", "anonymise", "--source", source, "--target", target, "--rules", str(path)]
    capsys.readouterr()
    assert main(args) == 2
    err = " ".join(capsys.readouterr().err.split())
    assert "public.users.token: rule 'hash' gives two rows one value under unique index" in err
    assert "users_token (CREATE UNIQUE INDEX users_token ON public.users USING btree" in err
    assert "the index's condition leaves them out" in err
    assert rows(target, "SELECT count(*) FROM users") == [(0,)]
