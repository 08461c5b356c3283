"""A local TCP port that reaches one pod's port through the Kubernetes API.

What ``kubectl port-forward`` does, for a provisioner that runs outside the
cluster (a laptop, a CI runner, this project's tests): its worker seeds a
preview's database over the API server's connection to the kubelet, with no
route to the pod network and no hole in the preview's NetworkPolicies. It
needs ``create`` on ``pods/portforward`` in the preview's namespace, which the
environment role grants there only.

Each local connection gets its own stream (the API multiplexes one TCP
connection per stream), so a client that opens several connections (the
anonymiser's readers) works unchanged.
"""

from __future__ import annotations

import contextlib
import logging
import socket
import threading
from collections.abc import Iterator
from typing import Any

from kubernetes import client
from kubernetes.stream import portforward

log = logging.getLogger(__name__)

CHUNK = 1 << 16


@contextlib.contextmanager
def forwarded(
    core: client.CoreV1Api, namespace: str, pod: str, port: int
) -> Iterator[tuple[str, int]]:
    """Listen on 127.0.0.1 (a free port) and relay each connection to ``pod:port``."""
    listener = socket.create_server(("127.0.0.1", 0))
    address: tuple[str, int] = listener.getsockname()

    def accept() -> None:
        while True:
            try:
                local, _ = listener.accept()
            except OSError:  # closed: the block below is done
                return
            relay = threading.Thread(
                target=_relay, args=(core, namespace, pod, port, local), daemon=True
            )
            relay.start()

    acceptor = threading.Thread(target=accept, name=f"port-forward {namespace}/{pod}", daemon=True)
    acceptor.start()
    try:
        yield address
    finally:
        listener.close()
        acceptor.join(timeout=5)


def _relay(
    core: client.CoreV1Api, namespace: str, pod: str, port: int, local: socket.socket
) -> None:
    try:
        stream: Any = portforward(
            core.connect_get_namespaced_pod_portforward, pod, namespace, ports=str(port)
        )
    except Exception as exc:  # the client sees its connection closed; say why here
        log.warning("port-forward to %s/%s:%d refused: %s", namespace, pod, port, exc)
        local.close()
        return
    remote = stream.socket(port)
    remote.setblocking(True)
    back = threading.Thread(target=_pump, args=(remote, local), daemon=True)
    back.start()
    _pump(local, remote)
    back.join()
    error = stream.error(port)
    if error:
        log.warning("port-forward to %s/%s:%d: %s", namespace, pod, port, error)
    stream.close()
    local.close()


def _pump(source: Any, sink: Any) -> None:
    """Copy until ``source`` ends, then end ``sink``'s writing side (half-close)."""
    try:
        while data := source.recv(CHUNK):
            sink.sendall(data)
    except OSError:
        pass
    with contextlib.suppress(OSError):
        sink.shutdown(socket.SHUT_WR)
