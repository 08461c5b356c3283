"""The webhook service: an ASGI app that authenticates, records and queues, then answers.

Order matters for safety: the body is size-capped while it is read, the
signature is checked over the raw bytes before any parsing, and only then is
JSON decoded. The delivery and its jobs are committed in one transaction
before the 202, so GitHub's redelivery of a request we answered is a no-op
and a crash after the answer loses nothing. No GitHub call is ever made
here; the worker does the slow work outside GitHub's 10-second window.
"""

from __future__ import annotations

import asyncio
import hmac
import json
import queue
import re
import time
from collections.abc import AsyncIterator, Callable, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from pydantic import BaseModel, ConfigDict, ValidationError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from envs.core.clock import Clock, system_clock
from envs.core.errors import ConfigError
from envs.core.jobs import Promotion
from envs.core.model import COMMIT_SHA, REPOSITORY
from envs.environments.images import PromotedImage
from envs.github import signature
from envs.github.events import SUPPORTED_EVENTS, PayloadInvalid, jobs_for
from envs.github.oidc import OidcVerifier, PromotionRefused, TokenInvalid, looks_like_jwt
from envs.github.state_metrics import StateCollector
from envs.store import Store

REFUSAL_AUDIT_INTERVAL = timedelta(minutes=1)
MAX_REFUSING_CLIENTS = 10_000
_UNVERIFIED = frozenset({"too_large", "too_slow", "disconnected", "bad_signature"})
BODY_TIMEOUT_S = 10.0
MAX_BODY = 5 * 1024 * 1024  # GitHub caps payloads at 25 MB but PR events are far smaller
_DELIVERY = re.compile(r"^[A-Za-z0-9-]{1,100}$")


class BodyTooLarge(Exception):
    pass


class StorePool:
    """A few store connections shared by the request threads (each store is one connection)."""

    def __init__(self, opener: Callable[[], Store], size: int) -> None:
        self._opener = opener
        self._idle: queue.LifoQueue[Store] = queue.LifoQueue()
        self._slots = queue.Queue[None]()
        for _ in range(size):
            self._slots.put(None)
        self._all: list[Store] = []

    @contextmanager
    def store(self) -> Iterator[Store]:
        self._slots.get()
        try:
            try:
                store = self._idle.get_nowait()
            except queue.Empty:
                store = self._opener()
                self._all.append(store)
            try:
                yield store
            finally:
                self._idle.put(store)
        finally:
            self._slots.put(None)

    def close(self) -> None:
        for store in self._all:
            store.close()


@dataclass(frozen=True)
class ServiceConfig:
    webhook_secret: bytes
    promote_token: str | None = None  # shared by every repository: the weaker option
    oidc: OidcVerifier | None = None  # GitHub Actions' per-run tokens (envs.github.oidc)
    max_body: int = MAX_BODY
    # GitHub sends a delivery's body at once; a client that trickles or stalls holds a
    # connection and a task for nothing, so the whole body must arrive within this.
    body_timeout_s: float = BODY_TIMEOUT_S


class _PromoteBody(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    repository: str
    sha: str
    image: str
    actor: str = "ci"


class _Metrics:
    def __init__(self, pool: StorePool, clock: Clock) -> None:
        self.registry = CollectorRegistry()
        self.registry.register(StateCollector(pool.store, clock))
        self.deliveries = Counter(
            "preview_webhook_deliveries",
            "Webhook deliveries by event and outcome.",
            ["event", "outcome"],
            registry=self.registry,
        )
        self.latency = Histogram(
            "preview_webhook_seconds",
            "Time from request to answer.",
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
            registry=self.registry,
        )


class BodyTooSlow(Exception):
    pass


async def _read_in_time(request: Request, limit: int, seconds: float) -> bytes:
    """The body, capped in size and in time (a stalled client gets a 408, not a task)."""
    try:
        return await asyncio.wait_for(_read_capped(request, limit), seconds)
    except TimeoutError:
        raise BodyTooSlow from None


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


class WebhookService:
    """The routes, over a pool of store connections."""

    def __init__(self, pool: StorePool, config: ServiceConfig, clock: Clock) -> None:
        self.pool = pool
        self.config = config
        self.clock = clock
        self.metrics = _Metrics(pool, clock)
        # When each client address last had a refused promotion audited: a refusal is
        # evidence, but a flood of them must not become a flood of writes.
        self._refusals_audited: dict[str, datetime] = {}

    def _audit_refused_promotion(self, client: str, reason: str) -> None:
        now = self.clock()
        last = self._refusals_audited.get(client)
        if last is not None and now - last < REFUSAL_AUDIT_INTERVAL:
            return
        if len(self._refusals_audited) > MAX_REFUSING_CLIENTS:
            self._refusals_audited.clear()
        self._refusals_audited[client] = now
        with self.pool.store() as store:
            store.audit(f"client {client}", "promote.refused", now, None, {"reason": reason})

    def _accept(self, delivery: str, event: str, payload: Any) -> tuple[int, dict[str, Any]]:
        accepted = jobs_for(event, payload, delivery)
        if not accepted.jobs:
            return (200 if event == "ping" else 202), {"queued": [], "note": accepted.note}
        with self.pool.store() as store:
            jobs = store.queue.accept_delivery(delivery, event, accepted.jobs, self.clock())
        if jobs is None:
            return 200, {"duplicate": True, "delivery": delivery}
        return 202, {"queued": [job.id for job in jobs], "note": accepted.note}

    async def webhook(self, request: Request) -> Response:
        started = time.perf_counter()
        event = request.headers.get("x-github-event", "")
        outcome, response = await self._webhook(request, event)
        # The sender picks the header: only a signed delivery of an event we know gets
        # its own series, so nobody can grow the registry by inventing event names.
        label = event if outcome not in _UNVERIFIED and event in SUPPORTED_EVENTS else "other"
        self.metrics.deliveries.labels(event=label, outcome=outcome).inc()
        self.metrics.latency.observe(time.perf_counter() - started)
        return response

    async def _webhook(self, request: Request, event: str) -> tuple[str, Response]:
        try:
            config = self.config
            body = await _read_in_time(request, config.max_body, config.body_timeout_s)
        except BodyTooLarge:
            return "too_large", _error(413, f"body larger than {self.config.max_body} bytes")
        except BodyTooSlow:
            return "too_slow", _error(408, "the body did not arrive in time")
        except ClientDisconnect:
            return "disconnected", _error(400, "client disconnected")
        header = request.headers.get("x-hub-signature-256")
        if not signature.verify(self.config.webhook_secret, body, header):
            reason = "missing" if not header else "invalid"
            return "bad_signature", _error(401, f"{reason} X-Hub-Signature-256")
        delivery = request.headers.get("x-github-delivery", "")
        if not _DELIVERY.match(delivery):
            return "bad_request", _error(400, "missing or malformed X-GitHub-Delivery")
        if not event:
            return "bad_request", _error(400, "missing X-GitHub-Event")
        if event not in SUPPORTED_EVENTS:
            return "unsupported", Response(status_code=204)
        try:
            payload = json.loads(body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            return "bad_json", _error(400, f"body is not JSON: {exc}")
        except RecursionError:  # signed, yet nested deeper than any payload GitHub sends
            return "bad_json", _error(400, "body is nested too deeply")
        if not isinstance(payload, dict):
            return "bad_json", _error(400, "body is not a JSON object")
        try:
            status, answer = await run_in_threadpool(self._accept, delivery, event, payload)
        except PayloadInvalid as exc:
            return "bad_payload", _error(400, str(exc))
        if status == 200:
            outcome = "duplicate" if answer.get("duplicate") else "ping"
            return outcome, JSONResponse(answer, status_code=200)
        return ("queued" if answer["queued"] else "ignored"), JSONResponse(answer, status_code=202)

    def _record_promotion(
        self, body: _PromoteBody, at: datetime, by: str, evidence: dict[str, str]
    ) -> int:
        with self.pool.store() as store, store.transaction():
            promotion = Promotion(body.repository, body.sha, body.image, by, at)
            job = store.promote(promotion)
            detail = {"sha": body.sha, "image": body.image, **evidence}
            store.audit(by, "promote.accepted", at, None, detail)
            return job.id

    async def promote(self, request: Request) -> Response:
        token, oidc = self.config.promote_token, self.config.oidc
        if not token and oidc is None:
            return _error(
                404,
                "promotion over HTTP is disabled; set PREVIEW_PROMOTE_OIDC_AUDIENCE (GitHub"
                " Actions OIDC) or PREVIEW_PROMOTE_TOKEN",
            )
        given = request.headers.get("authorization", "").removeprefix("Bearer ").strip()
        client = request.client.host if request.client else "unknown"
        by_oidc = oidc is not None and looks_like_jwt(given)
        if not by_oidc and not (token and hmac.compare_digest(given.encode(), token.encode())):
            reason = "missing bearer token" if not given else "wrong bearer token"
            await run_in_threadpool(self._audit_refused_promotion, client, reason)
            return _error(401, "missing or wrong bearer token")
        try:
            raw = await _read_in_time(request, 16_384, self.config.body_timeout_s)
            body = _PromoteBody.model_validate_json(raw)
        except BodyTooLarge:
            return _error(413, "body too large")
        except BodyTooSlow:
            return _error(408, "the body did not arrive in time")
        except ValidationError as exc:
            return _error(400, f"expected repository, sha, image: {exc.errors()[0]['msg']}")
        if not REPOSITORY.match(body.repository) or not COMMIT_SHA.match(body.sha):
            return _error(400, "repository must be OWNER/NAME and sha a full 40-hex commit SHA")
        try:
            PromotedImage.parse(body.image)
        except ConfigError as exc:
            return _error(400, str(exc))
        by, evidence = body.actor, {"auth": "shared-token", "declared_actor": body.actor}
        if by_oidc and oidc is not None:
            try:
                run = await run_in_threadpool(oidc.verify, given, body.repository, body.sha)
            except TokenInvalid as exc:
                await run_in_threadpool(self._audit_refused_promotion, client, str(exc)[:300])
                return _error(401, str(exc))
            except PromotionRefused as exc:
                await run_in_threadpool(self._audit_refused_promotion, client, str(exc)[:300])
                return _error(403, str(exc))
            by, evidence = run.name, run.evidence()
        job_id = await run_in_threadpool(self._record_promotion, body, self.clock(), by, evidence)
        return JSONResponse({"queued": [job_id]}, status_code=202)

    async def healthz(self, _: Request) -> Response:
        return PlainTextResponse("ok")

    def _ping_store(self) -> None:
        with self.pool.store() as store:
            store.check()

    async def readyz(self, _: Request) -> Response:
        try:
            await run_in_threadpool(self._ping_store)
        except Exception as exc:
            return _error(503, f"state store unavailable: {type(exc).__name__}")
        return PlainTextResponse("ready")

    async def metrics_route(self, _: Request) -> Response:
        body = await run_in_threadpool(generate_latest, self.metrics.registry)
        return Response(body, media_type=CONTENT_TYPE_LATEST)


def create_app(pool: StorePool, config: ServiceConfig, clock: Clock = system_clock) -> Starlette:
    service = WebhookService(pool, config, clock)

    @asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        yield
        pool.close()

    return Starlette(
        routes=[
            Route("/webhook", service.webhook, methods=["POST"]),
            Route("/promote", service.promote, methods=["POST"]),
            Route("/healthz", service.healthz, methods=["GET"]),
            Route("/readyz", service.readyz, methods=["GET"]),
            Route("/metrics", service.metrics_route, methods=["GET"]),
        ],
        lifespan=lifespan,
    )
