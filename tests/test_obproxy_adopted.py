"""What a take-over reads of an obproxy installed by other means, for the shapes the sandbox's
stand-in does not show: the real binary's ``-V`` and ``SHOW PROXYINFO BINARY`` texts (as
obproxy's source prints them), its executable in ``/proc``, and every way ``-o`` can carry a
password on its command line."""

from __future__ import annotations

import base64

import pytest

from tasks.obproxy.adopted import (
    FOUND,
    NOTHING,
    Process,
    merged_options,
    own_parameters,
    parse_found,
    shown_command,
    unsafe_install_dir,
    version_said,
    without_secrets,
)

# ob_proxy_main.cpp print_version(): "obproxy (%s %s)" of PACKAGE_STRING and RELEASEID, then
# REVISION; ob_show_info_handler.cpp: "%s-%s-%s" of APP_NAME, PACKAGE_STRING and RELEASEID.
V_OUTPUT = "obproxy (OceanBase 4.3.1.0 1.el7)\nREVISION: 1-local-0123abcd\nBUILD_TIME: x\n"
BINARY_INFO = "ObProxy-OceanBase 4.3.1.0-1.el7\nversion:4.3.1.0\nMD5:x\nREVISION:1-local"


def test_the_version_as_ocp_shows_it_from_either_text() -> None:
    assert version_said(V_OUTPUT) == "4.3.1.0-1"
    assert version_said("obproxy: unrecognized arguments: -V", BINARY_INFO) == "4.3.1.0-1"
    assert version_said("", "ObProxy-4.3.2.0 (ocptask stand-in)") == "4.3.2.0"
    assert version_said("command not found", "") is None


@pytest.mark.parametrize(
    ("options", "kept"),
    [
        (["-o", "a=1,obproxy_sys_password=s3,b=2"], ["-o", "a=1,b=2"]),
        (["-oobserver_sys_password=s3"], []),
        (["--optstr=a=1,observer_root_password=s3"], ["--optstr=a=1"]),
        (["--optstr", "obproxy_sys_password=s3", "-n", "app"], ["-n", "app"]),
        (["-p", "2883", "-o", "x_passwd=s3,y=2"], ["-p", "2883", "-o", "y=2"]),
    ],
)
def test_secrets_leave_the_recorded_command_line(options: list[str], kept: list[str]) -> None:
    recorded, dropped = without_secrets(options)
    assert recorded == kept and dropped and "s3" not in " ".join(recorded)
    assert "s3" not in shown_command(["./bin/obproxy", *options])


def test_the_program_is_the_binary_or_the_script_an_interpreter_runs() -> None:
    binary = Process(
        7, "/home/a/obproxy/bin/obproxy", "/home/a/obproxy", ["bin/obproxy", "-p", "2883"], 7
    )
    assert binary.program() == (0, "/home/a/obproxy/bin/obproxy")
    assert binary.options() == ["-p", "2883"] and binary.option("--listen_port", "-p") == "2883"
    script = Process(8, "/usr/bin/python3.11", "/srv/x", ["python3", "./bin/obproxy", "-l2884"], 8)
    assert script.program() == (1, "/srv/x/bin/obproxy")
    assert script.option("--prometheus_listen_port", "-l") == "2884"
    other = Process(9, "/usr/sbin/nginx", "/", ["nginx", "-g", "daemon off;"], None)
    assert other.program() is None


def test_the_search_answer_is_read_back_whole() -> None:
    def b64(text: str) -> str:
        return "x" + base64.b64encode(text.encode()).decode()

    argv = ["./bin/obproxy", "-o", "a=b c", "-n", "new\nline"]
    line = f"{FOUND} 42 {b64('/d/bin/obproxy')} {b64('/d')} {b64(chr(0).join(argv) + chr(0))} x42"
    state, found = parse_found(line + "\n")
    assert state == FOUND and found == [Process(42, "/d/bin/obproxy", "/d", argv, 42)]
    assert parse_found(NOTHING + "\n") == (NOTHING, [])


def test_own_parameters_are_those_off_obproxys_defaults() -> None:
    rows = [
        ("client_max_connections", "8192"),  # the default
        ("enable_cluster_checkout", "FALSE"),  # a BOOL, read in any case
        ("syslog_level", "INFO"),
        ("listen_port", "2890"),  # the server's own column
        ("obproxy_sys_password", "******"),  # never recorded
        ("standin_only", "1"),  # not in the metadata
    ]
    own, unknown = own_parameters(rows, "4.3.2.0")
    assert own == [
        {"name": "enable_cluster_checkout", "value": "FALSE"},
        {"name": "syslog_level", "value": "INFO"},
    ]
    assert unknown == ["standin_only"]


@pytest.mark.parametrize(
    ("options", "merged"),
    [
        (["-n", "app", "-o", "a=1,b=2"], ["-n", "app", "-o", "a=1,b=2,c=3"]),
        (["-o", "a=1,c=0", "-n", "app"], ["-o", "a=1,c=3", "-n", "app"]),  # the cluster's wins
        (["-oa=1", "--optstr=c=0"], ["-oa=1", "--optstr=c=3"]),
        (["--optstr=a=1"], ["--optstr=a=1,c=3"]),
        (["-p", "2883"], ["-p", "2883", "-o", "c=3"]),
    ],
)
def test_the_clusters_values_join_the_adopted_o_items(
    options: list[str], merged: list[str]
) -> None:
    assert merged_options(options, {"c": "3"}) == merged
    assert merged_options(options, {}) == options


@pytest.mark.parametrize(
    ("install", "why"),
    [
        ("/", "it is the root directory"),
        ("/home/admin", "it is the login's home"),
        ("/home/admin/", "it is the login's home"),
        ("/home", "it holds the login's home (/home/admin)"),
        ("/data/admin", "it is the login's home"),  # the home as it resolves
        ("/home/admin/obproxy", None),
        ("/home/adm", None),
        ("/home/admin2", None),
    ],
)
def test_the_root_the_home_and_its_ancestors_are_no_install(install: str, why: str | None) -> None:
    assert unsafe_install_dir(install, ["/home/admin", "/data/admin"]) == why
