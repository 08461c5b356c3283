"""What a table's rows are, read from its name: organisations, things, or (else) people. Pure.

A ``name`` column means a person's name in ``customers``, a company's in
``vendors`` and neither in ``categories`` or ``projects``. The synthetic
seeder invents what the name says; ``seed inspect`` guesses personal data
from it (a category's name is no one's).
"""

from __future__ import annotations

import re

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
    r"|metrics?|reports?|dashboards?|themes?|badges?|tiers?|levels?|tokens?)$"
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
