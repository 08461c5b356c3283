"""One vocabulary of column meanings for both modes (seeders.schema.meanings). Pure."""

from __future__ import annotations

import pytest

from seeders.anonymise.pii import PiiGuess, guess
from seeders.schema.meanings import MEANINGS, meanings_of
from seeders.schema.model import Category, Column
from seeders.synthetic.values import text_provider


def text(name: str) -> Column:
    return Column(name, "text", Category.TEXT, nullable=True)


# Names each seen go wrong in one mode or both, and what they hold.
@pytest.mark.parametrize(
    ("name", "invented", "suggested"),
    [
        # GoTrue's tokens were e-mails and phone numbers in both modes.
        ("email_change_token_new", "sha256", "hash"),
        ("phone_change_token", "sha256", "hash"),
        ("ip_address", "ipv4", "ipv4"),  # synthetic wrote street addresses
        ("hashed_password", "sha256", "hash"),  # Phoenix's: synthetic wrote plain passwords
        ("firstname", "first_name", "first_name"),  # inspect guessed nothing
        ("useremail", "email", "email"),
        ("homephone", "phone_number", "phone_number"),
        ("otp_code", "sha256", "hash"),
        ("website", "url", "url"),  # a person's homepage names them
        ("capacity", "word", None),  # synthetic wrote cities (it holds "city")
        ("ethnicity", "word", None),
        ("context", "word", None),  # synthetic wrote paragraphs (it holds "text")
        ("hostname", "word", None),  # synthetic wrote people's names
        ("handler", "word", None),  # both took it for a user name
        ("latest_version", "word", None),  # inspect suggested noise ("lat")
        ("long_description", "paragraph", None),  # inspect suggested noise ("lon")
        ("taxonomy", "word", None),  # inspect suggested hash ("tax")
        ("cardinality", "word", None),  # inspect suggested hash ("card")
        ("checksum", "sha256", None),  # a file's checksum: copied, or downloads fail
        # Auth.js: the user's id at Google was kept, a token's type ("bearer") and a
        # passkey's device type hashed; an e-mail's type ("work") is no address.
        ("providerAccountId", "sha256", "hash"),
        ("token_type", "word", None),
        ("credentialDeviceType", "word", None),
        ("email_type", "word", None),
        ("content_type", "mime_type", None),  # the whole name's meaning stays
        ("image", "image_url", "image_url"),  # Auth.js' User.image: their Google photo
    ],
)
def test_both_modes_read_a_name_the_same_way(
    name: str, invented: str, suggested: str | None
) -> None:
    assert text_provider(text(name)) == invented
    expected = PiiGuess(name, "name", suggested) if suggested else None
    assert guess(text(name), [], "accounts") == expected


def test_every_meaning_that_both_modes_know_they_read_alike() -> None:
    """For each meaning's own name (``first_name``, ``ssn``), the synthetic seeder invents what
    inspect would fake: the two tables this replaces had drifted apart (a secret was a
    secret in one and an e-mail in the other)."""
    both = [m for m in MEANINGS if m.fake and m.rule and m.rule not in ("hash", "noise")]
    assert len(both) > 10
    for meaning in both:
        name = meaning.name if meaning.name != "free_text" else "notes"
        assert next(meanings_of(name)) == meaning, name
        assert text_provider(text(name)) == meaning.fake, name
        assert guess(text(name), [], "customers") == PiiGuess(name, "name", meaning.rule), name
