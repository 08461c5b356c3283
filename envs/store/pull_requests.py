"""What the service learnt from GitHub: PR snapshots, promoted images, GitHub object ids."""

from __future__ import annotations

import json

from envs.core.jobs import GitHubLinks, Promotion, PullRequest
from envs.core.model import EnvironmentKey, parse_time, require_aware, required_time
from envs.store.connector import Connector, Row


def _pull_request(row: Row) -> PullRequest:
    labels = row["labels"]
    return PullRequest(
        repository=row["repository"],
        pr_number=int(row["pr_number"]),
        state=row["state"],
        head_sha=row["head_sha"],
        branch=row["branch"],
        author=row["author"],
        draft=bool(row["draft"]),
        fork=bool(row["fork"]),
        labels=tuple(json.loads(labels) if isinstance(labels, str) else labels),
        approved_sha=row["approved_sha"],
        approved_image=row["approved_image"],
        head_pushed_at=parse_time(row["head_pushed_at"]),
        updated_at=required_time(row["updated_at"]),
    )


class PullRequestState:
    def __init__(self, connector: Connector) -> None:
        self._db = connector

    def save(self, pr: PullRequest) -> PullRequest:
        self._db.fetch(
            "save_pull_request",
            {
                "repository": pr.repository,
                "pr_number": pr.pr_number,
                "state": pr.state,
                "head_sha": pr.head_sha,
                "branch": pr.branch,
                "author": pr.author,
                "draft": pr.draft,
                "fork": pr.fork,
                "labels": json.dumps(list(pr.labels)),
                "approved_sha": pr.approved_sha,
                "approved_image": pr.approved_image,
                "head_pushed_at": pr.head_pushed_at,
                "updated_at": pr.updated_at,
            },
        )
        return pr

    def get(self, key: EnvironmentKey) -> PullRequest | None:
        rows = self._db.fetch(
            "get_pull_request", {"repository": key.repository, "pr_number": key.pr_number}
        )
        return _pull_request(rows[0]) if rows else None

    def open_at_sha(self, repository: str, head_sha: str) -> list[PullRequest]:
        rows = self._db.fetch(
            "pull_requests_at_sha", {"repository": repository, "head_sha": head_sha}
        )
        return [_pull_request(row) for row in rows]

    def promote(self, promotion: Promotion) -> Promotion:
        self._db.fetch(
            "save_promotion",
            {
                "repository": promotion.repository,
                "head_sha": promotion.head_sha,
                "image": promotion.image,
                "promoted_by": promotion.promoted_by,
                "promoted_at": require_aware(promotion.promoted_at, "promoted_at"),
            },
        )
        return promotion

    def promotion(self, repository: str, head_sha: str) -> Promotion | None:
        rows = self._db.fetch("get_promotion", {"repository": repository, "head_sha": head_sha})
        if not rows:
            return None
        row = rows[0]
        return Promotion(
            row["repository"],
            row["head_sha"],
            row["image"],
            row["promoted_by"],
            required_time(row["promoted_at"]),
        )

    def links(self, key: EnvironmentKey) -> GitHubLinks:
        rows = self._db.fetch(
            "get_github_links", {"repository": key.repository, "pr_number": key.pr_number}
        )
        if not rows:
            return GitHubLinks(key.repository, key.pr_number)
        row = rows[0]
        return GitHubLinks(
            row["repository"],
            int(row["pr_number"]),
            row["comment_id"],
            row["deployment_id"],
            row["deployment_sha"],
            row["deployment_state"],
            row["serving_deployment_id"],
        )

    def save_links(self, links: GitHubLinks) -> GitHubLinks:
        self._db.fetch(
            "save_github_links",
            {
                "repository": links.repository,
                "pr_number": links.pr_number,
                "comment_id": links.comment_id,
                "deployment_id": links.deployment_id,
                "deployment_sha": links.deployment_sha,
                "deployment_state": links.deployment_state,
                "serving_deployment_id": links.serving_deployment_id,
            },
        )
        return links
