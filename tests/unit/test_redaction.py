"""No password text survives redaction, in any form a DSN takes (property-tested)."""

from __future__ import annotations

from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from envs.core.errors import OperationFailed
from envs.core.redaction import redact, scrub
from envs.environments.seeding import connect
from envs.store.postgres import PostgresConnector

# Passwords long enough that finding one in a message is not chance, of any printable
# characters: the ones a URL or libpq treats specially (@ : / ? # & ' = space \) included.
# "Zq9" starts each one, so that a password is never a word the messages hold anyway.
PASSWORDS = st.text(
    st.characters(min_codepoint=33, max_codepoint=126) | st.sampled_from(" éß€"),
    min_size=5,
    max_size=30,
).map(lambda p: "Zq9" + p.strip())


def forms(password: str) -> list[str]:
    quoted = password.replace("\\", "\\\\").replace("'", "\\'")
    return [
        f"postgresql://app:{quote(password, safe='')}@127.0.0.1:1/db",
        f"postgresql://app:{password}@127.0.0.1:1/db",  # unencoded, as people paste them
        f"postgresql://app@127.0.0.1:1/db?sslmode=disable&password={quote(password, safe='')}",
        f"host=127.0.0.1 port=1 user=app password='{quoted}' dbname=db",
    ]


@given(PASSWORDS)
def test_redacted_dsns_hold_no_password(password: str) -> None:
    for dsn in forms(password):
        shown = redact(dsn)
        assert password not in shown, (dsn, shown)
        assert quote(password, safe="") not in shown
        assert "***" in shown
        assert password not in scrub(f"failed: {dsn} ({password})", dsn)


@settings(max_examples=25, deadline=None)
@given(PASSWORDS)
def test_connection_errors_hold_no_password(password: str) -> None:
    """What a failed connection says goes to the log, the audit and (for targets) the PR."""
    for dsn in forms(password):
        with pytest.raises(OperationFailed) as seed:
            connect(dsn)
        with pytest.raises(OperationFailed) as state:
            PostgresConnector(dsn)
        for error in (seed.value, state.value):
            assert password not in str(error), str(error)
            assert password not in error.public
            assert quote(password, safe="") not in str(error)


def test_a_keyword_dsn_and_a_url_with_an_at_sign_keep_everything_but_the_password() -> None:
    assert redact("postgresql://app:p@ss/w0rd@db.internal:5432/shop") == (
        "postgresql://app:***@db.internal:5432/shop"
    )
    assert redact("host=db password='a b' user=app") == "host=db password=*** user=app"
    assert redact("postgresql://db/shop?user=app&password=x%40y&sslmode=require") == (
        "postgresql://db/shop?user=app&password=***&sslmode=require"
    )
