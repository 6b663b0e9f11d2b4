"""The "Create an OBProxy cluster" request body, field for field as OCP documents it.

Values are read as OCP's Jackson reads them (``tasks.validation.OcpBody``: JSON ``"2883"`` is a
port, ``true`` is not an id) and unknown fields are ignored, as OCP's own sample carries an
undocumented ``obLinks[].clusterId`` (but a field that differs from a known one only by case, like
``workmode``, is refused by ``tasks.validation.parse``).

Every string and list has a limit a real OBProxy accepts, and names refuse control, format and
other invisible characters (see ``tasks.validation.name_text``).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field

from engine import FieldError
from tasks.validation import Id, OcpBody, Port, name_text, value_text

from .delivery import delivery
from .secret_parameters import PARAMETER_LISTS
from .spec import Marked

_OPTION_NAME = re.compile(r"[A-Za-z0-9_.]+")
ClusterName = Annotated[str, name_text(64)]  # OBProxy cluster names and OceanBase cluster names
Username = Annotated[str, name_text(64)]
ParameterName = Annotated[str, name_text(128)]
ParameterValue = Annotated[str, value_text(4096)]
Version = Annotated[str, name_text(255)]
Address = Annotated[str, name_text(255, allow_empty=True)]

MAX_OB_LINKS = 64
MAX_HOSTS = 1000
MAX_PARAMETERS = 1000


_Model = OcpBody


class ObLink(_Model):
    clusterName: ClusterName
    obClusterId: Id
    username: Username
    # ocptask's extension: the cluster's root servers ("ip:port;ip:port"), which OCP reads from
    # its metadb. Needed in RS_LIST mode to start obproxy with --rs_list.
    rsList: (
        Annotated[
            str,
            Field(max_length=4096, pattern=r"^[0-9A-Za-z.:\[\]-]+(;[0-9A-Za-z.:\[\]-]+)*$"),
        ]
        | None
    ) = None


class ObproxyParameter(_Model):
    name: ParameterName
    value: ParameterValue


class ObproxyInstallParam(_Model):
    hostIds: Annotated[list[Id], Field(max_length=MAX_HOSTS)]
    sqlPort: Port | None = None
    exportPort: Port | None = None
    version: Version | None = None


class CreateObproxyClusterRequest(_Model):
    name: ClusterName
    address: Address | None = None
    port: Port | None = None
    workMode: Literal["CONFIG_URL", "RS_LIST"] = "CONFIG_URL"
    obproxyInstallParam: ObproxyInstallParam | None = None
    obLinks: Annotated[list[ObLink], Field(max_length=MAX_OB_LINKS)] = []
    startupParameters: Annotated[list[ObproxyParameter], Field(max_length=MAX_PARAMETERS)] = []
    parameters: Annotated[list[ObproxyParameter], Field(max_length=MAX_PARAMETERS)] = []

    @property
    def host_ids(self) -> list[int]:
        return list(self.obproxyInstallParam.hostIds) if self.obproxyInstallParam else []

    def problems(self) -> list[FieldError]:
        """Rules that span fields; shape and types were checked by pydantic already."""
        found: list[FieldError] = []
        if self.workMode == "RS_LIST" and len(self.obLinks) != 1:
            found.append(
                FieldError(
                    "obLinks",
                    f"RS_LIST mode takes exactly one obLink, got {len(self.obLinks)}",
                    len(self.obLinks),
                )
            )
        seen: dict[str, str] = {}
        for field in PARAMETER_LISTS:
            for i, param in enumerate(getattr(self, field)):
                where = f"{field}[{i}].name"
                if param.name in seen:
                    found.append(
                        FieldError(
                            where,
                            f"duplicate parameter {param.name!r} (also at {seen[param.name]})",
                            param.name,
                        )
                    )
                else:
                    seen[param.name] = where
        link_names: set[str] = set()
        for i, link in enumerate(self.obLinks):
            name = link.clusterName
            if name in link_names:
                found.append(FieldError(f"obLinks[{i}].clusterName", f"duplicate {name!r}", name))
            link_names.add(name)
        hosts = self.host_ids
        host_set: set[int] = set()
        for i, host in enumerate(hosts):
            if host in host_set:
                found.append(
                    FieldError(f"obproxyInstallParam.hostIds[{i}]", f"duplicate host {host}", host)
                )
            host_set.add(host)
        install = self.obproxyInstallParam
        if hosts and install is not None:
            for field in ("sqlPort", "exportPort", "version"):
                if getattr(install, field) is None:
                    found.append(
                        FieldError(
                            f"obproxyInstallParam.{field}", "required when hostIds is not empty"
                        )
                    )
            if install.sqlPort is not None and install.sqlPort == install.exportPort:
                found.append(
                    FieldError(
                        "obproxyInstallParam.exportPort",
                        "must differ from sqlPort",
                        install.exportPort,
                    )
                )
        for field in PARAMETER_LISTS:
            for i, param in enumerate(getattr(self, field)):
                if not _OPTION_NAME.fullmatch(param.name):
                    found.append(
                        FieldError(f"{field}[{i}].name", "must match [A-Za-z0-9_.]+", param.name)
                    )
                # One given at start travels inside obproxy's "-o k=v,k2=v2" (``delivery``): a
                # ',' or '=' would split it. A secret never goes there, so it may hold them.
                way = delivery(param.name, param.value, startup=field == "startupParameters")
                if way.at_start and ("," in param.value or "=" in param.value):
                    found.append(
                        FieldError(
                            f"{field}[{i}].value",
                            f"cannot contain ',' or '=': {param.name} is given at start, in "
                            "obproxy's -o, which cannot carry them",
                            param.value,
                        )
                    )
        return found


class InstallPayload(Marked):
    """What a create task's steps read (its payload): the request and who made it (and the
    mark naming the task's remote commands on hosts). Its secret parameters are masked: the
    cluster's record keeps them, sealed (``secret_parameters``)."""

    request: CreateObproxyClusterRequest
    creator: str
