"""Benchmark: webhook → URL on the PR, close → namespace gone, gc over stale environments.

    .venv/bin/python bench/lifecycle.py [--one-by-one 10] [--prs 1,5,20] [--workers 2]
                                        [--stale 200] [--real]

Needs the toolchain and control plane built (scripts/toolchain, scripts/cluster build).
Starts a local cluster, a fake GitHub (tests/contract/fake_github.py) and
``previewctl serve --workers N`` as processes, then opens ``--one-by-one`` PRs one after
another (p50/p95 of a PR alone), then for each batch size opens that many PRs at once
(GitHub's ``pull_request.opened`` example, signed, one PR number each) and promotes their
images, and measures per PR the time until the sticky comment shows the URL and the
deployment is ``success``, with where that time went (queued, engine, database, app, deploy
tail, seed queued, seed, report: from the journal and the pods' conditions); then closes
them all and measures until each namespace is gone. The service's peak RSS is sampled
throughout, alone and with the engine processes it starts. Baseline in the same run: a
bare Automation-API ``up`` and ``destroy`` of the same stack through ``stacks.engine``
with no service around it. Finally ``previewctl gc`` over
``--stale`` expired environments whose resources are already gone (the common debris).

With ``--real`` (root) the cluster has a real node (scripts/cluster up --real): every PR
deploys the demo app (examples/demo-app, built and pushed once, so its image is on the node)
with its PostgreSQL, is seeded through a port-forward, and counts as done when its URL,
asked through the node's Traefik, answers 200 with the seeded rows; the bare baseline
deploys the same stack.

Prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import yaml  # noqa: E402
from kubernetes import client, config  # noqa: E402
from kubernetes.client.exceptions import ApiException  # noqa: E402

from envs.config.settings import Settings  # noqa: E402
from envs.config.spec_loading import parse_spec  # noqa: E402
from envs.core.model import Environment, EnvironmentStatus, Operation, OperationKind  # noqa: E402
from envs.environments.stack_plan import Placement, plan_preview  # noqa: E402
from envs.store import open_store  # noqa: E402
from envs.store.store import Store  # noqa: E402
from stacks.spec import DEFAULT_INGRESS_NAMESPACE  # noqa: E402
from tests.cli_runner import child_env, toolchain_env  # noqa: E402
from tests.contract.fake_github import FakeGitHub  # noqa: E402
from tests.contract.github_contract import webhook_examples  # noqa: E402
from tests.contract.service_harness import SPEC_TEXT  # noqa: E402
from tests.e2e.cluster_infra import ClusterInfra  # noqa: E402
from tests.helpers import deliver, free_port, session_members, wait_for  # noqa: E402
from tests.http_server import serving  # noqa: E402
from tests.node.real_node import INGRESS  # noqa: E402
from tests.node.real_node import SETTINGS as REAL_NODE  # noqa: E402

REPO = "Codertocat/Hello-World"
SECRET = "bench-lifecycle-secret"
TOKEN = "bench-lifecycle-token"


def _log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))], 2)


def _pr_payload(action: str, number: int) -> dict[str, Any]:
    example = next(e for e in webhook_examples()["pull_request"] if e["action"] == action)
    payload = copy.deepcopy(example)
    payload["number"] = number
    payload["pull_request"]["number"] = number
    payload["pull_request"]["head"]["ref"] = f"bench-{number}"
    payload["pull_request"]["head"]["sha"] = f"{number:040x}"
    return payload


class PeakMemory:
    """The service's peak resident memory, sampled twice a second from /proc.

    Two figures: the service's own processes (``serve`` and its workers), and
    everything in its session, which adds the Pulumi CLI and provider plugin
    each update starts: the second is what a pod running the service must fit.
    """

    def __init__(self, session: int) -> None:
        self.session = session
        self.service_mib = 0.0
        self.session_mib = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

    def _run(self) -> None:
        while not self._stop.wait(0.5):
            service = session = 0
            for command, rss in _session_processes(self.session):
                session += rss
                if "envs.cli.main" in command:
                    service += rss
            self.service_mib = max(self.service_mib, round(service / 1024, 1))
            self.session_mib = max(self.session_mib, round(session / 1024, 1))


def _session_processes(session: int) -> list[tuple[str, int]]:
    """(command line, RSS in KiB) of every live process in a session."""
    found = []
    for pid in session_members(session):
        proc = Path(f"/proc/{pid}")
        try:
            command = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            status = (proc / "status").read_text().splitlines()
            rss = next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))
        except (OSError, StopIteration):  # ended meanwhile, or a kernel thread
            continue
        found.append((command, rss))
    return found


class Bench:
    def __init__(
        self, base: str, fake: FakeGitHub, kube: client.CoreV1Api, image: Callable[[int], str],
        real: bool, store: Store | None = None,
    ) -> None:  # fmt: skip
        self.base = base
        self.fake = fake
        self.kube = kube
        self.image = image
        self.real = real
        self.store = store

    def deliver(self, event: str, payload: dict[str, Any]) -> None:
        deliver(self.base, SECRET.encode(), event, payload).raise_for_status()

    def promote(self, number: int) -> None:
        response = httpx.post(
            f"{self.base}/promote",
            json={"repository": REPO, "sha": f"{number:040x}", "image": self.image(number)},
            headers={"Authorization": f"Bearer {TOKEN}"},
            timeout=30,
        )
        response.raise_for_status()

    def url_reported(self, number: int) -> bool:
        if self.real and not _serves_seeded_rows(number):
            return False
        sticky = [c.body for c in self.fake.comments_on(REPO, number) if "**ready**" in c.body]
        deployments = [
            d for d in self.fake.deployments_of(REPO) if d.environment.endswith(f"-{number}")
        ]
        return bool(sticky) and any(
            d.statuses and d.statuses[-1]["state"] == "success" for d in deployments
        )

    def namespace_gone(self, number: int) -> bool:
        try:
            found = self.kube.list_namespace(label_selector=f"preview-envs.dev/pr={number}")
        except ApiException:
            return False
        return not found.items

    def batch(self, numbers: list[int]) -> dict[str, Any]:
        """Open ``numbers`` at once, wait for every URL, then close them all."""
        opened, to_url = self.open(numbers)
        to_gone = self.close(numbers)
        return _summary(to_url, to_gone) | {"prs": len(numbers), "phases": opened}

    def one_by_one(self, numbers: list[int]) -> dict[str, Any]:
        """Each PR opened and closed alone: the time a single PR takes, over many PRs."""
        to_url: list[float] = []
        to_gone: list[float] = []
        phases: dict[str, list[float]] = {}
        for number in numbers:
            opened, took = self.open([number])
            to_url += took
            to_gone += self.close([number])
            for phase, value in opened.items():
                phases.setdefault(phase, []).append(value["p50"])
        return _summary(to_url, to_gone) | {
            "prs": len(numbers),
            "phases": {k: _spread(v) for k, v in phases.items()},
        }

    def open(self, numbers: list[int]) -> tuple[dict[str, dict[str, float]], list[float]]:
        """Seconds to each URL, and where they went (:func:`_phases`), read before closing."""
        at = datetime.now(UTC)
        started = time.monotonic()
        for number in numbers:
            self.deliver("pull_request", _pr_payload("opened", number))
            self.promote(number)
        to_url = self._times(numbers, self.url_reported, started, "URLs")
        per_pr = [
            _phases(at, at + timedelta(seconds=s), self.operations(n), self.pods(n))
            for n, s in to_url.items()
        ]
        names = dict.fromkeys(phase for phases in per_pr for phase in phases)
        spread = {name: _spread([p[name] for p in per_pr if name in p]) for name in names}
        return spread, list(to_url.values())

    def close(self, numbers: list[int]) -> list[float]:
        started = time.monotonic()
        for number in numbers:
            self.deliver("pull_request", _pr_payload("closed", number))
        return list(self._times(numbers, self.namespace_gone, started, "namespaces gone").values())

    def operations(self, number: int) -> list[Operation]:
        return self.store.operations(REPO, number) if self.store is not None else []

    def pods(self, number: int) -> list[Any]:
        found = self.kube.list_pod_for_all_namespaces(
            label_selector=f"preview-envs.dev/pr={number}"
        )
        return list(found.items)

    def _times(
        self, numbers: list[int], done: Callable[[int], bool], started: float, what: str
    ) -> dict[int, float]:
        times: dict[int, float] = {}
        deadline = started + 1800
        while len(times) < len(numbers):
            for number in numbers:
                if number not in times and done(number):
                    times[number] = time.monotonic() - started
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}: {sorted(times)}")
            time.sleep(0.1)
        return times


def _summary(to_url: list[float], to_gone: list[float]) -> dict[str, Any]:
    return {
        "to_url_p50_s": _percentile(to_url, 0.5),
        "to_url_p95_s": _percentile(to_url, 0.95),
        "to_gone_p50_s": _percentile(to_gone, 0.5),
        "to_gone_p95_s": _percentile(to_gone, 0.95),
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {"p50": _percentile(values, 0.5), "p95": _percentile(values, 0.95)}


def _phases(
    opened: datetime, served: datetime, operations: list[Operation], pods: list[Any]
) -> dict[str, float]:
    """Where one PR's time to URL went, in seconds, from the journal and the pods' conditions.

    Each phase ends where the next begins, so they add up to the time to URL:
    queued (webhook to the deploy's start), engine (to the first pod created:
    CLI, plan, namespace, guard rails), database (its pod to Ready), app (the
    database Ready to the app's pod Ready, or the app pod's own start when it
    is the later), deploy tail (to the deploy's end: rollout wait, outputs),
    seed queued, seed, report (to the URL seen serving). The pods' times come
    from the API server at one-second resolution: phases are approximate to
    that, and a phase the node did not go through is left out.
    """
    deploy = next((o for o in reversed(operations) if o.kind is OperationKind.UP), None)
    seed = next((o for o in reversed(operations) if o.kind is OperationKind.RESEED), None)
    database = _ready_at(pods, "postgres")
    app = _ready_at(pods, "app")
    created = [p.metadata.creation_timestamp for p in pods if p.metadata.creation_timestamp]
    marks: list[tuple[str, datetime | None]] = [
        ("queued", deploy.started_at if deploy else None),
        ("engine", min(created) if created else None),
        ("database", database),
        ("app", app),
        ("deploy_tail", deploy.finished_at if deploy else None),
        ("seed_queued", seed.started_at if seed else None),
        ("seed", seed.finished_at if seed else None),
        ("report", served),
    ]
    phases: dict[str, float] = {}
    last = opened
    for name, mark in marks:
        if mark is None:
            continue
        phases[name] = round(max(0.0, (mark - last).total_seconds()), 2)
        last = max(last, mark)
    return phases


def _ready_at(pods: list[Any], component: str) -> datetime | None:
    for pod in pods:
        if (pod.metadata.labels or {}).get("app.kubernetes.io/name") != component:
            continue
        for condition in pod.status.conditions or ():
            if condition.type == "Ready" and condition.status == "True":
                return condition.last_transition_time  # type: ignore[no-any-return]
    return None


def _image(number: int) -> str:
    return f"ghcr.io/codertocat/hello-world@sha256:{number:064x}"


DEMO = ROOT / "examples" / "demo-app"


def _real_spec() -> str:
    """preview.yaml with requests small enough for twenty previews on two cores."""
    spec = yaml.safe_load((DEMO / "preview.yaml").read_text())
    small = {
        "requests": {"cpu": "10m", "memory": "48Mi"},
        "limits": {"cpu": "500m", "memory": "256Mi"},
    }
    spec["app"]["resources"] = spec["database"]["resources"] = small
    return yaml.safe_dump(spec)


def _serves_seeded_rows(number: int) -> bool:
    """The PR's URL, through the node's ingress, answers 200 with the seeded rows."""
    try:
        host = f"pr-{number}-bench-{number}.preview.test"
        response = httpx.get(f"{INGRESS}/api/rows", headers={"Host": host}, timeout=5)
    except httpx.HTTPError:
        return False
    return response.status_code == 200 and response.json()["counts"]["customers"] > 0


def _demo_image() -> str:
    """The demo app built and pushed once, as CI would: repository@digest."""
    images = str(ROOT / "scripts" / "images")
    layout = subprocess.run(
        [images, "layout", "demo-app"], capture_output=True, text=True, check=True
    ).stdout.strip()
    return subprocess.run(
        [images, "push", layout, "127.0.0.1:5001/demo-app:bench"],
        capture_output=True, text=True, check=True,
    ).stdout.strip()  # fmt: skip


def _bare_automation_api(settings: Settings, spec_text: str, image: str) -> dict[str, float]:
    """The same stack through stacks.engine alone: no store, queue, worker or GitHub."""
    from envs.cli.context import Context

    spec = parse_spec(spec_text, "Hello-World.yaml")
    placement = Placement(settings.ingress_namespace)
    plan = plan_preview(spec, REPO, 999, "bench-bare", f"{999:040x}", image, {}, placement)
    engine = Context(settings).engine(None)
    started = time.monotonic()
    engine.up(plan.names.stack, plan.stack)
    up_s = time.monotonic() - started
    started = time.monotonic()
    engine.destroy(plan.names.stack, remove=True)
    return {"up_s": round(up_s, 2), "destroy_s": round(time.monotonic() - started, 2)}


def _gc(state: Path, env: dict[str, str], stale: int) -> dict[str, Any]:
    store = open_store(f"sqlite:///{state}/state.db")
    now = datetime.now(UTC)
    for number in range(5000, 5000 + stale):
        store.save(
            Environment(
                repository=REPO,
                pr_number=number,
                branch=f"stale-{number}",
                namespace=f"pr-{number}-stale",
                stack=f"pr-{number}-stale",
                status=EnvironmentStatus.READY,
                created_at=now - timedelta(days=5),
                updated_at=now - timedelta(days=5),
                expires_at=now - timedelta(days=2),
            )
        )
    started = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "envs.cli.main", "gc", "--json", "--grace-minutes", "0"],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    elapsed = time.monotonic() - started
    if result.returncode != 0:
        raise SystemExit(f"gc failed: {result.stderr[-2000:]}")
    removed = len(json.loads(result.stdout)["done"])
    left = [e for e in store.environments() if e.status.is_live and e.pr_number >= 5000]
    store.close()
    return {"stale": stale, "removed": removed, "left": len(left), "seconds": round(elapsed, 2)}


def _start_service(
    tmp: Path, kubeconfig: str, github_url: str, workers: int, real: bool
) -> tuple[subprocess.Popen[bytes], str, dict[str, str]]:
    specs = tmp / "specs" / "Codertocat"
    specs.mkdir(parents=True)
    (specs / "Hello-World.yaml").write_text(_real_spec() if real else SPEC_TEXT)
    (specs / "seed-recipe.yaml").write_text((DEMO / "seed-recipe.yaml").read_text())
    env = child_env(
        toolchain_env()
        | {
            "PREVIEW_STATE_DIR": str(tmp / "state"),
            "PREVIEW_CONFIG_DIR": str(tmp / "specs"),
            "PREVIEW_KUBECONFIG": kubeconfig,
            "PREVIEW_WEBHOOK_SECRET": SECRET,
            "PREVIEW_PROMOTE_TOKEN": TOKEN,
            "PREVIEW_GITHUB_TOKEN": "ghs_bench",
            "PREVIEW_GITHUB_API_URL": github_url,
            "PREVIEW_LOG_LEVEL": "WARNING",
        }
        | (REAL_NODE if real else {})
    )
    port = free_port()
    command = [sys.executable, "-m", "envs.cli.main", "serve", "--port", str(port)]
    with (tmp / "serve.log").open("w") as sink:
        proc = subprocess.Popen(
            [*command, "--workers", str(workers)], env=env, stderr=sink, start_new_session=True
        )
    base = f"http://127.0.0.1:{port}"
    wait_for(lambda: _ready(base), "the service")
    return proc, base, env


def _measure(args: argparse.Namespace, kubeconfig: str, tmp: Path) -> dict[str, Any]:
    fake = FakeGitHub()
    results: dict[str, Any] = {"bench": "lifecycle", "workers": args.workers, "real": args.real}
    demo = _demo_image() if args.real else ""
    image: Callable[[int], str] = (lambda _: demo) if args.real else _image
    with serving(fake.app()) as github_url:
        proc, base, env = _start_service(tmp, kubeconfig, github_url, args.workers, args.real)
        store = open_store(f"sqlite:///{tmp}/state/state.db")
        try:
            kube = client.CoreV1Api(
                config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            )
            bench = Bench(base, fake, kube, image, args.real, store)
            first = 100
            with PeakMemory(proc.pid) as memory:
                if args.one_by_one:
                    _log(f"{args.one_by_one} PRs one after another...")
                    numbers = list(range(first, first + args.one_by_one))
                    results["one_by_one"] = bench.one_by_one(numbers)
                    first += args.one_by_one
                    _log(json.dumps(results["one_by_one"]))
                for n in (int(n) for n in args.prs.split(",") if n):
                    _log(f"batch of {n} PR(s)...")
                    results[f"prs_{n}"] = bench.batch(list(range(first, first + n)))
                    first += n
                    _log(json.dumps(results[f"prs_{n}"]))
            results["peak_rss_mib"] = {
                "service": memory.service_mib,
                "with_engine": memory.session_mib,
            }
        finally:
            store.close()
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    root = env.get("PREVIEW_PULUMI_ROOT")
    settings = Settings(
        state_dir=tmp / "bare",
        kubeconfig=kubeconfig,
        pulumi_root=Path(root) if root else None,
        pulumi_home=Path(env["PREVIEW_PULUMI_HOME"]),
        ingress_namespace=REAL_NODE["PREVIEW_INGRESS_NAMESPACE"]
        if args.real
        else DEFAULT_INGRESS_NAMESPACE,
    )
    _log("bare Automation-API up/destroy...")
    spec_text = _real_spec() if args.real else SPEC_TEXT
    results["bare_automation_api"] = _bare_automation_api(settings, spec_text, image(999))
    one = results.get("one_by_one") or results.get("prs_1")
    if one:
        bare_up = results["bare_automation_api"]["up_s"]
        results["to_url_vs_bare_up"] = round(one["to_url_p50_s"] / bare_up, 2)
        results["overhead_s"] = round(one["to_url_p50_s"] - bare_up, 2)
    _log(f"gc over {args.stale} stale environments...")
    results["gc"] = _gc(tmp / "state", env, args.stale)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prs", default="1,5,20", help="batch sizes opened at once")
    parser.add_argument(
        "--one-by-one", type=int, default=10, help="PRs opened one after another first (0: none)"
    )
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stale", type=int, default=200)
    parser.add_argument("--real", action="store_true", help="on a real node (root)")
    args = parser.parse_args()
    cluster = str(ROOT / "scripts" / "cluster")
    name = f"bench-lifecycle-{os.getpid()}"
    up = subprocess.run(
        [cluster, "up", name, *(["--real"] if args.real else [])],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    if up.returncode != 0:
        raise SystemExit(f"scripts/cluster up failed:\n{up.stderr[-3000:]}")
    kubeconfig = up.stdout.strip().splitlines()[-1]
    infra = None if args.real else ClusterInfra(kubeconfig).start()
    try:
        results = _measure(args, kubeconfig, Path(tempfile.mkdtemp(prefix="bench-lifecycle-")))
    finally:
        if infra is not None:
            infra.stop()
        subprocess.run([cluster, "down", name], capture_output=True, check=False)
    print(json.dumps(results))


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    main()
