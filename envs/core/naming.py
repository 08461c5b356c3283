"""Kubernetes and Pulumi names derived from a pull request.

Branch names are hostile input: GitHub allows unicode, dots, slashes, 250
characters and more. Everything we put into a cluster has to be a DNS-1123
label (lowercase alphanumerics and '-', at most 63 characters), and two
different pull requests must never share a namespace.

The rule, purely computational and without side effects:

* ``pr-<number>-<branch>`` verbatim when the branch already is a clean
  DNS label fragment and the whole name fits (``pr-42-feature-login``).
* Otherwise the branch is sanitised and/or truncated and a hash of the full
  identity (repository, number, branch) is appended after a *double*
  hyphen: ``pr-42-feature-login--k3q9x2ma``. A verbatim name never contains
  ``--`` (a clean branch has no doubled hyphen), so the two families cannot
  collide with each other; hashed names collide only if 40 bits of SHA-256
  do.

Names are unique per repository. Clusters shared by several repositories
give each repository a ``naming.prefix`` in its spec; the state store
refuses to hand the same namespace to two environments either way.
"""

from __future__ import annotations

import base64
import hashlib
import re
import unicodedata
from dataclasses import dataclass

from stacks.spec import SHA_LABEL

MAX_LABEL = 63
HASH_CHARS = 8
_DNS_LABEL = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
_NOT_SLUG = re.compile(r"[^a-z0-9]+")
_PREFIX = re.compile(r"^[a-z]([a-z0-9-]{0,18}[a-z0-9])?-$")
MAX_PREFIX = 21


class NamingError(ValueError):
    """An input that no name can be derived from (bad PR number or prefix)."""


def is_dns_label(value: str) -> bool:
    """True if ``value`` is a valid RFC 1123 label as Kubernetes checks it."""
    return len(value) <= MAX_LABEL and bool(_DNS_LABEL.match(value))


def is_label_value(value: str) -> bool:
    """True if ``value`` may be used as a Kubernetes label value."""
    return len(value) <= MAX_LABEL and bool(_LABEL_VALUE.match(value))


def is_valid_prefix(prefix: str) -> bool:
    """A prefix is empty, or a short DNS fragment ending in '-' ("shop-")."""
    return prefix == "" or (bool(_PREFIX.match(prefix)) and "--" not in prefix)


def slugify(text: str) -> str:
    """Lowercase ASCII, runs of anything else folded to one '-', trimmed."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    return _NOT_SLUG.sub("-", ascii_text.lower()).strip("-")


def identity_hash(*parts: str) -> str:
    """Short, DNS-safe digest of an identity; NUL-joined so parts cannot run together."""
    digest = hashlib.sha256("\0".join(parts).encode("utf-8", "surrogatepass")).digest()
    return base64.b32encode(digest).decode().lower()[:HASH_CHARS]


@dataclass(frozen=True)
class EnvironmentNames:
    """Every name one environment uses; all derived, never typed by a person."""

    namespace: str
    stack: str
    host_label: str
    labels: dict[str, str]


def environment_name(repository: str, pr_number: int, branch: str, prefix: str = "") -> str:
    """The namespace / host label for one pull request (see module docstring)."""
    if pr_number < 1:
        raise NamingError(f"pull request number must be positive, got {pr_number}")
    if not is_valid_prefix(prefix):
        raise NamingError(
            f"naming prefix {prefix!r} must be empty or lowercase letters, digits and '-', "
            f"start with a letter, end with a single '-', and be at most {MAX_PREFIX} characters"
        )
    head = f"{prefix}pr-{pr_number}"
    slug = slugify(branch)
    verbatim = f"{head}-{slug}" if slug else head
    if slug == branch and len(verbatim) <= MAX_LABEL:
        return verbatim
    suffix = "--" + identity_hash(repository, str(pr_number), branch)
    room = MAX_LABEL - len(head) - 1 - len(suffix)
    kept = slug[: max(room, 0)].rstrip("-")
    return f"{head}-{kept}{suffix}" if kept else f"{head}{suffix}"


def repository_label(repository: str) -> str:
    """``owner/name`` as a label value: ``owner.name``, hashed if it does not fit.

    GitHub owners cannot contain '.', so the first '.' splits the value back
    unambiguously; the full name is also kept in an annotation.
    """
    value = repository.replace("/", ".", 1)
    if is_label_value(value):
        return value
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "-", value).strip("-_.")
    suffix = "-" + identity_hash(repository)
    kept = cleaned[: MAX_LABEL - len(suffix)].rstrip("-_.")
    return f"{kept}{suffix}" if kept else suffix[1:]


def derive(
    repository: str, pr_number: int, branch: str, head_sha: str | None = None, prefix: str = ""
) -> EnvironmentNames:
    """All names for the environment of ``repository``#``pr_number``."""
    name = environment_name(repository, pr_number, branch, prefix)
    labels = {
        "app.kubernetes.io/managed-by": "preview-envs",
        "preview-envs.dev/repository": repository_label(repository),
        "preview-envs.dev/pr": str(pr_number),
    }
    if head_sha is not None:
        if not re.fullmatch(r"[0-9a-f]{7,40}", head_sha):
            raise NamingError(f"head SHA must be 7 to 40 lowercase hex digits, got {head_sha!r}")
        labels[SHA_LABEL] = head_sha
    return EnvironmentNames(namespace=name, stack=name, host_label=name, labels=labels)
