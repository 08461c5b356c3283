"""The loader drops indexes for speed and gives back exactly the schema it found."""

from __future__ import annotations

from typing import Any

import psycopg
import pytest

from seeders.copy.loader import load
from seeders.schema.introspect import introspect

SCHEMA_OBJECTS = """
SELECT 'index', indexdef FROM pg_indexes WHERE schemaname = 'public'
UNION ALL
SELECT 'constraint', conrelid::regclass || ' ' || conname || ' ' || pg_get_constraintdef(oid)
FROM pg_constraint WHERE connamespace = 'public'::regnamespace
UNION ALL
SELECT 'marks', indexrelid::regclass || ' ' || indisclustered || ' ' || indisreplident
FROM pg_index WHERE indrelid = 'public.notes'::regclass
ORDER BY 1, 2
"""


@pytest.fixture
def db(pg_url: str) -> Any:
    with psycopg.connect(pg_url, autocommit=True) as conn:
        conn.execute(
            """
            CREATE TABLE owners (id int PRIMARY KEY, login text NOT NULL UNIQUE);
            CREATE TABLE notes (
                id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                owner_id int NOT NULL REFERENCES owners (id) DEFERRABLE INITIALLY DEFERRED,
                body text, slug text NOT NULL,
                CONSTRAINT notes_slug_per_owner UNIQUE (owner_id, slug) DEFERRABLE
            );
            CREATE INDEX notes_body_lower ON notes (lower(body)) WHERE body IS NOT NULL;
            CREATE UNIQUE INDEX notes_slug_upper ON notes (upper(slug));
            CREATE INDEX notes_owner ON notes (owner_id);
            ALTER TABLE notes CLUSTER ON notes_owner;
            """
        )
        yield conn


def _load(conn: Any, owners: bytes, notes: bytes) -> None:
    data = {"public.owners": owners, "public.notes": notes}
    columns = {"public.owners": ["id", "login"], "public.notes": ["owner_id", "body", "slug"]}
    load(
        conn,
        introspect(conn),
        ["public.owners", "public.notes"],
        lambda t: columns[t.qualified],
        lambda name: [(data[name].count(b"\n"), data[name])],
    )


def test_indexes_and_constraints_come_back_exactly(db: Any) -> None:
    before = db.execute(SCHEMA_OBJECTS).fetchall()
    _load(db, b"1\tann\n2\tbob\n", b"1\tHello\ta\n2\t\\N\tb\n1\tBye\tc\n")
    assert db.execute(SCHEMA_OBJECTS).fetchall() == before
    assert db.execute("SELECT count(*) FROM notes").fetchone() == (3,)
    # The rebuilt indexes are valid and usable.
    db.execute("SET enable_seqscan = off")
    plan = db.execute("EXPLAIN SELECT * FROM notes WHERE upper(slug) = 'A'").fetchall()
    assert "notes_slug_upper" in " ".join(r[0] for r in plan)


def test_a_duplicate_key_fails_the_load_and_keeps_the_old_rows(db: Any) -> None:
    _load(db, b"1\tann\n", b"1\tHello\ta\n")
    before = db.execute(SCHEMA_OBJECTS).fetchall()
    with pytest.raises(psycopg.errors.UniqueViolation):
        _load(db, b"1\tann\n2\tann\n", b"1\tHello\ta\n")  # login is UNIQUE
    with pytest.raises(psycopg.errors.UniqueViolation):
        _load(db, b"1\tann\n", b"1\tx\tsame\n1\ty\tSAME\n")  # unique expression index
    assert db.execute("SELECT id, login FROM owners").fetchall() == [(1, "ann")]
    assert db.execute(SCHEMA_OBJECTS).fetchall() == before


def test_a_tables_indexes_are_rebuilt_before_the_next_table_is_read(db: Any) -> None:
    """Each table's indexes are rebuilt once its rows are in, while the next table's rows
    are still being made: a duplicate fails the load before anything more is read."""
    asked: list[str] = []
    data = {"public.owners": b"1\tann\n2\tann\n", "public.notes": b"1\tHello\ta\n"}

    def chunks(name: str) -> list[tuple[int, bytes]]:
        asked.append(name)
        return [(data[name].count(b"\n"), data[name])]

    columns = {"public.owners": ["id", "login"], "public.notes": ["owner_id", "body", "slug"]}
    order = ["public.owners", "public.notes"]
    with pytest.raises(psycopg.errors.UniqueViolation):
        load(db, introspect(db), order, lambda t: columns[t.qualified], chunks)
    assert asked == ["public.owners"]
    asked.clear()
    with pytest.raises(psycopg.errors.UniqueViolation):  # a repair may still rewrite rows
        load(
            db, introspect(db), order, lambda t: columns[t.qualified], chunks, repair=lambda _: None
        )
    assert asked == order


TRIGGERS = """
    CREATE TABLE audit_log (id bigserial PRIMARY KEY, what text NOT NULL);
    CREATE FUNCTION log_it() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO public.audit_log (what) VALUES (TG_OP || ' ' || TG_TABLE_NAME);
            IF TG_OP = 'INSERT' THEN NEW.body := 'touched'; END IF;
            RETURN NEW;
        END $$;
    CREATE FUNCTION log_truncate() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN INSERT INTO public.audit_log (what) VALUES ('TRUNCATE'); RETURN NULL; END $$;
    CREATE TRIGGER notes_audit BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION log_it();
    CREATE TRIGGER notes_truncated AFTER TRUNCATE ON notes EXECUTE FUNCTION log_truncate();
    CREATE TRIGGER notes_off BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION log_it();
    ALTER TABLE notes DISABLE TRIGGER notes_off;
    CREATE TRIGGER notes_replica BEFORE INSERT ON notes FOR EACH ROW EXECUTE FUNCTION log_it();
    ALTER TABLE notes ENABLE REPLICA TRIGGER notes_replica;
"""
TRIGGER_STATES = "SELECT tgname, tgenabled FROM pg_trigger WHERE NOT tgisinternal ORDER BY 1"


def test_the_tables_own_triggers_do_not_fire_and_keep_their_state(db: Any) -> None:
    """Loaded rows are the data as it is: no audit rows, no rewritten values, from any trigger."""
    db.execute(TRIGGERS)
    states = db.execute(TRIGGER_STATES).fetchall()
    data = {
        "public.owners": b"1\talice\n",
        "public.notes": b"1\tfirst\ta\n1\tsecond\tb\n",
        "public.audit_log": b"7\tkept\n",
    }
    columns = {"public.owners": ["id", "login"], "public.notes": ["owner_id", "body", "slug"],
               "public.audit_log": ["id", "what"]}  # fmt: skip
    load(
        db, introspect(db), ["public.owners", "public.audit_log", "public.notes"],
        lambda t: columns[t.qualified], lambda name: [(data[name].count(b"\n"), data[name])],
    )  # fmt: skip
    assert db.execute("SELECT id, what FROM audit_log").fetchall() == [(7, "kept")]
    assert db.execute("SELECT body FROM notes ORDER BY slug").fetchall() == [
        ("first",),
        ("second",),
    ]
    assert db.execute(TRIGGER_STATES).fetchall() == states  # on again, each as it was
    db.execute("INSERT INTO notes (owner_id, body, slug) VALUES (1, 'later', 'c')")
    assert db.execute("SELECT body FROM notes WHERE slug = 'c'").fetchone() == ("touched",)


def test_materialized_views_over_the_loaded_tables_are_refreshed(db: Any) -> None:
    """A report built on the tables shows the loaded rows; one the app left unpopulated stays so."""
    db.execute("""
        CREATE MATERIALIZED VIEW note_counts AS
            SELECT owner_id, count(*) AS n FROM notes GROUP BY owner_id;
        CREATE VIEW busy AS SELECT owner_id FROM note_counts WHERE n > 1;
        CREATE MATERIALIZED VIEW busy_owners AS SELECT count(*) AS owners FROM busy;
        CREATE MATERIALIZED VIEW later AS SELECT count(*) FROM notes WITH NO DATA;
    """)
    _load(db, b"1\talice\n2\tbob\n", b"1\tx\ta\n1\ty\tb\n2\tz\tc\n")
    assert db.execute("SELECT * FROM note_counts ORDER BY 1").fetchall() == [(1, 2), (2, 1)]
    assert db.execute("SELECT owners FROM busy_owners").fetchall() == [(1,)]
    populated = db.execute("SELECT relispopulated FROM pg_class WHERE relname = 'later'")
    assert populated.fetchone() == (False,)


def test_every_sequence_the_tables_draw_from_continues_after_the_loaded_keys(db: Any) -> None:
    """Owned (serial), identity, and a sequence two tables share without owning it."""
    odd_name = '"Odd ""Name"""'
    db.execute(
        "CREATE SEQUENCE shared_ids;"
        f" CREATE TABLE {odd_name} (id serial PRIMARY KEY,"
        "   other bigint DEFAULT nextval('shared_ids'));"
        " CREATE TABLE tickets (id bigint PRIMARY KEY DEFAULT nextval('shared_ids'));"
    )
    schema = introspect(db)
    data = {
        "public.owners": b"1\talice\n",
        "public.notes": b"1\tx\ta\n",
        'public.Odd "Name"': b"40\t500\n41\t7\n",
        "public.tickets": b"900\n3\n",
    }
    columns = {"public.owners": ["id", "login"], "public.notes": ["owner_id", "body", "slug"],
               'public.Odd "Name"': ["id", "other"], "public.tickets": ["id"]}  # fmt: skip
    load(db, schema, list(data), lambda t: columns[t.qualified],
         lambda name: [(data[name].count(b"\n"), data[name])])  # fmt: skip
    db.execute(f"INSERT INTO {odd_name} DEFAULT VALUES")
    db.execute("INSERT INTO tickets DEFAULT VALUES")
    db.execute("INSERT INTO notes (owner_id, body, slug) VALUES (1, 'y', 'b')")
    odd = db.execute(f"SELECT id, other FROM {odd_name} ORDER BY id DESC LIMIT 1")
    assert odd.fetchone() == (42, 901)  # past 41; past 900, the highest the two tables hold
    assert db.execute("SELECT max(id) FROM tickets").fetchone() == (902,)
    assert db.execute("SELECT max(id) FROM notes").fetchone() == (2,)
