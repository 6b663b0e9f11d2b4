"""Small builders shared by the tests."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from engine import Node, Split, Template

S = "tests.steps."


def chain(*names: str, step: str = "Record", timeout: int = 30) -> Template:
    nodes = []
    for i, name in enumerate(names):
        ups = [names[i - 1]] if i else []
        nodes.append(Node(S + step, name, timeout=timeout, upstreams=ups))
    return Template("chain", nodes)


def diamond(step: str = "Record") -> Template:
    """A → (B, C) → D."""
    return Template(
        "diamond",
        [
            Node(S + step, "A"),
            Node(S + step, "B", upstreams=["A"]),
            Node(S + step, "C", upstreams=["A"]),
            Node(S + step, "D", upstreams=["B", "C"]),
        ],
    )


def split(method: str, step: str = "Record") -> Template:
    """Start → Work (split on listMap.hosts) → End."""
    return Template(
        f"split-{method}",
        [
            Node(S + step, "Start"),
            Node(S + step, "Work", upstreams=["Start"], split=Split("hosts", method)),
            Node(S + step, "End", upstreams=["Work"]),
        ],
    )


def one(step: str, timeout: int = 1) -> Template:
    return Template(f"one-{step}", [Node(S + step, step, timeout=timeout)])


def wait_for(predicate: Callable[[], object], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.01)


@contextmanager
def silent_listener(address: str, port: int = 2222) -> Iterator[None]:
    """Something at ``address:port`` that accepts TCP and never says a word (no SSH greeting)."""
    listener = socket.create_server((address, port))
    held: list[socket.socket] = []

    def accept() -> None:
        try:
            while True:
                held.append(listener.accept()[0])
        except OSError:
            pass

    threading.Thread(target=accept, daemon=True).start()
    try:
        yield
    finally:
        listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept(); close alone does not
        listener.close()
        for sock in held:
            sock.close()
