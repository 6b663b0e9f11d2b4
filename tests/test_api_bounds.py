"""Bounded requests at a real ``ocptask serve``, over raw sockets: a head over 16 KiB is answered
431 without the rest being read, a head still unfinished after 5 s closes its connection, one
address holds at most so many connections, and a 400 names at most 20 fields."""

from __future__ import annotations

import base64
import json
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from api.auth.users import Users
from engine import Engine
from fixtures import api_server, sample_request
from tests.api_helpers import data_of, error_of
from tests.conftest import API_PASSWORD, API_USER, ApiEnv

REQUEST_LINE = b"GET /api/v2/tasks/instances HTTP/1.1\r\nHost: ocptask\r\n"
CLOSED_WITHIN = 10.0  # the acceptance's bound; the server's own deadline is shorter


def _connect(url: str, source: str = "127.0.0.1") -> socket.socket:
    where = urlsplit(url)
    sock = socket.create_connection(
        (where.hostname, where.port), timeout=CLOSED_WITHIN, source_address=(source, 0)
    )
    return sock


def _answer(sock: socket.socket) -> tuple[int, dict[str, Any]]:
    """The status and JSON body of the one answer on ``sock``, read until the server closes."""
    received = b""
    while chunk := sock.recv(65536):
        received += chunk
    head, _, body = received.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), json.loads(body)


def _closed(sock: socket.socket, wait: float) -> bool:
    """Whether the server closed ``sock`` within ``wait`` seconds (what it sent is dropped)."""
    sock.settimeout(max(wait, 0.05))  # 0 would make the socket non-blocking
    try:
        while sock.recv(65536):
            pass
    except TimeoutError:
        return False
    except ConnectionResetError:
        pass
    return True


def _dribble(socks: list[socket.socket], line: bytes = b"X-Slow: 1\r\n") -> list[socket.socket]:
    """Each connection sends one more ``line`` every 2 s until the server closes it or 10 s pass;
    the ones still open then."""
    deadline = time.monotonic() + CLOSED_WITHIN
    while socks and time.monotonic() < deadline:
        still = []
        for sock in socks:
            try:
                sock.sendall(line)
            except (BrokenPipeError, ConnectionResetError):
                continue
            still.append(sock)
        wait_until = min(time.monotonic() + 2, deadline)
        socks = [s for s in still if not _closed(s, wait_until - time.monotonic())]
    return socks


@pytest.mark.parametrize("finished", [True, False], ids=["whole head", "unfinished head"])
def test_a_64_kib_header_is_answered_431(api_env: ApiEnv, finished: bool) -> None:
    """Unfinished, the head's 64 KiB are not even all of it: the answer comes without the rest."""
    with _connect(api_env.url) as sock:
        sock.sendall(REQUEST_LINE + b"X-Big: " + b"a" * 65536 + b"\r\n")
        if finished:
            sock.sendall(b"\r\n")
        status, body = _answer(sock)
    assert status == 431, body
    assert body["status"] == 431 and body["successful"] is False, body
    assert "16384" in body["error"]["message"], body
    with api_env.client() as client:  # the server answers the next client as before
        data_of(client.get("/api/v2/tasks/instances"))


def test_a_head_sent_one_line_every_two_seconds_is_closed_within_ten(api_env: ApiEnv) -> None:
    sock = _connect(api_env.url)
    sock.sendall(REQUEST_LINE)
    try:
        assert _dribble([sock]) == [], "the slow head's connection is still open after 10 s"
    finally:
        sock.close()


def test_twenty_slow_heads_do_not_stop_a_normal_client(api_env: ApiEnv) -> None:
    slow = [_connect(api_env.url) for _ in range(20)]
    try:
        for sock in slow:
            sock.sendall(REQUEST_LINE)
        with api_env.client() as client:  # while all twenty are open
            data_of(client.get("/api/v2/tasks/instances"))
        assert _dribble(slow) == [], "slow heads' connections still open after 10 s"
    finally:
        for sock in slow:
            sock.close()


def test_a_body_still_trickling_in_after_its_answer_is_closed_within_ten(api_env: ApiEnv) -> None:
    """Without credentials the 401 comes before the body is read; uvicorn alone would then take
    the declared megabyte a byte at a time, for ever."""
    sock = _connect(api_env.url)
    sock.sendall(
        b"POST /api/v2/obproxy/clusters HTTP/1.1\r\nHost: ocptask\r\n"
        b"Content-Type: application/json\r\nContent-Length: 1000000\r\n\r\n{"
    )
    try:
        assert _dribble([sock], b" ") == [], "the trickling body's connection is open after 10 s"
    finally:
        sock.close()


@pytest.fixture
def capped_server(tmp_path: Path) -> Iterator[api_server.Server]:
    """A server that lets one address hold 4 connections."""
    db = str(tmp_path / "api.db")
    with Engine(db) as engine:
        Users(engine.store).add(API_USER, API_PASSWORD)
    server = api_server.start(
        db, tmp_path / "server.log", "--no-run", env={"OCPTASK_MAX_CONNECTIONS_PER_CLIENT": "4"}
    )
    try:
        yield server
    finally:
        assert server.stop() == 0, server.log()[-2000:]


def test_one_address_holds_at_most_its_connections(capped_server: api_server.Server) -> None:
    """Four POSTs from 127.0.0.2 that never finish their bodies hold their connections (no head
    deadline runs once a head is in); a fifth from there gets 503, 127.0.0.1 still gets in, and
    a connection closed makes room again."""
    token = base64.b64encode(f"{API_USER}:{API_PASSWORD}".encode()).decode()
    held_head = (
        b"POST /api/v2/obproxy/clusters HTTP/1.1\r\nHost: ocptask\r\n"
        b"Content-Type: application/json\r\nContent-Length: 100\r\n"
        b"Authorization: Basic " + token.encode() + b"\r\n\r\n{"
    )
    held = [_connect(capped_server.url, "127.0.0.2") for _ in range(4)]
    try:
        for sock in held:
            sock.sendall(held_head)
        with httpx.Client(base_url=capped_server.url, auth=(API_USER, API_PASSWORD)) as client:
            data_of(client.get("/api/v2/tasks/instances"))
        with _connect(capped_server.url, "127.0.0.2") as fifth:
            fifth.sendall(REQUEST_LINE + b"\r\n")
            status, body = _answer(fifth)
        assert status == 503 and body["status"] == 503, body
        held.pop().close()
        deadline = time.monotonic() + CLOSED_WITHIN  # the server sees the close, then has room
        while True:
            with _connect(capped_server.url, "127.0.0.2") as again:
                again.sendall(REQUEST_LINE + b"Connection: close\r\n\r\n")
                status, body = _answer(again)
            if status != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert status == 401, body  # no credentials: answered by the app, not refused
    finally:
        for sock in held:
            sock.close()


def test_an_error_names_the_first_twenty_fields_and_counts_the_rest(api_env: ApiEnv) -> None:
    """1,000 bad parameter names (a 160 KB body) give a 400 of a few KB, not 474 KB."""
    request = sample_request()
    request["parameters"] = [{"name": "p" * 129 + str(i), "value": "1"} for i in range(1000)]
    with api_env.client() as client:
        response = client.post("/api/v2/obproxy/clusters", json=request)
    err = error_of(response, 400, 10001)
    assert len(response.content) < 20_000, len(response.content)
    assert [s["field"] for s in err["subErrors"]] == [f"parameters[{i}].name" for i in range(20)]
    assert err["message"].endswith("; and 980 more"), err["message"][-200:]
    assert err["target"] == "parameters[0].name"
