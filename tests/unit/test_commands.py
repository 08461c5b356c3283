"""The /preview comment parser: a pure function, tested on its own."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from envs.core.spec import SeedMode
from envs.github.commands import Command, Invalid, Verb, parse


def test_each_verb() -> None:
    assert parse("/preview up") == Command(Verb.UP)
    assert parse("/preview redeploy") == Command(Verb.REDEPLOY)
    assert parse("/preview destroy") == Command(Verb.DESTROY)
    assert parse("/preview status") == Command(Verb.STATUS)
    assert parse("/preview help") == Command(Verb.HELP)
    assert parse("/preview reseed") == Command(Verb.RESEED)
    assert parse("/preview reseed anonymized") == Command(Verb.RESEED, SeedMode.ANONYMISED)
    assert parse("/preview reseed Synthetic") == Command(Verb.RESEED, SeedMode.SYNTHETIC)
    assert parse("/preview extend 48h") == Command(Verb.EXTEND, duration=timedelta(hours=48))
    assert parse("/preview extend 1d12h") == Command(Verb.EXTEND, duration=timedelta(hours=36))


def test_the_command_may_follow_other_text_but_must_start_its_line() -> None:
    assert parse("Looks good!\n\n/preview redeploy\nthanks") == Command(Verb.REDEPLOY)
    assert parse("please run /preview destroy") is None
    assert parse("/previewer up") is None
    assert parse("no command") is None


def test_quoted_and_fenced_commands_never_run() -> None:
    assert parse("> /preview destroy\n\nI don't think we should") is None
    assert parse("```\n/preview destroy\n```") is None
    assert parse("~~~\n/preview destroy\n~~~\n/preview status") == Command(Verb.STATUS)


def test_malformed_commands_say_what_is_wrong() -> None:
    assert parse("/preview") == Invalid("a verb is missing after /preview")
    assert isinstance(parse("/preview nuke"), Invalid)
    assert isinstance(parse("/preview extend"), Invalid)
    assert isinstance(parse("/preview extend forever"), Invalid)
    assert isinstance(parse("/preview extend 31d"), Invalid)  # above the 30-day limit
    assert isinstance(parse("/preview reseed production"), Invalid)
    assert isinstance(parse("/preview destroy now please"), Invalid)
    assert isinstance(parse("/preview up\x1b[31m"), Invalid)


def test_round_trip_through_str() -> None:
    for text in ["/preview up", "/preview extend 2d", "/preview reseed synthetic"]:
        parsed = parse(text)
        assert isinstance(parsed, Command)
        assert parse(str(parsed)) == parsed


@given(st.text(max_size=2000))
def test_any_text_parses_to_a_result_without_raising(body: str) -> None:
    result = parse(body)
    assert result is None or isinstance(result, Command | Invalid)
    if isinstance(result, Invalid):
        assert len(result.reason) < 200  # never echoes an unbounded hostile body


@given(st.text(alphabet=st.characters(blacklist_categories=["Cc", "Cs"]), max_size=50))
def test_a_line_without_the_trigger_is_never_a_command(line: str) -> None:
    if not line.strip().lower().startswith("/preview"):
        assert parse(line) is None


@pytest.mark.parametrize("amount", ["99999999999d", "999999999999999999999999h", "9" * 200 + "m"])
def test_an_absurd_extension_is_refused_not_crashed_on(amount: str) -> None:
    parsed = parse(f"/preview extend {amount}")
    assert isinstance(parsed, Invalid)
    assert "longer than any duration" in parsed.reason or "limited to" in parsed.reason


@pytest.mark.parametrize(
    "body",
    [
        "    /preview destroy",  # an indented code block
        "text\n\n\t/preview destroy",
        "~~~\n/preview destroy\n~~~",
        "````\n```\n/preview destroy\n````",  # a shorter fence does not close a longer one
        "<!-- /preview destroy -->",
        "<!--\n/preview destroy\n-->",
        "LGTM <!--\n/preview destroy\n-->",
        "<details>\n<summary>old</summary>\n\n/preview destroy\n\n</details>",
        "- /preview destroy",
        "> > /preview destroy",
    ],
    ids=["indented", "tab", "tildes", "longer-fence", "comment", "comment-lines",
         "inline-comment", "details", "list", "nested-quote"],
)  # fmt: skip
def test_commands_github_shows_as_code_quotes_or_hidden_never_run(body: str) -> None:
    assert parse(body) is None


def test_a_command_after_a_closed_details_block_runs() -> None:
    body = "<details>\n<summary>log</summary>\n\n/preview destroy\n\n</details>\n\n/preview status"
    assert parse(body) == Command(Verb.STATUS)
