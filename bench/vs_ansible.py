"""ocptask beside an Ansible playbook doing the same per-host install on the same sandbox hosts.

The playbook (``bench/peers/obproxy.yml``) runs the steps of ocptask's per-host chain with
ansible.builtin modules, at Ansible's fastest honest settings: ssh with ControlPersist and
pipelining, forks = hosts, the free strategy, no fact gathering, host keys checked against a
known_hosts file of the sandbox's keys (as ocptask pins them). Ansible lives in its own venv
under the bench cache. Each size runs ``--repeat`` times, the sizes and the two tools in
alternating order; the median is reported. Equal work: after every run of either tool, each
host's obproxy answers ``SHOW PROXYCONFIG`` with the startup parameter, the parameter and the
password set (then the hosts are cleared). Target (issue 13): 16 hosts in at most 0.1 x
Ansible's time. Needs root (sandbox hosts).

    python bench/vs_ansible.py [--hosts 1,4,16,64] [--repeat 3] [--json FILE]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pymysql

from bench import hosts as bench_hosts
from bench.peer_venv import PeerMissing, peer_python, version
from fixtures import OB_CLUSTER_NAME, OB_RS_LIST, PACKAGE

PEERS = Path(__file__).resolve().parent / "peers"
ANSIBLE = "ansible-core>=2.17,<2.20"
TARGET = 0.1
EXPECTED = {  # what both tools set, as SHOW PROXYCONFIG shows it (a password as its SHA1)
    "proxy_mem_limited": "600M",
    "slow_query_time_threshold": "2s",
    "observer_sys_password": hashlib.sha1(bench_hosts.OB_PASSWORD.encode()).hexdigest(),
}


def verify(hosts: list[dict[str, Any]], tool: str) -> None:
    """Each host's obproxy runs with what the install sets; SystemExit naming the host if not."""
    for host in hosts:
        conn = pymysql.connect(
            host=host["innerIpAddress"],
            port=2883,
            user="root@proxysys",
            password="",
            connect_timeout=10,
        )
        try:
            with conn.cursor() as cursor:
                for name, value in EXPECTED.items():
                    cursor.execute("SHOW PROXYCONFIG LIKE %s", (name,))
                    row = cursor.fetchone()
                    if row is None or row[1] != value:
                        raise SystemExit(f"{tool} on {host['name']}: {name} is {row and row[1]!r}")
        finally:
            conn.close()


class Playbook:
    """The playbook's run folder: ansible.cfg, known_hosts and one inventory per size."""

    def __init__(self, python: Path, hosts: list[dict[str, Any]], folder: Path) -> None:
        self.bin = python.parent
        self.folder = folder
        self.hosts = hosts
        (folder / "known_hosts").write_text("".join(h["hostKey"] + "\n" for h in hosts))

    def config(self, forks: int, control: Path) -> Path:
        path = self.folder / f"ansible-{forks}.cfg"
        path.write_text(
            "[defaults]\n"
            f"forks = {forks}\n"
            "host_key_checking = True\n"
            "gathering = explicit\n"
            "interpreter_python = /usr/bin/python3\n"
            "retry_files_enabled = False\n"
            "stdout_callback = default\n"
            "[ssh_connection]\n"
            "pipelining = True\n"
            f"control_path_dir = {control}\n"
            "ssh_args = -o ControlMaster=auto -o ControlPersist=60s "
            f"-o UserKnownHostsFile={self.folder}/known_hosts -o StrictHostKeyChecking=yes\n"
        )
        return path

    def inventory(self, count: int) -> Path:
        path = self.folder / f"inventory-{count}.json"
        hostvars = {
            h["name"]: {
                "ansible_host": h["innerIpAddress"],
                "ansible_port": h["sshPort"],
                "ansible_user": h["username"],
                "ansible_ssh_private_key_file": h["privateKeyPath"],
                "home": h["home"],
            }
            for h in self.hosts[:count]
        }
        group = {
            "hosts": hostvars,
            "vars": {
                "package": str(bench_hosts.PACKAGES / PACKAGE),
                "version": PACKAGE.split("-")[1],
                "sql_port": 2883,
                "exporter_port": 2884,
                "rs_list": OB_RS_LIST,
                "ob_cluster": OB_CLUSTER_NAME,
                "ob_password": bench_hosts.OB_PASSWORD,
            },
        }
        path.write_text(json.dumps({"obproxy": group}))
        return path

    def run(self, count: int) -> float:
        """One playbook run on the first ``count`` hosts, from fresh ssh masters; wall seconds."""
        control = Path(tempfile.mkdtemp(prefix="cp", dir="/tmp"))  # short: a socket path
        env = {
            **os.environ,
            "ANSIBLE_CONFIG": str(self.config(max(count, 5), control)),
            "ANSIBLE_HOME": str(self.folder / "home"),
        }
        command = [
            self.bin / "ansible-playbook",
            "-i",
            self.inventory(count),
            PEERS / "obproxy.yml",
        ]
        started = time.perf_counter()
        ran = subprocess.run(command, capture_output=True, text=True, env=env, timeout=1800)
        wall = time.perf_counter() - started
        for socket in control.iterdir():  # end the ssh masters this run started, by socket
            subprocess.run(
                ["ssh", "-o", f"ControlPath={socket}", "-O", "exit", "x"], capture_output=True
            )
        control.rmdir()
        if ran.returncode:
            raise SystemExit(f"Ansible on {count} hosts failed:\n{ran.stdout[-1500:]}")
        return wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--hosts", default="1,4,16,64")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sizes = [int(n) for n in args.hosts.split(",")]
    result: dict[str, Any] = {"sizes": sizes, "repeat": args.repeat, "target": TARGET}
    try:
        python = peer_python("ansible", [ANSIBLE, "pymysql"], "import ansible, pymysql")
        result["ansible_version"] = version(python, "ansible-core")
    except PeerMissing as why:
        python, result["ansible_missing"] = None, str(why)
    times: dict[str, dict[int, list[float]]] = {"ocptask": {}, "ansible": {}}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        try:
            hosts = bench_hosts.up(max(sizes), folder / "inventory.json")
            playbook = Playbook(python, hosts, folder) if python else None
            for run in range(args.repeat):
                for n in sizes if run % 2 == 0 else reversed(sizes):
                    tools = ["ocptask", "ansible"] if (run + n) % 2 == 0 else ["ansible", "ocptask"]
                    for tool in tools:
                        if tool == "ansible" and playbook is None:
                            continue
                        if tool == "ocptask":
                            made = bench_hosts.create(hosts[:n], folder / f"run{run}-{n}.db")
                            wall = made.wall
                        else:
                            wall = playbook.run(n)  # type: ignore[union-attr]
                        verify(hosts[:n], tool)
                        bench_hosts.reset()
                        times[tool].setdefault(n, []).append(wall)
                        print(f"run {run + 1}: {tool:<8} {n:>3} hosts {wall:7.2f} s", flush=True)
        finally:
            bench_hosts.down()
    result["seconds"] = {tool: {str(n): t for n, t in by.items()} for tool, by in times.items()}
    print(f"create on N sandbox hosts, median of {args.repeat} (s)")
    print(f"{'hosts':>5} {'ocptask':>9} {'Ansible':>9} {'ocptask/Ansible':>16}")
    for n in sizes:
        ours = statistics.median(times["ocptask"][n])
        if n in times["ansible"]:
            theirs = statistics.median(times["ansible"][n])
            print(f"{n:>5} {ours:>9.2f} {theirs:>9.2f} {ours / theirs:>16.3f}")
        else:
            print(f"{n:>5} {ours:>9.2f} {'-':>9}  {result.get('ansible_missing', '')}")
    if args.json:
        args.json.write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
