"""The OBProxy stand-in behaves like obproxy where ocptask relies on it (run locally, no SSH)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
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
        "obproxy_sys_password=pw,proxy_mem_limited=500M",
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
        assert cur.fetchall()[0][1] == "******"
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
