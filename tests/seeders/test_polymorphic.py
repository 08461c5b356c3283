"""Polymorphic references (``commentable_type`` / ``commentable_id``) name rows that exist."""

from __future__ import annotations

from seeders.schema.model import Category, Column, ForeignKey, Table
from seeders.synthetic import checks, polymorphic
from seeders.synthetic.generator import SyntheticConfig, SyntheticGenerator, seed_database
from tests.pg_server import PgServer
from tests.seeders.test_synthetic import count, database_of


def _table(name: str, *columns: Column, fks: tuple[ForeignKey, ...] = ()) -> Table:
    return Table("public", name, (Column("id", "bigint", Category.INTEGER, False), *columns),
                 primary_key=("id",), foreign_keys=fks)  # fmt: skip


def test_a_type_beside_an_id_without_a_foreign_key_is_a_pair() -> None:
    text = lambda n: Column(n, "character varying", Category.TEXT, False)  # noqa: E731
    number = lambda n: Column(n, "bigint", Category.INTEGER, False)  # noqa: E731
    comments = _table(
        "comments", text("commentable_type"), number("commentable_id"),
        text("owner_type"), number("owner_id"),  # an FK on the id: an ordinary reference
        text("kind_type"),  # no id beside it
        fks=(ForeignKey("comments_owner", ("owner_id",), "public.users", ("id",)),),
    )  # fmt: skip
    assert polymorphic.pairs(comments) == [("commentable_type", "commentable_id")]


def test_types_are_spelled_as_rails_spells_model_classes() -> None:
    assert polymorphic.class_name("projects") == "Project"
    assert polymorphic.class_name("active_storage_blobs") == "ActiveStorageBlob"
    assert polymorphic.class_name("categories") == "Category"
    assert polymorphic.class_name("addresses") == "Address"
    assert polymorphic.class_name("boxes") == "Box"
    assert polymorphic.class_name("status") == "Status"
    posts, issues = _table("blog_posts"), _table("issues")
    allowed = ["Blog::Post", "Issue", "Widget"]  # a check's list: Widget names no table
    assert polymorphic.targets([posts, issues], allowed) == [("Blog::Post", posts),
                                                             ("Issue", issues)]  # fmt: skip
    assert [v for v, _ in polymorphic.targets([posts, issues], None)] == ["BlogPost", "Issue"]


def test_each_row_names_a_row_of_the_table_its_type_names(pg_server: PgServer) -> None:
    """Before, every comment pointed at nothing: the type was a sentence, the id any number."""
    ddl = """
        CREATE TABLE projects (id bigserial PRIMARY KEY, name text NOT NULL);
        CREATE TABLE issues (id bigserial PRIMARY KEY, title text NOT NULL);
        CREATE TABLE comments (id bigserial PRIMARY KEY,
            commentable_type varchar NOT NULL CHECK (commentable_type IN ('Project', 'Issue')),
            commentable_id bigint NOT NULL, body text NOT NULL);
        CREATE TABLE attachments (id bigserial PRIMARY KEY, name varchar NOT NULL,
            record_type varchar, record_id bigint, UNIQUE (record_type, record_id, name));
    """
    with database_of(pg_server, "synthetic_polymorphic", ddl) as (conn, schema):
        rows = {"projects": 50, "issues": 300, "comments": 2000, "attachments": 2000}
        config = checks.fit(conn, schema, SyntheticConfig(rows=rows, seed=7))
        seed_database(conn, SyntheticGenerator(schema, config))
        for kind, table in (("Project", "projects"), ("Issue", "issues")):
            named = f"SELECT count(*) FROM comments WHERE commentable_type = '{kind}'"
            assert count(conn, named) > 500, kind
            dangling = (
                f"SELECT count(*) FROM comments c WHERE commentable_type = '{kind}'"
                f" AND NOT EXISTS (SELECT FROM {table} t WHERE t.id = c.commentable_id)"
            )
            assert count(conn, dangling) == 0, kind
        # Under a unique key the pair still points at rows; another column carries uniqueness.
        assert count(conn, "SELECT count(DISTINCT record_type) FROM attachments") == 4
        assert count(conn, "SELECT count(*) FROM attachments WHERE record_type IS NULL") == (
            count(conn, "SELECT count(*) FROM attachments WHERE record_id IS NULL")
        )
        dangling = (
            "SELECT count(*) FROM attachments a WHERE record_type = 'Issue'"
            " AND NOT EXISTS (SELECT FROM issues i WHERE i.id = a.record_id)"
        )
        assert count(conn, dangling) == 0
