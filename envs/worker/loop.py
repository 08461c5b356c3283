"""The worker: claims jobs from the queue, runs them under a lease, retries with backoff.

A heartbeat thread renews the lease while the job runs. If the process dies
the lease simply expires and another worker runs the job again; handlers are
written to converge when repeated. A job that keeps failing is given up
after its attempts, and the PR is told why.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta

from envs.core.clock import Clock, system_clock
from envs.core.jobs import Job, JobKind, JobStatus, NewJob, backoff
from envs.core.payloads import Report
from envs.store import Store
from envs.worker.failures import Permanent, Transient
from envs.worker.handlers import Handlers

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclass(frozen=True)
class WorkerOptions:
    lease: timedelta = timedelta(seconds=60)
    poll_interval: float = 0.5
    backoff_base: timedelta = timedelta(seconds=5)
    backoff_cap: timedelta = timedelta(minutes=10)


class Worker:
    def __init__(
        self,
        store: Store,
        handlers: Handlers,
        options: WorkerOptions = WorkerOptions(),
        clock: Clock = system_clock,
        name: str | None = None,
    ) -> None:
        self.store = store
        self.handlers = handlers
        self.options = options
        self.clock = clock
        self.name = name or worker_name()

    def run_once(self) -> Job | None:
        """Claim and run one job; None when nothing is ready."""
        job = self.store.queue.claim(self.name, self.clock(), self.options.lease)
        if job is None:
            return None
        if job.attempts > job.max_attempts:  # its workers kept dying mid-job
            gave_up = "gave up: the job's worker stopped every attempt"
            return self._give_up(job, gave_up, gave_up)
        stop = threading.Event()
        beat = threading.Thread(target=self._heartbeat, args=(job, stop), daemon=True)
        beat.start()
        try:
            self.handlers.run(job)
        except Permanent as exc:
            return self._give_up(job, str(exc), exc.public)
        except Exception as exc:
            if isinstance(exc, Transient):
                message, public = str(exc), exc.public
            else:
                # Not ours: its words are for the log; the PR is told where to look.
                message = f"{type(exc).__name__}: {exc}"
                public = f"an unexpected {type(exc).__name__}; see the service log"
                log.exception("job %s (%s) failed unexpectedly", job.id, job.kind)
            if job.exhausted:
                return self._give_up(job, message, public)
            delay = backoff(job.attempts, self.options.backoff_base, self.options.backoff_cap)
            log.warning("job %s (%s) retried in %s: %s", job.id, job.kind, delay, message)
            return self.store.queue.retry(
                job, self.name, self.clock(), self.clock() + delay, message
            )
        finally:
            stop.set()
            beat.join()
            self._note_rate_limits()
        return self.store.queue.finish(job, self.name, JobStatus.DONE, self.clock())

    def _note_rate_limits(self) -> None:
        """Keep GitHub's rate limit as this job left it, for every replica's /metrics."""
        try:
            for seen in self.handlers.github.rate_limits(self.clock()):
                self.store.github_cache.save_rate_limit(seen)
        except Exception:  # a metric is not worth failing a job for
            log.warning("could not record GitHub's rate limit", exc_info=True)

    def _give_up(self, job: Job, message: str, public: str) -> Job | None:
        log.error("job %s (%s) failed: %s", job.id, job.kind, message)
        finished = self.store.queue.finish(job, self.name, JobStatus.FAILED, self.clock(), message)
        if job.kind is not JobKind.REPORT and job.pr_number:
            # Tell the PR why, in words fit for it; a failing report is not reported again.
            error = f"{job.kind.value} failed after {job.attempts} attempt(s): {public}"
            failed = Report(error=error[:4000])
            report = NewJob(JobKind.REPORT, job.repository, job.pr_number, failed.dump())
            self.store.queue.enqueue(report, self.clock())
        return finished

    def _heartbeat(self, job: Job, stop: threading.Event) -> None:
        interval = self.options.lease.total_seconds() / 3
        while not stop.wait(interval):
            if not self.store.queue.heartbeat(job, self.name, self.clock(), self.options.lease):
                log.error("job %s: lease lost to another worker", job.id)
                return

    def run(self, stop: threading.Event, idle: Callable[[], None] | None = None) -> None:
        """Work until ``stop`` is set."""
        while not stop.is_set():
            try:
                ran = self.run_once()
            except Exception:
                log.exception("worker %s: claiming failed", self.name)
                ran = None
            if ran is None:
                if idle is not None:
                    idle()
                stop.wait(self.options.poll_interval)
