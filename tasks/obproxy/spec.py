"""What an OBProxy task knows of its OBProxies before any step runs: the payload's mark, and
one OBProxy as the database records it (``ServerSpec``, with its obproxy command line)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel

from .adopted import merged_options
from .delivery import Delivery, deliveries
from .secret_parameters import Opener, login_passwords


class Marked(BaseModel):
    """The part of every OBProxy task's payload host steps read: the task's random mark,
    which names its remote commands on hosts (cleanup tags); subtask ids alone repeat across
    ocptask databases that may drive the same host. None in tasks made before marks existed."""

    mark: str | None = None


def new_mark() -> str:
    return uuid.uuid4().hex[:12]


@dataclass(frozen=True)
class ServerSpec:
    """One OBProxy as recorded: its cluster's settings and its own server row."""

    cluster_id: int
    cluster_name: str
    work_mode: str
    ob_links: list[dict[str, Any]]
    startup_parameters: list[dict[str, str]]
    parameters: list[dict[str, str]]
    server_id: int
    sql_port: int
    exporter_port: int
    version_file: str
    # One taken over (``takeover``): its own install directory, its own command line (after
    # the binary) and its root@proxysys password, sealed; None for ocptask's installs.
    install_dir: str | None = None
    startup_options: list[str] | None = None
    proxysys_password: str | None = None
    config_url: str | None = None  # CONFIG_URL mode: the cluster's (``config_url``)

    def deliveries(self) -> list[Delivery]:
        """The recorded parameters, each with how it reaches obproxy (``delivery``)."""
        return deliveries(self.startup_parameters, self.parameters)

    def admin_passwords(self, open_secret: Opener) -> list[str]:
        """The root@proxysys passwords it may have (``secret_parameters.login_passwords``)."""
        recorded = [*self.startup_parameters, *self.parameters]
        return login_passwords(self.proxysys_password, recorded, open_secret)

    def start_args(self) -> list[str]:
        """obproxy's command line for this server (run from its install directory). Both carry
        the cluster's parameters that go at start in ``-o``, never a secret (``delivery``): one
        taken over starts again as it was started before, those merged into its own ``-o``
        items (the cluster's value wins for a name in both), so that a restart applies them as
        its "Sync obproxy parameter" says; ocptask's own with the cluster's other settings."""
        if self.startup_options is not None:
            at_start = {d.name: d.value for d in self.deliveries() if d.at_start}
            return ["./bin/obproxy", *merged_options(self.startup_options, at_start)]
        args = [
            "./bin/obproxy",
            "--listen_port",
            str(self.sql_port),
            "--prometheus_listen_port",
            str(self.exporter_port),
        ]
        options = [f"{d.name}={d.value}" for d in self.deliveries() if d.at_start]
        if self.work_mode == "RS_LIST":
            link = self.ob_links[0]
            args += ["--rs_list", link.get("rsList") or "", "--cluster_name", link["clusterName"]]
        elif self.config_url is None:
            raise LookupError(
                f"OBProxy cluster {self.cluster_name!r} is in CONFIG_URL mode and has no config "
                "URL recorded: submit the task again from a server with a public URL "
                "('ocptask serve --public-url URL'), which records it"
            )
        else:
            options.append(f"obproxy_config_server_url={self.config_url}")
        if options:
            args += ["-o", ",".join(options)]
        return args
