"""What a table's rows are, read from its name: organisations, things, or (else) people. Pure.

A ``name`` column means a person's name in ``customers``, a company's in
``vendors`` and neither in ``categories`` or ``projects``. The synthetic
seeder invents what the name says; ``seed inspect`` guesses personal data
from it (a category's name is no one's).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

_ORGANISATIONS = re.compile(
    r"(^|_)(orgs?|organi[sz]ations?|compan(y|ies)|tenants?|workspaces?|teams?|vendors?"
    r"|suppliers?|merchants?|firms?|businesses)$"
)
_THINGS = re.compile(
    r"(^|_)(categor(y|ies)|languages?|genres?|tags?|types?|kinds?|status(es)?|roles?"
    r"|permissions?|products?|items?|plans?|features?|countr(y|ies)|regions?|currenc(y|ies)"
    r"|units?|colou?rs?|sizes?|brands?|labels?|channels?|topics?|skills?|services?|stages?"
    r"|templates?|events?|projects?|repositor(y|ies)|files?|folders?|settings?|groups?"
    r"|departments?|sites?|pages?|boards?|lists?|locations?|warehouses?|attachments?|blobs?"
    r"|assets?|hosts?|apps?|applications?|domains?|queues?|jobs?|buckets?|keys?|fields?"
    r"|attributes?|columns?|tables?|schemas?|classes|hooks?|webhooks?|integrations?|packages?"
    r"|modules?|versions?|builds?|deployments?|environments?|servers?|clusters?|nodes?"
    r"|metrics?|reports?|dashboards?|themes?|badges?|tiers?|levels?|tokens?|objects?)$"
)


def words(name: str) -> list[str]:
    """A name's words: ``trial_endsAt`` → trial, ends, at; ``IPAddress`` → ip, address."""
    spaced = re.sub(r"(?<=[a-z0-9])(?=[A-Z])|(?<=[A-Z])(?=[A-Z][a-z])", "_", name)
    return [w for w in re.split(r"[^a-z0-9]+", spaced.lower()) if w]


def organisations(table: str) -> bool:
    """Whether the table's rows are organisations (``vendors``, ``billing_companies``)."""
    return bool(_ORGANISATIONS.search(table.lower()))


def things(table: str) -> bool:
    """Whether the table's rows are things no one is (``categories``, ``projects``)."""
    return bool(_THINGS.search(table.lower()))


@dataclass(frozen=True)
class Meaning:
    """What a column's name says it holds, and what each mode does with such a column.

    ``fake``: the Faker provider the synthetic seeder invents values with
    (None: the name says nothing it could invent by). ``rule``: what
    ``seed inspect`` suggests for production's values, a Faker provider,
    ``hash`` or ``noise`` (None: not personal data by its name).
    """

    name: str
    pattern: re.Pattern[str]
    fake: str | None
    rule: str | None


def _meaning(name: str, hints: str, fake: str | None, rule: str | None) -> Meaning:
    # Each hint begins a word of the snake-cased name; one that must end it says so ($|_).
    return Meaning(name, re.compile(rf"(^|_)(?:{hints})"), fake, rule)


_SECRET = (r"tokens?($|_)|secrets?($|_)|sessions?($|_)|cookies?($|_)|api_?key|private_?key"
           r"|access_?key|credential|nonce|provider_?key|g?uid$|otp($|_)"
           # The user's id at Google or GitHub (Auth.js' providerAccountId, GoTrue's provider_id).
           r"|provider_(account_|user_)?id$")  # fmt: skip

# One vocabulary for both modes: what the synthetic seeder invents for a column
# is what inspect takes it to hold. First match wins, so the order decides:
# a secret before an e-mail (GoTrue's ``email_change_token_new`` is a token),
# an IP before a street address (``ip_address``), a digest before a password.
MEANINGS: tuple[Meaning, ...] = (
    _meaning("ip", r"ip($|_)|ipaddress|ipv[46]", "ipv4", "ipv4"),
    _meaning("mac_address", r"mac_?address", "mac_address", "hash"),
    _meaning("password_digest", r"encrypted_password|password_(digest|hash)|hashed_password"
             r"|crypted_password", "sha256", "hash"),
    # A file's checksum is no one's: copied as it is, or downloads fail their check.
    _meaning("checksum", r"checksum|digest", "sha256", None),
    _meaning("secret", _SECRET, "sha256", "hash"),
    _meaning("password", r"password|passwd", "password", "hash"),
    # Run together as legacy schemas write them too: ``useremail``, ``homephone``.
    _meaning("email", r"[a-z0-9]*email|e_mail|mails?($|_)", "email", "email"),
    _meaning("phone", r"[a-z0-9]*phone|mobile|fax($|_)|msisdn", "phone_number", "phone_number"),
    _meaning("ssn", r"ssn|social_security", "ssn", "ssn"),
    _meaning("iban", r"iban", "iban", "iban"),
    _meaning("passport", r"passport", "passport_number", "hash"),
    _meaning("card_number", r"card_?number|credit_card", "credit_card_number", "hash"),
    _meaning("card", r"cards?($|_)", None, "hash"),
    _meaning("tax_id", r"tax($|_)|vat($|_)", None, "hash"),
    _meaning("first_name", r"first_?name|given_name|forename", "first_name", "first_name"),
    _meaning("last_name", r"last_?name|surname|family_name", "last_name", "last_name"),
    _meaning("company", r"company|organi[sz]ation|org_name|employer", "company", "company"),
    _meaning("full_name", r"full_?name|display_name|contact_name", "name", "name"),
    _meaning("user_name", r"user_?name|login(_name)?$|handle($|_)|nickname|screen_name",
             "user_name", "user_name"),
    _meaning("address", r"address|street", "street_address", "street_address"),
    _meaning("city", r"city|town($|_)", "city", "city"),
    _meaning("postcode", r"postcode|postal|zip", "postcode", "postcode"),
    _meaning("picture", r"avatar|photo|picture|portrait|image($|_)", "image_url", "image_url"),
    _meaning("birth", r"birth|dob($|_)", None, "date_of_birth"),
    _meaning("coordinate", r"lat(itude)?($|_)|lon(gitude)?($|_)|lng($|_)", None, "noise"),
    _meaning("salary", r"salary", None, "noise"),
    _meaning("website", r"website|homepage", "url", "url"),
    _meaning("country", r"country", "country", None),
    _meaning("currency", r"currency", "currency_code", None),
    _meaning("colour", r"colou?r", "hex_color", None),
    _meaning("slug", r"slug", "slug", None),
    _meaning("timezone", r"time_?zone", "timezone", None),
    _meaning("url", r"url|link", "url", None),
    _meaning("file_name", r"file_?name", "file_name", None),
    _meaning("mime_type", r"content_type|mime_?type|media_type", "mime_type", None),
    _meaning("job", r"job($|_)|occupation|position($|_)", "job", None),
    _meaning("title", r"title|subject|headline", "sentence", None),
    # What people write about people: an order's notes, a ticket's comments, a bio.
    # Whole words: ``commentable_type`` names a model, ``notes_count`` counts.
    _meaning("free_text", r"(notes?|comments?|remarks?|memos?|bio|biography|about_me)$",
             "paragraph", "sentence"),
    _meaning("prose", r"description|notes?($|_)|comments?($|_)|body|summary|text($|_)"
             r"|content($|_)|message", "paragraph", None),
    _meaning("name", r"names?($|_)", "name", "name"),
)  # fmt: skip


# A last word that makes the name a kind of the thing, not the thing: an e-mail's type
# ("work"), a token's type ("bearer"), a passkey's device type ("multiDevice").
_QUALIFIERS = frozenset({"type", "kind", "status", "count"})


def meanings_of(name: str) -> Iterator[Meaning]:
    """The meanings a column's (or a domain's, or a JSON key's) name has, first first.

    Under a qualifier (``email_type``, ``token_type``), a meaning its words
    before it have is not the column's; one of the whole name is
    (``content_type``, a MIME type).
    """
    parts = words(name)
    snaked = "_".join(parts)
    head = "_".join(parts[:-1]) if len(parts) > 1 and parts[-1] in _QUALIFIERS else None
    return (
        m
        for m in MEANINGS
        if m.pattern.search(snaked) and (head is None or not m.pattern.search(head))
    )
