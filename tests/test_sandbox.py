"""The sandbox hosts are real sshd processes with pinned host keys and key-only logins."""

from __future__ import annotations

import socket
from typing import Any

import paramiko
import pytest
from paramiko.hostkeys import HostKeyEntry

from fixtures import sandbox as sandbox_hosts


def _connect(host: dict[str, Any], host_key_line: str) -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    entry = HostKeyEntry.from_line(host_key_line)
    assert entry is not None
    for name in entry.hostnames:
        client.get_host_keys().add(name, entry.key.get_name(), entry.key)
    client.set_missing_host_key_policy(paramiko.RejectPolicy())
    client.connect(
        host["innerIpAddress"],
        host["sshPort"],
        username=host["username"],
        key_filename=host["privateKeyPath"],
        look_for_keys=False,
        allow_agent=False,
        timeout=5,
    )
    return client


def test_each_host_has_its_own_user_and_pinned_key(sandbox: dict) -> None:
    seen = set()
    for host in sandbox["inventory"]:
        with _connect(host, host["hostKey"]) as client:
            _, out, _ = client.exec_command("id -un")
            assert out.read().decode().strip() == host["username"]
            assert out.channel.recv_exit_status() == 0
        seen.add((host["innerIpAddress"], host["username"]))
    assert len(seen) == 3


def test_wrong_pinned_key_is_refused(sandbox: dict) -> None:
    first, second = sandbox["inventory"][:2]
    wrong = first["hostKey"].split(" ", 1)[0] + " " + second["hostKey"].split(" ", 1)[1]
    with pytest.raises(paramiko.BadHostKeyException):
        _connect(first, wrong)


def test_a_host_can_be_stopped_and_started(sandbox: dict) -> None:
    host = sandbox["inventory"][1]
    sandbox_hosts.stop_host(2, sandbox["state"])
    try:
        with pytest.raises(OSError), socket.create_connection((host["innerIpAddress"], 2222), 1):
            pass
    finally:
        sandbox_hosts.start_host(2, sandbox["state"])
    with _connect(host, host["hostKey"]) as client:
        _, out, _ = client.exec_command("true")
        assert out.channel.recv_exit_status() == 0
