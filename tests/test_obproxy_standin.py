"""The OBProxy stand-in behaves like obproxy where ocptask relies on it (run locally, no SSH)."""

from __future__ import annotations

import hashlib
import http.server
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pymysql
import pytest

from fixtures import sandbox as sandbox_hosts

STANDIN_DIR = Path(__file__).parent.parent / "fixtures" / "obproxy_standin"
STANDIN, WATCHDOG = STANDIN_DIR / "obproxy.py", STANDIN_DIR / "obproxyd.sh"
PACKAGES = Path(__file__).parent.parent / "fixtures" / "packages"
ADDRESS = "127.0.0.41"
UNSET = object()
RS_COLUMNS = ["cluster_name", "cluster_id", "rs_list", "source", "config_version", "fetch_time"]
ISO_UTC = r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ"


def lay_out(root: Path) -> Path:
    """The package's layout in ``root`` (bin/obproxy, bin/obproxyd.sh, lib/libstdc++.so.6), from
    the stand-in's sources; its bin/obproxy."""
    binary = root / "bin" / "obproxy"
    if not binary.exists():
        (root / "bin").mkdir(parents=True, exist_ok=True)
        (root / "lib").mkdir(exist_ok=True)
        shutil.copy(STANDIN, binary)
        binary.chmod(0o755)  # as the package installs it
        shutil.copy(WATCHDOG, root / "bin" / "obproxyd.sh")
        (root / "lib" / "libstdc++.so.6").write_text("placeholder\n")
    return binary


def start(
    root: Path, *args: str, home: Path | None = None, library_path: object = UNSET
) -> subprocess.CompletedProcess[str]:
    """Run ``root``'s bin/obproxy in ``root``, by default as obd does: its lib/ on the library
    path (``library_path``: another value, or None for none)."""
    binary = lay_out(root)
    env = dict(os.environ, OBPROXY_STANDIN_BIND=ADDRESS)
    env.pop("LD_LIBRARY_PATH", None)
    if library_path is UNSET:
        env["LD_LIBRARY_PATH"] = f"{root / 'lib'}:"  # obd's value, empty entry and all
    elif library_path is not None:
        env["LD_LIBRARY_PATH"] = str(library_path)
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, str(binary), *args],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        timeout=30,
    )


@pytest.fixture
def root(tmp_path: Path) -> Iterator[Path]:
    yield tmp_path
    pid_file = tmp_path / "run" / "obproxy.pid"
    if pid_file.exists():  # stop the daemon this test started, by its pid
        os.kill(int(pid_file.read_text()), signal.SIGTERM)


def test_refuses_without_rs_list_or_config_url(root: Path) -> None:
    result = start(root, "-p", "2883", "-c", "obcluster")
    assert result.returncode == 1
    assert "need config rs_list or obproxy_config_server_url" in result.stderr
    assert not (root / "run" / "obproxy.pid").exists()


def test_rs_list_start_sql_and_metrics(root: Path) -> None:
    result = start(
        root,
        "--listen_port",
        "2883",
        "--prometheus_listen_port",
        "2884",
        "--rs_list",
        "10.0.0.1:2881",
        "--cluster_name",
        "obc",
        "-o",
        f"obproxy_sys_password={sha1('pw')},proxy_mem_limited=500M",  # obd passes the hash
    )
    assert result.returncode == 0, result.stderr
    pid = int((root / "run" / "obproxy.pid").read_text())
    assert pid != os.getpid() and Path(f"/proc/{pid}").exists()
    conn = pymysql.connect(host=ADDRESS, port=2883, user="root@proxysys", password="pw")
    with conn.cursor() as cur:
        cur.execute("SELECT 1")
        assert cur.fetchall() == (("1",),)
        cur.execute("SHOW PROXYCONFIG LIKE 'proxy_mem_limited'")
        assert cur.fetchall()[0][:2] == ("proxy_mem_limited", "500M")
        cur.execute("ALTER PROXYCONFIG SET slow_query_time_threshold = '1s'")
        cur.execute("SHOW PROXYCONFIG LIKE 'obproxy_sys_password'")
        assert cur.fetchall()[0][1] == sha1("pw")
        cur.execute("SHOW PROXYRSLIST")  # RS_LIST mode: its one cluster, as given
        assert [d[0] for d in cur.description] == RS_COLUMNS
        ((name, cluster_id, rs_list, source, version, fetched),) = cur.fetchall()
    conn.close()
    assert (name, cluster_id, rs_list, source, version) == (
        "obc",
        "0",
        "10.0.0.1:2881",
        "rs_list",
        "",
    )
    assert re.fullmatch(ISO_UTC, fetched)
    with pytest.raises(pymysql.err.OperationalError):
        pymysql.connect(host=ADDRESS, port=2883, user="root@proxysys", password="nope")
    metrics = urllib.request.urlopen(f"http://{ADDRESS}:2884/metrics", timeout=5).read().decode()
    assert 'obproxy_up{cluster="obc",version="0.0.0.0"} 1' in metrics
    # The ALTER was persisted: a restart on the saved config still has it.
    os.kill(pid, signal.SIGTERM)
    time.sleep(0.3)
    assert start(root, "--listen_port", "2883").returncode == 0
    conn = pymysql.connect(host=ADDRESS, port=2883, user="root@proxysys", password="pw")
    with conn.cursor() as cur:
        cur.execute("SHOW PROXYCONFIG LIKE 'slow_query_time_threshold'")
        assert cur.fetchall()[0][1] == "1s"
    conn.close()


def sha1(text: str) -> str:
    return hashlib.sha1(text.encode()).hexdigest()


def test_passwords_are_kept_hashed_as_obproxy_keeps_them(root: Path) -> None:
    """ALTER hashes a password (obproxy's stage 1, the SHA1 in hex); SHOW shows that hash;
    root@proxysys then logs in with the password itself, and with no other."""
    assert start(root, "-p", "2892", "-l", "2893", "-r", "x:1").returncode == 0

    def login(password: str) -> pymysql.connections.Connection:
        return pymysql.connect(host=ADDRESS, port=2892, user="root@proxysys", password=password)

    conn = login("")  # none is set: the empty one
    with conn.cursor() as cur:
        cur.execute("ALTER PROXYCONFIG SET observer_sys_password = 'proxyro-pw'")
        cur.execute("ALTER PROXYCONFIG SET obproxy_sys_password = 'S3cret-xyz'")
        cur.execute("SHOW PROXYCONFIG LIKE '%sys_password'")
        shown = dict(row[:2] for row in cur.fetchall())
    conn.close()
    assert shown == {
        "obproxy_sys_password": sha1("S3cret-xyz"),
        "observer_sys_password": sha1("proxyro-pw"),
    }
    login("S3cret-xyz").close()
    for wrong in ("", sha1("S3cret-xyz"), "nope"):
        with pytest.raises(pymysql.err.OperationalError) as refused:
            login(wrong)
        assert refused.value.args[0] == 1045
    log = (root / "log" / "obproxy.log").read_text()
    assert "alter proxyconfig set obproxy_sys_password" in log
    assert "S3cret-xyz" not in log and sha1("S3cret-xyz") not in log


def test_config_url_mode_and_busy_port(
    root: Path, tmp_path_factory: pytest.TempPathFactory, config_server: ConfigServer
) -> None:
    config_server.serve_clusters({"c": (1, ["127.0.0.1:2882"])})
    url = config_server.config_url
    assert (
        start(root, "-p", "2885", "-l", "2886", "-o", f"obproxy_config_server_url={url}").returncode
        == 0
    )
    other = tmp_path_factory.mktemp("other")
    clash = start(other, "-p", "2885", "-l", "2887", "-r", "x:1")
    assert clash.returncode == 1 and "Address already in use" in clash.stderr


def test_version_comes_from_the_install_directory_and_can_be_refused(tmp_path: Path) -> None:
    """An upgrade test makes one host's new version refuse to start: the stand-in's own option."""
    home = tmp_path / "home"
    home.mkdir()
    root = tmp_path / "obproxy-4.3.3.0"
    root.mkdir()
    (home / ".obproxy-standin-refuse").write_text("4.3.3.0\n")
    refused = start(root, "-p", "2890", "-l", "2891", "-r", "x:1", home=home)
    assert refused.returncode == 1 and "4.3.3.0 refuses to start" in refused.stderr
    (home / ".obproxy-standin-refuse").write_text("4.3.2.0\n")
    assert start(root, "-p", "2890", "-l", "2891", "-r", "x:1", home=home).returncode == 0
    pid = int((root / "run" / "obproxy.pid").read_text())
    try:
        conn = pymysql.connect(host=ADDRESS, port=2890, user="root@proxysys", password="")
        with conn.cursor() as cur:
            cur.execute("SHOW PROXYINFO BINARY")
            assert cur.fetchall()[0][1].startswith("ObProxy-4.3.3.0")
        conn.close()
        metrics = urllib.request.urlopen(f"http://{ADDRESS}:2891/metrics", timeout=5).read()
        assert b'version="4.3.3.0"' in metrics
    finally:
        os.kill(pid, signal.SIGTERM)


def test_hang_option_delays_the_start(root: Path) -> None:
    began = time.monotonic()
    assert (
        start(
            root, "-p", "2888", "-l", "2889", "-r", "x:1", "-o", "standin_hang_seconds=1"
        ).returncode
        == 0
    )
    assert time.monotonic() - began >= 1


def test_refuses_to_start_without_its_lib_on_the_library_path(
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """As the real binary's loader would: so a start that loses LD_LIBRARY_PATH fails."""
    args = ("-p", "2894", "-l", "2895", "-r", "x:1")
    unset = start(root, *args, library_path=None)
    assert unset.returncode == 127
    assert "libstdc++.so.6" in unset.stderr and f"{root / 'lib'} is not on" in unset.stderr
    assert not (root / "run").exists()  # refused before anything, as a loader failure is
    system = tmp_path_factory.mktemp("system-lib")
    (system / "libstdc++.so.6").write_text("the system's, too old\n")
    shadowed = start(root, *args, library_path=f"{system}:{root / 'lib'}")
    assert shadowed.returncode == 127
    assert f"finds {system / 'libstdc++.so.6'} before {root / 'lib'}" in shadowed.stderr
    bundled = root / "lib" / "libstdc++.so.6"
    bundled.unlink()
    missing = start(root, *args)
    assert missing.returncode == 127 and f"{bundled} is missing" in missing.stderr
    bundled.write_text("placeholder\n")
    # The loader goes past entries without the library (an empty one is the working directory).
    empty = tmp_path_factory.mktemp("no-lib")
    assert start(root, *args, library_path=f"{empty}::{root / 'lib'}").returncode == 0
    assert (root / "run" / "obproxy.pid").exists()


def test_obproxyd_sh_keeps_obproxy_running(root: Path) -> None:
    """bin/obproxyd.sh, as the real package ships it: status, a watchdog that starts a dead
    obproxy again (with lib/ on its library path, on its saved configuration), stop."""
    assert start(root, "-p", "2896", "-l", "2897", "-r", "x:1", "-c", "obc").returncode == 0
    env = {k: v for k, v in os.environ.items() if k != "LD_LIBRARY_PATH"}
    env["OBPROXY_STANDIN_BIND"] = ADDRESS

    def obproxyd(*args: str) -> subprocess.CompletedProcess[str]:
        script = [str(root / "bin" / "obproxyd.sh"), *args, "-p", "2896"]
        return subprocess.run(script, env=env, capture_output=True, text=True, timeout=30)

    status = obproxyd("-c", "status")
    assert status.returncode == 0 and "ObProxy is running" in status.stdout
    watchdog_pid = root / "run" / "obproxyd-2896.pid"
    try:
        assert obproxyd("-c", "start").returncode == 0
        first = int((root / "run" / "obproxy.pid").read_text())
        wait_for(watchdog_pid.exists)
        os.kill(first, signal.SIGTERM)

        def restarted() -> bool:
            pid_file = root / "run" / "obproxy.pid"  # gone while obproxy is down
            pid = pid_file.read_text().strip() if pid_file.exists() else ""
            return pid.isdigit() and pid != str(first) and Path(f"/proc/{pid}").exists()

        wait_for(restarted)
        second = int((root / "run" / "obproxy.pid").read_text())
        environ = Path(f"/proc/{second}/environ").read_bytes().split(b"\0")
        assert f"LD_LIBRARY_PATH={root.resolve()}/lib".encode() in environ
        conn = pymysql.connect(host=ADDRESS, port=2896, user="root@proxysys", password="")
        with conn.cursor() as cur:  # on the saved configuration
            cur.execute("SHOW PROXYCONFIG LIKE 'cluster_name'")
            assert cur.fetchall()[0][1] == "obc"
        conn.close()
        stopped = obproxyd("-c", "stop")
        assert stopped.returncode == 0 and "obproxy stopped" in stopped.stdout
        assert not watchdog_pid.exists() and not Path(f"/proc/{second}").exists()
        status = obproxyd("-c", "status")
        assert status.returncode == 1 and "ObProxy is stopped" in status.stdout
    finally:
        if watchdog_pid.exists():  # the watchdog this test started, by its pid
            os.kill(int(watchdog_pid.read_text()), signal.SIGKILL)


def wait_for(condition: Callable[[], bool], limit: float = 20) -> None:
    deadline = time.monotonic() + limit
    while not condition():
        assert time.monotonic() < deadline, f"{condition.__name__} never came true"
        time.sleep(0.1)


@pytest.mark.parametrize("name", ["obproxy", "obproxy-ce"])
@pytest.mark.parametrize("version", ["4.3.2.0", "4.3.3.0"])
def test_package_holds_the_current_standin(tmp_path: Path, name: str, version: str) -> None:
    """The committed RPMs, both products, have the real package's layout and the current
    stand-in (build_obproxy_rpm.sh rebuilds them whenever it changes)."""
    sandbox_hosts.ensure_packages()  # rpm2cpio, cpio
    package = PACKAGES / f"{name}-{version}-1.el7.x86_64.rpm"
    unpack = subprocess.run(
        f"rpm2cpio {package} | cpio -idm --quiet", shell=True, cwd=tmp_path, capture_output=True
    )
    assert unpack.returncode == 0, unpack.stderr
    install = tmp_path / "home" / "admin" / f"obproxy-{version}"
    assert (install / "bin" / "obproxy").read_bytes() == STANDIN.read_bytes()
    assert (install / "bin" / "obproxyd.sh").read_bytes() == WATCHDOG.read_bytes()
    assert (install / "lib" / "libstdc++.so.6").is_file()
    assert os.access(install / "bin" / "obproxy", os.X_OK)
    assert os.access(install / "bin" / "obproxyd.sh", os.X_OK)
    files = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    assert len(files) == 3, files  # nothing else, nowhere else


# -- CONFIG_URL mode ----------------------------------------------------------------------------


class ConfigServer:
    """A stand-in for ``ocptask serve``'s config server, which speaks ob-configserver's protocol
    (``GET /services?Action=…``, answers wrapped as ``{"Code", "Message", "Success", "Data", …}``):
    these tests run the obproxy stand-in alone, without ocptask; the lead's integration tests
    start it against the real server. It answers each path (with its query) from ``answers``,
    which a test changes as it goes, and records every request with its client's address."""

    def __init__(self) -> None:
        self.answers: dict[str, tuple[int, object]] = {}
        self.requests: list[tuple[str, str]] = []
        owner = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                owner.requests.append((self.client_address[0], self.path))
                status, body = owner.answers.get(self.path, (404, failed(404, "not found")))
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.config_path = "/services?Action=GetObProxyConfig&ObproxyClusterName=proxies"
        self.config_url = self.base + self.config_path
        self.version_path = self.config_path + "&VersionOnly=true"  # a refresh round asks first

    def rs_path(self, cluster: str) -> str:
        return f"/services?Action=ObRootServiceInfo&ObCluster={cluster}"

    def serve_clusters(
        self, clusters: dict[str, tuple[int, list[str]]], announce: bool = True
    ) -> str:
        """GetObProxyConfig listing ``clusters`` (name: (id, ["ip:rpc_port", …])), its VersionOnly
        answer (left as it was unless ``announce``), each RS URL answering its list (sql_port
        2881), all swapped in at once; the answer's Version."""
        listed = [
            {"ObRegion": name, "ObRootServiceInfoUrl": self.base + self.rs_path(name)}
            for name in clusters
        ]
        version = hashlib.md5(json.dumps(listed).encode()).hexdigest()
        data = {"ObRootServiceInfoUrlList": listed, "Version": version}
        answers = dict(self.answers)
        answers[self.config_path] = (200, succeeded(data))
        if announce:
            answers[self.version_path] = (200, succeeded({"Version": version}))
        for name, (cluster_id, addresses) in clusters.items():
            answers[self.rs_path(name)] = (200, succeeded(rs_info(name, cluster_id, addresses)))
        self.answers = answers  # one swap: a request sees the old answers or the new
        return version

    def count(self, path: str) -> int:
        return self.paths_from(ADDRESS).count(path)

    def paths_from(self, address: str) -> list[str]:
        return [path for client, path in self.requests if client == address]


def succeeded(data: object) -> dict:
    return {
        "Code": 200,
        "Message": "successful",
        "Success": True,
        "Data": data,
        "Trace": "0123456789abcdef",
        "Server": "127.0.0.1",
        "Cost": 1,
    }


def failed(code: int, message: str) -> dict:
    return {
        "Code": code,
        "Message": message,
        "Success": False,
        "Data": None,
        "Trace": "",
        "Server": "127.0.0.1",
        "Cost": 0,
    }


def rs_info(name: str, cluster_id: int, addresses: list[str], kind: str = "PRIMARY") -> dict:
    """An ObRootServiceInfo as ob-configserver answers it: the first server LEADER."""
    return {
        "ObClusterId": cluster_id,
        "ObRegionId": cluster_id,
        "ObCluster": name,
        "ObRegion": name,
        "ReadonlyRsList": [],
        "RsList": [
            {"address": a, "role": "FOLLOWER" if i else "LEADER", "sql_port": 2881}
            for i, a in enumerate(addresses)
        ],
        "Type": kind,
        "timestamp": 1704067200000000,
    }


@pytest.fixture
def config_server() -> Iterator[ConfigServer]:
    server = ConfigServer()
    thread = threading.Thread(target=server.httpd.serve_forever, daemon=True)
    thread.start()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()
    thread.join()


def proxy_sql(port: int, statement: str) -> list[tuple]:
    conn = pymysql.connect(host=ADDRESS, port=port, user="root@proxysys", password="")
    try:
        with conn.cursor() as cur:
            cur.execute(statement)
            return list(cur.fetchall())
    finally:
        conn.close()


def config_url_start(
    root: Path, port: int, url: str, *options: str, foreground: bool = False
) -> subprocess.CompletedProcess[str]:
    """Start in CONFIG_URL mode on ``port`` (its prometheus port the next), in the foreground
    (-N) if asked: only a start that fails returns then."""
    items = ",".join([f"obproxy_config_server_url={url}", *options])
    nodaemon = ["-N"] if foreground else []
    return start(root, *nodaemon, "-p", str(port), "-l", str(port + 1), "-o", items)


def test_config_url_start_fetches_the_clusters(root: Path, config_server: ConfigServer) -> None:
    """Both clusters' rs lists, fetched from the stand-in's own address, in the answer's order,
    reported by SHOW PROXYRSLIST sorted by name; LIKE on the name."""
    version = config_server.serve_clusters(
        {
            "hooray": (7, ["127.0.0.1:2882", "127.0.0.2:2882"]),
            "ahead": (3, ["10.0.0.9:2882"]),
        }
    )
    result = config_url_start(root, 2900, config_server.config_url)
    assert result.returncode == 0, result.stderr
    assert config_server.paths_from(ADDRESS) == [
        config_server.config_path,
        config_server.rs_path("hooray"),
        config_server.rs_path("ahead"),
    ]
    rows = proxy_sql(2900, "SHOW PROXYRSLIST")
    assert [row[:5] for row in rows] == [
        (
            "ahead",
            "3",
            "10.0.0.9:2881",
            config_server.base + config_server.rs_path("ahead"),
            version,
        ),
        (
            "hooray",
            "7",
            "127.0.0.1:2881;127.0.0.2:2881",
            config_server.base + config_server.rs_path("hooray"),
            version,
        ),
    ]
    assert all(re.fullmatch(ISO_UTC, row[5]) for row in rows)
    assert [row[0] for row in proxy_sql(2900, "SHOW PROXYRSLIST LIKE 'hoo%'")] == ["hooray"]
    assert proxy_sql(2900, "SHOW PROXYRSLIST LIKE 'hoo'") == []
    log = (root / "log" / "obproxy.log").read_text()
    assert "cluster hooray added: id 7 rs_list '127.0.0.1:2881;127.0.0.2:2881'" in log


EMPTY_LIST = {"ObRootServiceInfoUrlList": [], "Version": "x"}
REFUSALS = {
    "down": None,
    "500": (500, failed(500, "got internal error: database is locked")),
    "not successful": (200, failed(200, "bad request: no such obproxy cluster")),
    "not JSON": (200, b"<html>OCP</html>"),
    "no cluster list": (200, succeeded({"Version": "x"})),
    "Code 500": (200, {**succeeded(EMPTY_LIST), "Code": 500}),
    "no Code": (200, {k: v for k, v in succeeded(EMPTY_LIST).items() if k != "Code"}),
    "Message": (200, {**succeeded(EMPTY_LIST), "Message": "ok"}),
}


@pytest.mark.parametrize("case", [*REFUSALS, "down, -N"])
def test_config_url_start_refuses_when_the_config_url_fails(
    root: Path, config_server: ConfigServer, case: str
) -> None:
    """Stricter than obproxy, which would start and retry: exit 1, the URL and why on stderr and
    in the log, no daemon, also in the foreground (-N)."""
    url = config_server.config_url
    answer = REFUSALS.get(case.partition(",")[0])
    if answer is None:
        url = f"http://127.0.0.1:{free_port()}/services?Action=GetObProxyConfig"
    else:
        config_server.answers[config_server.config_path] = answer
    result = config_url_start(root, 2902, url, foreground=case.endswith("-N"))
    assert result.returncode == 1
    line = f"obproxy: cannot fetch the config server's answer from {url}: "
    why = {
        "down": "connection refused",
        "500": "HTTP 500 Internal Server Error (got internal error: database is locked)",
        "not successful": "the answer's Success is False: 'bad request: no such obproxy cluster'",
        "not JSON": "the answer is not JSON",
        "no cluster list": "the answer has no list Data.ObRootServiceInfoUrlList",
        "Code 500": "the answer's Code is 500, not 2xx: 'successful'",  # Success true all the same
        "no Code": "the answer's Code is None, not 2xx: 'successful'",
        "Message": "the answer's Message is 'ok', not 'successful'",
    }[case.partition(",")[0]]
    assert result.stderr.startswith(line + why), result.stderr
    assert len(result.stderr.splitlines()) == 1
    assert line + why in (root / "log" / "obproxy.log").read_text()
    assert not (root / "run" / "obproxy.pid").exists()


def free_port() -> int:
    """A port nothing listens on (bound and closed again): connecting to it is refused."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_config_url_start_refuses_when_a_clusters_rs_url_fails(
    root: Path, config_server: ConfigServer
) -> None:
    config_server.serve_clusters({"good": (1, ["127.0.0.1:2882"]), "bad": (2, ["127.0.0.2:2882"])})
    config_server.answers[config_server.rs_path("bad")] = (404, failed(404, "resource not found"))
    result = config_url_start(root, 2904, config_server.config_url)
    assert result.returncode == 1
    rs_url = config_server.base + config_server.rs_path("bad")
    line = f"obproxy: cannot fetch the config server's answer from {rs_url}: HTTP 404 Not Found"
    assert result.stderr.startswith(line), result.stderr
    assert line in (root / "log" / "obproxy.log").read_text()
    assert not (root / "run" / "obproxy.pid").exists()


def test_config_url_start_refuses_a_role_obproxy_would_not_take(
    root: Path, config_server: ConfigServer
) -> None:
    """obproxy takes LEADER or FOLLOWER only (``ob_proxy_json_config_info.cpp``)."""
    config_server.serve_clusters({"c": (1, ["127.0.0.1:2882"])})
    info = rs_info("c", 1, ["127.0.0.1:2882"])
    info["RsList"][0]["role"] = ""
    config_server.answers[config_server.rs_path("c")] = (200, succeeded(info))
    result = config_url_start(root, 2906, config_server.config_url)
    assert result.returncode == 1
    assert "Data.RsList[0].role '' is neither LEADER nor FOLLOWER" in result.stderr


def test_a_password_in_the_config_url_is_never_shown(root: Path) -> None:
    port = free_port()
    url = f"http://ocp:S3cret-xyz@127.0.0.1:{port}/services?Action=GetObProxyConfig&Password=S3cret-xyz"
    result = config_url_start(root, 2904, url)
    assert result.returncode == 1
    shown = f"http://ocp:***@127.0.0.1:{port}/services?Action=GetObProxyConfig&Password=***"
    assert f"from {shown}: connection refused" in result.stderr
    assert "S3cret-xyz" not in result.stderr
    assert "S3cret-xyz" not in (root / "log" / "obproxy.log").read_text()


def test_refresh_reports_a_changed_rs_list_and_keeps_it_when_a_round_fails(
    root: Path, config_server: ConfigServer
) -> None:
    config_server.serve_clusters({"hooray": (1, ["127.0.0.1:2882"])})
    result = config_url_start(
        root, 2906, config_server.config_url, "config_server_refresh_interval=200ms"
    )
    assert result.returncode == 0, result.stderr
    first = proxy_sql(2906, "SHOW PROXYRSLIST")[0]
    assert first[2] == "127.0.0.1:2881"
    config_server.serve_clusters({"hooray": (1, ["127.0.0.1:2882", "127.0.0.3:2882"])})

    def rs_list_changed() -> bool:
        return proxy_sql(2906, "SHOW PROXYRSLIST")[0][2] == "127.0.0.1:2881;127.0.0.3:2881"

    wait_for(rs_list_changed)
    log_file = root / "log" / "obproxy.log"
    assert (
        "cluster hooray rs_list 127.0.0.1:2881 -> 127.0.0.1:2881;127.0.0.3:2881"
        in log_file.read_text()
    )
    config_server.answers[config_server.rs_path("hooray")] = (500, failed(500, "internal"))
    rs_url = config_server.base + config_server.rs_path("hooray")
    failure = (
        "refresh failed, keeping the previous rs lists: cannot fetch the config server's answer "
        f"from {rs_url}: HTTP 500 Internal Server Error (internal)"
    )

    seen = 0

    def a_round_failed() -> bool:
        return log_file.read_text().count(failure) > seen

    wait_for(a_round_failed)
    kept = proxy_sql(2906, "SHOW PROXYRSLIST")[0]  # every round fails from here on
    assert kept[2] == "127.0.0.1:2881;127.0.0.3:2881"
    seen = log_file.read_text().count(failure)
    wait_for(a_round_failed)
    assert proxy_sql(2906, "SHOW PROXYRSLIST")[0] == kept  # the time of the last good round too
    pid = int((root / "run" / "obproxy.pid").read_text())
    assert Path(f"/proc/{pid}").exists()


def test_alter_of_the_refresh_interval_takes_effect(
    root: Path, config_server: ConfigServer
) -> None:
    config_server.serve_clusters({"hooray": (1, ["127.0.0.1:2882"])})
    assert (
        config_url_start(
            root, 2908, config_server.config_url, "config_server_refresh_interval=1d"
        ).returncode
        == 0
    )
    config_server.serve_clusters({"hooray": (2, ["127.0.0.5:2882"])})
    fetched = len(config_server.requests)
    assert proxy_sql(2908, "SHOW PROXYRSLIST")[0][1:3] == ("1", "127.0.0.1:2881")
    with pytest.raises(pymysql.err.OperationalError) as refused:
        proxy_sql(2908, "ALTER PROXYCONFIG SET config_server_refresh_interval = '10ms'")
    assert refused.value.args[0] == 1210 and "outside [100ms, 1d]" in refused.value.args[1]
    assert len(config_server.requests) == fetched  # a day to go: no round yet
    proxy_sql(2908, "ALTER PROXYCONFIG SET config_server_refresh_interval = '300ms'")

    def refreshed() -> bool:
        return proxy_sql(2908, "SHOW PROXYRSLIST")[0][1:3] == ("2", "127.0.0.5:2881")

    wait_for(refreshed)
    assert "cluster hooray cluster_id 1 -> 2" in (root / "log" / "obproxy.log").read_text()


def test_refuses_a_bad_refresh_interval(root: Path, config_server: ConfigServer) -> None:
    config_server.serve_clusters({"hooray": (1, ["127.0.0.1:2882"])})
    result = config_url_start(
        root, 2910, config_server.config_url, "config_server_refresh_interval=soon"
    )
    assert result.returncode == 1
    assert (
        "obproxy: bad config_server_refresh_interval: 'soon' is not <number>[ms|s|m|h|d]"
        in result.stderr
    )


def test_template_action(root: Path, config_server: ConfigServer) -> None:
    """GetObRootServiceInfoUrlTemplate: each listed name put in the template's ${ObRegion}."""
    path = "/services?Action=GetObRootServiceInfoUrlTemplate"
    template = config_server.base + "/services?Action=ObRootServiceInfo&ObRegion=${ObRegion}"
    data = {"ObClusterList": ["one", "two"], "ObRootServiceInfoUrlTemplate": template}
    config_server.answers[path] = (200, succeeded(data))
    for cluster_id, name in enumerate(["one", "two"], start=1):
        rs_path = f"/services?Action=ObRootServiceInfo&ObRegion={name}"
        answer = rs_info(name, cluster_id, [f"127.0.0.{cluster_id}:2882"])
        config_server.answers[rs_path] = (200, succeeded(answer))
    result = config_url_start(root, 2912, config_server.base + path)
    assert result.returncode == 0, result.stderr
    rows = proxy_sql(2912, "SHOW PROXYRSLIST")
    assert [row[:5] for row in rows] == [
        ("one", "1", "127.0.0.1:2881", template.replace("${ObRegion}", "one"), ""),
        ("two", "2", "127.0.0.2:2881", template.replace("${ObRegion}", "two"), ""),
    ]


def test_version_2_list_answer(root: Path, config_server: ConfigServer) -> None:
    """A list of ObRootServiceInfo (version=2): the PRIMARY one, else the first; IPv6 kept in
    brackets."""
    version = config_server.serve_clusters({"dual": (0, []), "solo": (0, [])})
    standby = rs_info("dual", 2, ["10.0.0.2:2882"], kind="STANDBY")
    primary = rs_info("dual", 1, ["[::1]:2882", "10.0.0.1:2882"])
    config_server.answers[config_server.rs_path("dual")] = (200, succeeded([standby, primary]))
    only = rs_info("solo", 5, ["10.0.0.5:2882"], kind="STANDBY")
    config_server.answers[config_server.rs_path("solo")] = (200, succeeded([only, standby]))
    result = config_url_start(root, 2914, config_server.config_url)
    assert result.returncode == 0, result.stderr
    rows = proxy_sql(2914, "SHOW PROXYRSLIST")
    assert [(row[:3], row[4]) for row in rows] == [
        (("dual", "1", "[::1]:2881;10.0.0.1:2881"), version),
        (("solo", "5", "10.0.0.5:2881"), version),
    ]


def test_a_refresh_round_asks_the_version_first(root: Path, config_server: ConfigServer) -> None:
    """As obproxy's refresh: ``&VersionOnly=true`` first, the full config again only when its
    Version moved; every cluster's RS URL every round all the same (the stand-in's choice)."""
    first = config_server.serve_clusters({"hooray": (1, ["127.0.0.1:2882"])})
    url = config_server.config_url
    assert config_url_start(root, 2916, url, "config_server_refresh_interval=200ms").returncode == 0
    assert config_server.count(config_server.config_path) == 1  # the start asks for it all
    assert config_server.count(config_server.version_path) == 0
    # A second cluster in the full answer, while the server still says the old Version.
    config_server.serve_clusters(
        {"hooray": (1, ["127.0.0.1:2882"]), "ahead": (2, ["10.0.0.9:2882"])}, announce=False
    )
    rs_fetches = config_server.count(config_server.rs_path("hooray"))
    asked = config_server.count(config_server.version_path)

    def two_more_rounds() -> bool:
        return config_server.count(config_server.version_path) >= asked + 2

    wait_for(two_more_rounds)
    assert config_server.count(config_server.config_path) == 1  # the Version did not move
    assert config_server.count(config_server.rs_path("hooray")) >= rs_fetches + 2
    assert config_server.count(config_server.rs_path("ahead")) == 0
    assert [row[0] for row in proxy_sql(2916, "SHOW PROXYRSLIST")] == ["hooray"]
    second = config_server.serve_clusters(
        {"hooray": (1, ["127.0.0.1:2882"]), "ahead": (2, ["10.0.0.9:2882"])}
    )

    def ahead_reported() -> bool:
        return [row[0] for row in proxy_sql(2916, "SHOW PROXYRSLIST")] == ["ahead", "hooray"]

    wait_for(ahead_reported)
    assert {row[4] for row in proxy_sql(2916, "SHOW PROXYRSLIST")} == {second}
    assert config_server.count(config_server.config_path) >= 2
    log = (root / "log" / "obproxy.log").read_text()
    assert f"config version {first} -> {second}: fetching {url} again" in log
    assert "cluster ahead added: id 2 rs_list '10.0.0.9:2881'" in log


def test_the_template_action_is_asked_its_version_too(
    root: Path, config_server: ConfigServer
) -> None:
    """``?Action=GetObRootServiceInfoUrlTemplate&VersionOnly=true``: a new Version brings the
    new list of names."""
    base = config_server.base + "/services"
    template = base + "?Action=ObRootServiceInfo&ObRegion=${ObRegion}"

    def serve(names: list[str], version: str) -> None:
        data = {"ObClusterList": names, "ObRootServiceInfoUrlTemplate": template}
        data["Version"] = version
        answers = dict(config_server.answers)
        answers["/services?Action=GetObRootServiceInfoUrlTemplate"] = (200, succeeded(data))
        answers["/services?Action=GetObRootServiceInfoUrlTemplate&VersionOnly=true"] = (
            200,
            succeeded({"Version": version}),
        )
        for cluster_id, name in enumerate(names, start=1):
            answer = rs_info(name, cluster_id, [f"127.0.0.{cluster_id}:2882"])
            rs_path = f"/services?Action=ObRootServiceInfo&ObRegion={name}"
            answers[rs_path] = (200, succeeded(answer))
        config_server.answers = answers

    serve(["one"], "t1")
    url = config_server.base + "/services?Action=GetObRootServiceInfoUrlTemplate"
    assert config_url_start(root, 2918, url, "config_server_refresh_interval=200ms").returncode == 0
    serve(["one", "three"], "t2")

    def three_reported() -> bool:
        return [row[0] for row in proxy_sql(2918, "SHOW PROXYRSLIST")] == ["one", "three"]

    wait_for(three_reported)
    assert {row[4] for row in proxy_sql(2918, "SHOW PROXYRSLIST")} == {"t2"}
    log = (root / "log" / "obproxy.log").read_text()
    assert f"config version t1 -> t2: fetching {url} again" in log


def test_a_config_url_without_a_query_is_asked_with_a_question_mark(
    root: Path, config_server: ConfigServer
) -> None:
    config_server.serve_clusters({"c": (1, ["127.0.0.1:2882"])})
    plain = "/obproxy-config"  # the same answers at a URL with no query
    config_server.answers[plain] = config_server.answers[config_server.config_path]
    config_server.answers[plain + "?VersionOnly=true"] = config_server.answers[
        config_server.version_path
    ]
    url = config_server.base + plain
    assert config_url_start(root, 2926, url, "config_server_refresh_interval=200ms").returncode == 0
    wait_for(lambda: config_server.count(plain + "?VersionOnly=true") >= 1)
    assert config_server.count(plain) == 1
    assert "refresh failed" not in (root / "log" / "obproxy.log").read_text()


def test_alter_refresh_rslist_fetches_the_root_servers_now(
    root: Path, config_server: ConfigServer
) -> None:
    """obproxy's item: a round at once (the config's Version asked first, unchanged here),
    then the item is false again; a value obproxy would not take is refused (1210)."""
    config_server.serve_clusters({"hooray": (1, ["127.0.0.1:2882"])})
    url = config_server.config_url
    assert config_url_start(root, 2920, url, "config_server_refresh_interval=1d").returncode == 0
    config_server.serve_clusters({"hooray": (1, ["127.0.0.7:2882"])})  # same list, same Version
    with pytest.raises(pymysql.err.OperationalError) as refused:
        proxy_sql(2920, "ALTER PROXYCONFIG SET refresh_rslist = 'soon'")
    assert refused.value.args[0] == 1210 and "'soon' is not a boolean" in refused.value.args[1]
    assert config_server.count(config_server.version_path) == 0  # a day to go: no round yet
    assert proxy_sql(2920, "SHOW PROXYRSLIST")[0][2] == "127.0.0.1:2881"
    proxy_sql(2920, "ALTER PROXYCONFIG SET refresh_rslist = true")

    def refreshed_and_reset() -> bool:
        config = proxy_sql(2920, "SHOW PROXYCONFIG LIKE 'refresh_rslist'")
        return (
            proxy_sql(2920, "SHOW PROXYRSLIST")[0][2] == "127.0.0.7:2881"
            and config[0][1] == "false"
        )

    wait_for(refreshed_and_reset)
    assert config_server.count(config_server.version_path) == 1
    assert config_server.count(config_server.config_path) == 1  # the start's only
    log = (root / "log" / "obproxy.log").read_text()
    assert "fetched the root servers of 1 cluster(s): refresh_rslist = 'false'" in log


@pytest.mark.parametrize("action", ["GetObProxyConfig", "GetObRootServiceInfoUrlTemplate"])
def test_a_cluster_named_twice_makes_the_answer_invalid(
    root: Path, config_server: ConfigServer, action: str
) -> None:
    """obproxy: ``OB_HASH_EXIST`` -> ``OB_INVALID_CONFIG``, for the whole answer."""
    config_server.serve_clusters({"c": (1, ["127.0.0.1:2882"]), "d": (2, ["127.0.0.2:2882"])})
    if action == "GetObProxyConfig":
        path = config_server.config_path
        rs_url = config_server.base + config_server.rs_path("c")
        listed = [{"ObRegion": name, "ObRootServiceInfoUrl": rs_url} for name in ("c", "d", "c")]
        data: dict = {"ObRootServiceInfoUrlList": listed, "Version": "v"}
    else:
        path = "/services?Action=GetObRootServiceInfoUrlTemplate"
        template = config_server.base + "/services?Action=ObRootServiceInfo&ObCluster=${ObCluster}"
        data = {"ObClusterList": ["c", "d", "c"], "ObRootServiceInfoUrlTemplate": template}
    config_server.answers[path] = (200, succeeded(data))
    result = config_url_start(root, 2922, config_server.base + path)
    assert result.returncode == 1
    why = f"from {config_server.base + path}: the answer lists cluster c more than once"
    assert why in result.stderr
    assert not (root / "run" / "obproxy.pid").exists()


def test_a_refresh_round_fails_on_a_cluster_named_twice_or_a_bad_header(
    root: Path, config_server: ConfigServer
) -> None:
    """Each failed round keeps what it knew and names what was wrong; a good one after them
    takes the new answer."""
    config_server.serve_clusters({"c": (1, ["127.0.0.1:2882"])})
    url = config_server.config_url
    assert config_url_start(root, 2924, url, "config_server_refresh_interval=200ms").returncode == 0
    kept = proxy_sql(2924, "SHOW PROXYRSLIST")
    log_file = root / "log" / "obproxy.log"
    failed_round = "refresh failed, keeping the previous rs lists: cannot fetch the config server's"

    def fails(where: str, why: str) -> None:
        wait_for(lambda: f"{failed_round} answer from {where}: {why}" in log_file.read_text())
        assert proxy_sql(2924, "SHOW PROXYRSLIST") == kept

    rs_url = config_server.base + config_server.rs_path("c")
    listed = [{"ObRegion": "c", "ObRootServiceInfoUrl": rs_url}] * 2
    config_server.answers[config_server.config_path] = (
        200,
        succeeded({"ObRootServiceInfoUrlList": listed, "Version": "twice"}),
    )
    config_server.answers[config_server.version_path] = (200, succeeded({"Version": "twice"}))
    fails(url, "the answer lists cluster c more than once")
    refused = (200, failed(200, "no such obproxy cluster"))  # no Data: the header says why
    config_server.answers[config_server.version_path] = refused
    fails(f"{url}&VersionOnly=true", "the answer's Success is False: 'no such obproxy cluster'")
    # The next answers, staged while every round stops at the Version: c's with a bad header.
    version = config_server.serve_clusters({"c": (1, ["127.0.0.5:2882"])}, announce=False)
    good = config_server.answers[config_server.rs_path("c")]
    config_server.answers[config_server.rs_path("c")] = (200, {**good[1], "Message": "ok"})
    config_server.answers[config_server.version_path] = (200, succeeded({"Version": version}))
    fails(rs_url, "the answer's Message is 'ok', not 'successful'")
    config_server.answers[config_server.rs_path("c")] = good
    wait_for(lambda: proxy_sql(2924, "SHOW PROXYRSLIST")[0][2] == "127.0.0.5:2881")
