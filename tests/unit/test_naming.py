"""Names derived from hostile branch names stay valid, readable and distinct."""

from __future__ import annotations

import re

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from envs.core.naming import (
    MAX_LABEL,
    NamingError,
    derive,
    environment_name,
    is_dns_label,
    is_label_value,
    repository_label,
)

REPO = "acme/shop"
HOSTILE = [
    "../../etc/passwd",
    "x" * 250,
    "!!!...---",
    "Feature/LOGIN",
    "release.v1.2.3",
    "fix-🔥-bug",
    "ünïcödé/ブランチ",
    "-leading-and-trailing-",
    "a--b",
    "",
    " ",
    "refs/heads/main",
    "$(rm -rf /)",
    "\x00nul",
]

branches = st.text(min_size=0, max_size=300)
prs = st.integers(min_value=1, max_value=10**9)
repos = st.from_regex(r"[A-Za-z0-9-]{1,39}/[A-Za-z0-9._-]{1,100}", fullmatch=True)
prefixes = st.sampled_from(["", "shop-", "a-", "team-x-"])


def test_clean_branch_is_used_verbatim() -> None:
    assert environment_name(REPO, 42, "feature-login") == "pr-42-feature-login"


@pytest.mark.parametrize("branch", HOSTILE)
def test_hostile_branch_names_give_valid_namespaces(branch: str) -> None:
    name = environment_name(REPO, 7, branch)
    assert is_dns_label(name), name
    assert name.startswith("pr-7")


def test_sanitised_names_keep_the_readable_part_and_add_a_hash() -> None:
    name = environment_name(REPO, 42, "Feature/Login")
    assert re.fullmatch(r"pr-42-feature-login--[a-z2-7]{8}", name)


def test_long_branch_is_truncated_to_63_with_hash() -> None:
    name = environment_name(REPO, 123456, "very-long-" * 30)
    assert len(name) == MAX_LABEL or len(name) < MAX_LABEL
    assert name.startswith("pr-123456-very-long-")
    assert re.search(r"--[a-z2-7]{8}$", name)


def test_prefix_separates_repositories_sharing_a_cluster() -> None:
    assert environment_name("acme/shop", 1, "main", "shop-") == "shop-pr-1-main"
    assert environment_name("acme/blog", 1, "main", "blog-") == "blog-pr-1-main"


@pytest.mark.parametrize("prefix", ["Shop-", "shop", "-shop-", "a--b-", "x" * 30 + "-"])
def test_bad_prefix_is_refused(prefix: str) -> None:
    with pytest.raises(NamingError, match="prefix"):
        environment_name(REPO, 1, "main", prefix)


def test_pr_number_must_be_positive() -> None:
    with pytest.raises(NamingError):
        environment_name(REPO, 0, "main")


@settings(max_examples=1000)
@given(repo=repos, pr=prs, branch=branches, prefix=prefixes)
@example(repo=REPO, pr=1, branch="-", prefix="")
def test_every_name_is_a_dns_label(repo: str, pr: int, branch: str, prefix: str) -> None:
    names = derive(repo, pr, branch, prefix=prefix)
    assert is_dns_label(names.namespace)
    assert len(names.namespace) <= MAX_LABEL
    assert names.namespace.startswith(f"{prefix}pr-{pr}")
    assert all(is_label_value(v) for v in names.labels.values())


@settings(max_examples=1000)
@given(repo=repos, pr=prs, branch=branches)
def test_names_are_deterministic(repo: str, pr: int, branch: str) -> None:
    assert derive(repo, pr, branch) == derive(repo, pr, branch)


@settings(max_examples=1000)
@given(pr_a=prs, branch_a=branches, pr_b=prs, branch_b=branches)
@example(pr_a=4, branch_a="2-x", pr_b=42, branch_b="x")
@example(pr_a=1, branch_a="Main", pr_b=1, branch_b="main")
@example(pr_a=1, branch_a="a/b", pr_b=1, branch_b="a-b")
@example(pr_a=1, branch_a="x" * 100, pr_b=1, branch_b="x" * 101)
def test_distinct_pull_requests_never_share_a_name(
    pr_a: int, branch_a: str, pr_b: int, branch_b: str
) -> None:
    if (pr_a, branch_a) == (pr_b, branch_b):
        return
    assert environment_name(REPO, pr_a, branch_a) != environment_name(REPO, pr_b, branch_b)


@settings(max_examples=1000)
@given(pr=prs, branch=st.from_regex(r"[a-z0-9]+(-[a-z0-9]+)*", fullmatch=True))
def test_clean_short_branches_are_readable_verbatim(pr: int, branch: str) -> None:
    expected = f"pr-{pr}-{branch}"
    if len(expected) <= MAX_LABEL:
        assert environment_name(REPO, pr, branch) == expected


@settings(max_examples=1000)
@given(repo=repos)
def test_repository_label_is_a_valid_label_value(repo: str) -> None:
    assert is_label_value(repository_label(repo))


def test_repository_label_is_lossless_when_it_fits() -> None:
    assert repository_label("acme/shop") == "acme.shop"


def test_head_sha_label_must_be_hex() -> None:
    with pytest.raises(NamingError, match="SHA"):
        derive(REPO, 1, "main", head_sha="not-a-sha")
    assert derive(REPO, 1, "main", head_sha="a" * 40).labels["preview-envs.dev/sha"] == "a" * 40
