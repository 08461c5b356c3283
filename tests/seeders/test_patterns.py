"""Text drawn from a CHECK's pattern: what the sampler invents matches, or it says it cannot."""

from __future__ import annotations

import random
import re
from collections.abc import Iterator
from typing import Any

import psycopg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from seeders.synthetic import patterns
from tests.pg_server import PgServer

REAL_WORLD = [
    r"^[A-Z]{3}-[0-9]{4}$",  # a product code
    r"^\+[1-9][0-9]{6,14}$",  # E.164
    r"^#[0-9a-f]{6}$",  # a hex colour
    r"^[a-z0-9]+(-[a-z0-9]+)*$",  # a slug
    r"^\d{5}(-\d{4})?$",  # a US ZIP code
    r"^(GB|DE|FR)\d{2}[A-Z0-9]{4}\d{7}$",  # IBAN-like
    r"^[^@\s]+@[^@\s]+\.[a-z]{2,}$",  # an e-mail, loosely
    r"^v\d+\.\d+\.\d+(-rc\.\d+)?$",  # a version
    r"^\w{3,8}$",
    r"[A-Z]{2}\d",  # unanchored: matched whole is matched anywhere
]


@pytest.mark.parametrize("pattern", REAL_WORLD)
def test_positions_give_text_the_pattern_matches_with_the_choice_asked(pattern: str) -> None:
    """Each position's characters, for pseudonyms that must stay distinct (anonymise.fakes)."""
    built = patterns.positions(pattern, 30, 40)
    assert built is not None
    short = (r"^[A-Z]{3}-[0-9]{4}$", r"^#[0-9a-f]{6}$", r"^\d{5}(-\d{4})?$", r"[A-Z]{2}\d")
    assert (patterns.choice(built) >= 30) == (pattern not in short)  # else the most there is
    rng = random.Random(2)
    for _ in range(200):
        text = "".join(rng.choice(chars) for chars in built)
        assert re.fullmatch(pattern, text) or not pattern.startswith("^"), text
        assert re.search(pattern, text), text


def test_positions_are_the_shortest_text_with_enough_choice() -> None:
    e164 = patterns.positions(r"^\+[1-9][0-9]{6,14}$", 40, None)
    assert e164 is not None
    assert e164[:2] == ("+", "123456789")
    assert len(e164) == 2 + 12  # 3.2 + 12 * 3.3 bits >= 40
    richest = patterns.positions(r"^\+[1-9][0-9]{6,14}$", 64, None)  # 15 digits at most
    assert richest is not None
    assert len(richest) == 16
    assert 49 < patterns.choice(richest) < 50
    assert len(patterns.positions(r"^[a-z]+$", 40, 5) or ()) == 5  # a column of 5 holds 5
    assert patterns.positions(r"(a)\1", 1, None) is None  # a back-reference: not built
    assert patterns.positions(r"^[a-z]{9}$", 1, 5) is None  # no match fits in 5


@pytest.mark.parametrize("pattern", REAL_WORLD)
def test_every_sample_matches_its_pattern_whole(pattern: str) -> None:
    drawn = patterns.sample(pattern, 2000, random.Random(1))
    assert len(drawn) == 2000
    assert all(re.fullmatch(pattern, v) for v in drawn), [
        v for v in drawn if not re.fullmatch(pattern, v)
    ][:5]
    assert len(set(drawn)) > 100  # varied, not one safe value


def test_the_same_seed_draws_the_same_text() -> None:
    first = patterns.sample(REAL_WORLD[3], 500, random.Random("s"))
    assert first == patterns.sample(REAL_WORLD[3], 500, random.Random("s"))
    assert first != patterns.sample(REAL_WORLD[3], 500, random.Random("t"))


def test_open_repeats_stay_short_and_reach_their_minimum() -> None:
    lengths = {len(v) for v in patterns.sample(r"^a{3,}$", 3000, random.Random(2))}
    assert min(lengths) == 3
    assert max(lengths) <= 3 + 8


def test_nested_repeats_stay_short_and_very_long_matches_are_not_drawn() -> None:
    """Each open repeat running 8 past its minimum, nested four deep, is 9**4 characters."""
    drawn = patterns.sample(r"^(?:(?:(?:(?:ab)+)+)+)+$", 200, random.Random(4))
    assert max(len(v) for v in drawn) <= 64
    assert len(set(drawn)) > 5
    assert all(re.fullmatch("(?:ab)+", v) for v in drawn)
    assert len(patterns.sample("^x{300}$", 3, random.Random(4))[0]) == 300  # a minimum is kept
    with pytest.raises(patterns.Unsupported, match="longer than 1000"):
        patterns.sample("^(?:x{100}){20}$", 3, random.Random(4))


@pytest.mark.parametrize("pattern", [r"^(a)\1$", r"^(?=x)x$", r"^(?!x).$", r"(?<=a)b"])
def test_what_the_sampler_cannot_invent_is_said_not_guessed(pattern: str) -> None:
    with pytest.raises(patterns.Unsupported):
        patterns.sample(pattern, 10, random.Random(0))


def test_a_pattern_python_cannot_read_is_a_regex_error() -> None:
    with pytest.raises(re.error):
        patterns.sample(r"^[a-z", 10, random.Random(0))


def test_the_operands_are_read_as_the_server_writes_them() -> None:
    condition = (
        "(((code ~ '^[A-Z]{3}$'::text) AND ((sku)::text ~~ 'SKU-%'::text))"
        " AND (ref ~ similar_to_escape('[A-Z]{2}(x|y)'::text))"
        " AND (name ~~* 'a_c'::text) AND (tag ~* '^it''s$'::text)"
        " AND (code !~ 'zz'::text) AND (sku !~~ 'x%'::text))"
    )
    assert patterns.patterns_in(condition) == [
        "^[A-Z]{3}$",
        "^it's$",
        r"^SKU\-.*$",
        "^a.c$",
        r"^(?:[A-Z]{2}(x|y))$",
    ]


def test_like_and_similar_to_mean_what_sql_means() -> None:
    like = patterns.like_regex(r"50\%_a%")
    assert re.fullmatch(like, "50%xabc")
    assert not re.fullmatch(like, "50xxa")
    similar = patterns.similar_regex("[a.]%.b_")
    assert re.fullmatch(similar, "a..bz")
    assert re.fullmatch(similar, "..zzz.bq")
    assert not re.fullmatch(similar, "a.xbz")  # the dot outside brackets is a dot


def test_posix_classes_are_spelled_out() -> None:
    [pattern] = patterns.patterns_in("(tag ~ '^[[:upper:]][[:digit:]_]{2}$'::text)")
    assert pattern == "^[A-Z][0-9_]{2}$"
    assert all(re.fullmatch(pattern, v) for v in patterns.sample(pattern, 200, random.Random(3)))


# Patterns built from the pieces application checks use; whatever the
# combination, a sample is matched by the pattern it came from.
_ATOMS = st.sampled_from(
    ["a", "Z", "7", "-", r"\.", r"\d", r"\w", r"\s", "[a-f]", "[^a-z]", "[A-Z0-9_]", "."]
)


def _repeated(inner: st.SearchStrategy[str]) -> st.SearchStrategy[str]:
    quantifiers = st.sampled_from(["", "?", "*", "+", "{2}", "{1,3}", "{2,}", "+?"])
    return st.builds(lambda a, q: f"(?:{a}){q}" if len(a) > 1 else a + q, inner, quantifiers)


_PATTERNS = st.recursive(
    _ATOMS,
    lambda inner: st.one_of(
        _repeated(inner),
        st.lists(inner, min_size=1, max_size=4).map("".join),
        st.lists(inner, min_size=2, max_size=3).map(lambda alts: f"({'|'.join(alts)})"),
    ),
    max_leaves=8,
)


@pytest.fixture(scope="module")
def server(pg_server: PgServer) -> Iterator[psycopg.Connection[Any]]:
    with psycopg.connect(pg_server.url(), autocommit=True) as conn:
        yield conn


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(pattern=_PATTERNS, seed=st.integers(0, 1000))
def test_any_combination_of_the_common_pieces_is_matched(
    server: psycopg.Connection[Any], pattern: str, seed: int
) -> None:
    """Judged by PostgreSQL, as a check is: Python's backtracking engine can take
    exponential time over nested quantifiers (``(?:(?:\\w+?)+)+``) even on text
    that matches."""
    anchored = f"^{pattern}$"
    drawn = patterns.sample(anchored, 50, random.Random(seed))
    query = "SELECT count(*) FILTER (WHERE NOT v ~ %s) FROM unnest(%s::text[]) AS v"
    assert server.execute(query, (anchored, drawn)).fetchone() == (0,)
