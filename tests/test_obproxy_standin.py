"""The OBProxy stand-in behaves like obproxy where ocptask relies on it (run locally, no SSH)."""

from __future__ import annotations

import hashlib
import os
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pymysql
import pytest

from fixtures import sandbox as sandbox_hosts

STANDIN = Path(__file__).parent.parent / "fixtures" / "obproxy_standin" / "obproxy.py"
PACKAGE = (
    Path(__file__).parent.parent / "fixtures" / "packages" / "obproxy-4.3.2.0-1.el7.x86_64.rpm"
)
ADDRESS = "127.0.0.41"


def start(root: Path, *args: str, home: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, OBPROXY_STANDIN_BIND=ADDRESS)
    if home is not None:
        env["HOME"] = str(home)
    return subprocess.run(
        [sys.executable, str(STANDIN), *args],
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
    conn.close()
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
    root: Path, tmp_path_factory: pytest.TempPathFactory
) -> None:
    url = "http://ocp:8080/services?Action=GetObProxyConfig&ObproxyClusterName=c"
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


@pytest.mark.parametrize("version", ["4.3.2.0", "4.3.3.0"])
def test_package_holds_the_current_standin(tmp_path: Path, version: str) -> None:
    """The committed RPMs are rebuilt whenever the stand-in changes (build_obproxy_rpm.sh)."""
    sandbox_hosts.ensure_packages()  # rpm2cpio, cpio
    package = PACKAGE.with_name(f"obproxy-{version}-1.el7.x86_64.rpm")
    unpack = subprocess.run(
        f"rpm2cpio {package} | cpio -idm --quiet", shell=True, cwd=tmp_path, capture_output=True
    )
    assert unpack.returncode == 0, unpack.stderr
    packed = tmp_path / "home" / "admin" / f"obproxy-{version}" / "bin" / "obproxy"
    assert packed.read_bytes() == STANDIN.read_bytes()
    assert os.access(packed, os.X_OK)
