"""Each HTTP connection, bounded: its request head in size and time, and how many one address holds.

uvicorn's httptools protocol (its default, and ours) reads a request head of any size and waits
for it forever: an 8 MB header was read whole, each unfinished 64 MiB head held 64 MiB, a head
sent one line every 5 s kept its connection past 90 s. (Its h11 protocol stops at 16 KiB, but
answers 400, has no deadline either, and parses in pure Python.) This subclass keeps httptools
and adds three bounds, per connection, before the app sees anything:

- a head (request line, headers, blank line) over ``MAX_HEAD`` bytes is answered 431 as soon as
  that many bytes arrived: the rest is never buffered, only discarded until the client closes;
- a head not complete ``HEAD_SECONDS`` after the connection opened (or after its first byte, for
  the next request on a kept-alive connection) closes the connection: the slow-header attack.
  A body the app reads is not timed (a large upload on a slow link is legitimate), but one still
  arriving after the answer (a 401 to a POST) gets as long as a head, not forever as in uvicorn.
  Idle kept-alive connections are closed by uvicorn's own keep-alive timeout (5 s);
- one client address holds at most ``PER_CLIENT`` connections in this process: more are answered
  503 at once. 128 by default: more than one proxy's pool or the benchmark's 50 clients open,
  far fewer than a process's file descriptors; ``$OCPTASK_MAX_CONNECTIONS_PER_CLIENT`` changes it
  (with ``--workers N``, each worker counts its own).

Bytes are counted as they are fed to the parser, so a head is bounded even when it arrives in one
read. A pipelined request whose head starts inside the read that ended the previous request has
that read's bytes uncounted: its head is bounded by the limit plus one read, not by the limit.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import secrets
from collections import Counter
from http import HTTPStatus
from typing import Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from .envelope import encode, failure

log = logging.getLogger("ocptask.api")

MAX_HEAD = 16 * 1024
HEAD_SECONDS = 5.0
PER_CLIENT = int(os.environ.get("OCPTASK_MAX_CONNECTIONS_PER_CLIENT", "128"))
# After a refusal, how long the client gets to read it before the close: closing a socket with
# unread input resets it, and a reset can destroy the answer before the client reads it.
LINGER_SECONDS = 2.0

_open: Counter[str] = Counter()  # connections per client address, in this process


class BoundedHttp(HttpToolsProtocol):
    """uvicorn's httptools protocol with a bounded head and a per-address connection cap."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._awaiting_head = True
        self._head_bytes = 0
        self._deadline: asyncio.TimerHandle | None = None
        self._address: str | None = None
        self._refused = False

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        address = self.client[0] if self.client else None
        if address is not None and _open[address] >= PER_CLIENT:
            log.debug("%s: over %d connections, refused", address, PER_CLIENT)
            self._refuse(503, f"More than {PER_CLIENT} connections from this address")
            return
        if address is not None:
            self._address = address
            _open[address] += 1
        self._arm()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm()
        if self._address is not None:
            _open[self._address] -= 1
            if _open[self._address] <= 0:
                del _open[self._address]
            self._address = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self._refused:
            return  # discarded: the answer is written, the close follows
        while data:
            if not self._awaiting_head:  # a body: uvicorn's flow control bounds it
                super().data_received(data)
                return
            self._arm()
            room = MAX_HEAD - self._head_bytes
            part, data = data[:room], data[room:]
            self._head_bytes += len(part)
            super().data_received(part)
            if self.transport.is_closing() or self.transport.get_protocol() is not self:
                return  # a 400 from the parser, or an upgrade
            if self._awaiting_head and self._head_bytes >= MAX_HEAD:
                self._refuse(431, f"The request line and headers are over {MAX_HEAD} bytes")
                return

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self._arm()

    def on_headers_complete(self) -> None:
        self._awaiting_head = False
        self._disarm()
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm()
        self._awaiting_head = True
        self._head_bytes = 0

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if not self._awaiting_head and not self.transport.is_closing():
            self._arm()  # answered before its body was read: the rest may not trickle forever

    def _arm(self) -> None:
        if self._deadline is None:
            self._deadline = self.loop.call_later(HEAD_SECONDS, self._too_slow)

    def _disarm(self) -> None:
        if self._deadline is not None:
            self._deadline.cancel()
            self._deadline = None

    def _too_slow(self) -> None:
        self._deadline = None
        if self.transport.is_closing():
            return
        if self.cycle is not None and not self.cycle.response_complete:
            self._arm()  # the app still answers the previous request: not the client's delay
            return
        log.debug("%s: request unfinished after %.0f s, closed", self._address, HEAD_SECONDS)
        self.transport.close()

    def _refuse(self, status: int, message: str) -> None:
        """Answer ``status`` in OCP's envelope, end our side, drop what else arrives, close after
        the client does or ``LINGER_SECONDS``, whichever is first."""
        self._refused = True
        self._disarm()
        if self.cycle is not None and not self.cycle.response_complete:
            self.cycle.keep_alive = False  # a pipelined head: the answer in progress ends it
            return
        self.flow.resume_reading()  # so the client's close is seen
        body = json.loads(failure(status, 0, message).body)
        body["traceId"] = secrets.token_hex(8)  # no request ran: a trace id of its own
        content = encode(body)
        reason = HTTPStatus(status).phrase.encode()
        head = [b"HTTP/1.1 %d %s\r\n" % (status, reason)]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head.append(b"content-type: application/json\r\ncontent-length: %d\r\n" % len(content))
        if status == 503:
            head.append(b"retry-after: 1\r\n")
        head.append(b"connection: close\r\n\r\n")
        self.transport.write(b"".join(head) + content)
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.loop.call_later(LINGER_SECONDS, self.transport.close)
