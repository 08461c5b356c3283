"""Benchmark: webhook → URL on the PR, close → namespace gone, gc over stale environments.

    .venv/bin/python bench/lifecycle.py [--prs 1,5,20] [--workers 2] [--stale 200] [--real]

Needs the toolchain and control plane built (scripts/toolchain, scripts/cluster build).
Starts a local cluster, a fake GitHub (tests/contract/fake_github.py) and
``previewctl serve --workers N`` as processes, then for each batch size opens that many
PRs at once (GitHub's ``pull_request.opened`` example, signed, one PR number each) and
promotes their images, and measures per PR the time until the sticky comment shows the URL
and the deployment is ``success``; then closes them all and measures until each namespace
is gone. Baseline in the same run: a bare Automation-API ``up`` and ``destroy`` of the same
stack through ``stacks.engine`` with no service around it. Finally ``previewctl gc`` over
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
from envs.core.model import Environment, EnvironmentStatus  # noqa: E402
from envs.environments.stack_plan import Placement, plan_preview  # noqa: E402
from envs.store import open_store  # noqa: E402
from stacks.spec import DEFAULT_INGRESS_NAMESPACE  # noqa: E402
from tests.cli_runner import child_env, toolchain_env  # noqa: E402
from tests.contract.fake_github import FakeGitHub  # noqa: E402
from tests.contract.github_contract import webhook_examples  # noqa: E402
from tests.contract.service_harness import SPEC_TEXT  # noqa: E402
from tests.e2e.cluster_infra import ClusterInfra  # noqa: E402
from tests.helpers import deliver, free_port, wait_for  # noqa: E402
from tests.http_server import serving  # noqa: E402

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


class Bench:
    def __init__(
        self, base: str, fake: FakeGitHub, kube: client.CoreV1Api, image: Callable[[int], str],
        real: bool,
    ) -> None:  # fmt: skip
        self.base = base
        self.fake = fake
        self.kube = kube
        self.image = image
        self.real = real

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
        started = time.monotonic()
        for number in numbers:
            self.deliver("pull_request", _pr_payload("opened", number))
            self.promote(number)
        to_url = self._times(numbers, self.url_reported, started, "URLs")
        started = time.monotonic()
        for number in numbers:
            self.deliver("pull_request", _pr_payload("closed", number))
        to_gone = self._times(numbers, self.namespace_gone, started, "namespaces gone")
        return {
            "prs": len(numbers),
            "to_url_p50_s": _percentile(to_url, 0.5),
            "to_url_p95_s": _percentile(to_url, 0.95),
            "to_gone_p50_s": _percentile(to_gone, 0.5),
            "to_gone_p95_s": _percentile(to_gone, 0.95),
        }

    def _times(
        self, numbers: list[int], done: Callable[[int], bool], started: float, what: str
    ) -> list[float]:
        times: dict[int, float] = {}
        deadline = started + 1800
        while len(times) < len(numbers):
            for number in numbers:
                if number not in times and done(number):
                    times[number] = time.monotonic() - started
            if time.monotonic() > deadline:
                raise SystemExit(f"timed out waiting for {what}: {sorted(times)}")
            time.sleep(0.1)
        return list(times.values())


def _image(number: int) -> str:
    return f"ghcr.io/codertocat/hello-world@sha256:{number:064x}"


NODE_INGRESS = "http://10.245.255.1"
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
        response = httpx.get(f"{NODE_INGRESS}/api/rows", headers={"Host": host}, timeout=5)
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
        | (REAL_NODE_ENV if real else {})
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


REAL_NODE_ENV = {"PREVIEW_INGRESS_NAMESPACE": "traefik", "PREVIEW_DATABASE_ADDRESS": "port-forward"}


def _measure(args: argparse.Namespace, kubeconfig: str, tmp: Path) -> dict[str, Any]:
    fake = FakeGitHub()
    results: dict[str, Any] = {"bench": "lifecycle", "workers": args.workers, "real": args.real}
    demo = _demo_image() if args.real else ""
    image: Callable[[int], str] = (lambda _: demo) if args.real else _image
    with serving(fake.app()) as github_url:
        proc, base, env = _start_service(tmp, kubeconfig, github_url, args.workers, args.real)
        try:
            kube = client.CoreV1Api(
                config.new_client_from_config(config_file=kubeconfig)  # type: ignore[no-untyped-call]
            )
            bench = Bench(base, fake, kube, image, args.real)
            first = 100
            for n in (int(n) for n in args.prs.split(",")):
                _log(f"batch of {n} PR(s)...")
                results[f"prs_{n}"] = bench.batch(list(range(first, first + n)))
                first += n
                _log(json.dumps(results[f"prs_{n}"]))
        finally:
            os.killpg(proc.pid, signal.SIGTERM)
            proc.wait(timeout=60)
    root = env.get("PREVIEW_PULUMI_ROOT")
    settings = Settings(
        state_dir=tmp / "bare",
        kubeconfig=kubeconfig,
        pulumi_root=Path(root) if root else None,
        pulumi_home=Path(env["PREVIEW_PULUMI_HOME"]),
        ingress_namespace="traefik" if args.real else DEFAULT_INGRESS_NAMESPACE,
    )
    _log("bare Automation-API up/destroy...")
    spec_text = _real_spec() if args.real else SPEC_TEXT
    results["bare_automation_api"] = _bare_automation_api(settings, spec_text, image(999))
    one = results.get("prs_1")
    if one:
        bare_up = results["bare_automation_api"]["up_s"]
        results["to_url_vs_bare_up"] = round(one["to_url_p50_s"] / bare_up, 2)
        results["overhead_s"] = round(one["to_url_p50_s"] - bare_up, 2)
    _log(f"gc over {args.stale} stale environments...")
    results["gc"] = _gc(tmp / "state", env, args.stale)
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--prs", default="1,5,20")
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
