"""The "Create an OBProxy cluster" request body, field for field as OCP documents it.

Types are strict (JSON ``"2883"`` is not a port; ``true`` is not an id) and unknown fields are
ignored, as OCP's own sample carries an undocumented ``obLinks[].clusterId``.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from engine import FieldError

_OPTION_NAME = re.compile(r"^[A-Za-z0-9_.]+$")
Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class ObLink(_Model):
    clusterName: Name
    obClusterId: Annotated[int, Field(ge=1)]
    username: Name
    # ocptask's extension: the cluster's root servers ("ip:port;ip:port"), which OCP reads from
    # its metadb. Needed in RS_LIST mode to start obproxy with --rs_list.
    rsList: (
        Annotated[str, Field(pattern=r"^[0-9A-Za-z.:\[\]-]+(;[0-9A-Za-z.:\[\]-]+)*$")] | None
    ) = None


class ObproxyParameter(_Model):
    name: Name
    value: str


class ObproxyInstallParam(_Model):
    hostIds: list[Annotated[int, Field(ge=1)]]
    sqlPort: Port | None = None
    exportPort: Port | None = None
    version: Name | None = None


class CreateObproxyClusterRequest(_Model):
    name: Name
    address: Annotated[str, StringConstraints(strip_whitespace=True, max_length=255)] | None = None
    port: Port | None = None
    workMode: Literal["CONFIG_URL", "RS_LIST"] = "CONFIG_URL"
    obproxyInstallParam: ObproxyInstallParam | None = None
    obLinks: list[ObLink] = []
    startupParameters: list[ObproxyParameter] = []
    parameters: list[ObproxyParameter] = []

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
        for field in ("startupParameters", "parameters"):
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
        links = [link.clusterName for link in self.obLinks]
        for i, name in enumerate(links):
            if name in links[:i]:
                found.append(FieldError(f"obLinks[{i}].clusterName", f"duplicate {name!r}", name))
        hosts = self.host_ids
        for i, host in enumerate(hosts):
            if host in hosts[:i]:
                found.append(
                    FieldError(f"obproxyInstallParam.hostIds[{i}]", f"duplicate host {host}", host)
                )
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
            if self.workMode == "RS_LIST" and self.obLinks and not self.obLinks[0].rsList:
                found.append(
                    FieldError(
                        "obLinks[0].rsList",
                        "RS_LIST mode needs the cluster's root "
                        "servers to start obproxy with --rs_list",
                    )
                )
        for field in ("startupParameters", "parameters"):
            for i, param in enumerate(getattr(self, field)):
                if "password" in param.name.lower():
                    found.append(
                        FieldError(
                            f"{field}[{i}].name",
                            "passwords are not taken in a request: it would keep them in the "
                            "task record. Register credentials with 'ocptask obproxy credential'",
                            param.name,
                        )
                    )
        for i, param in enumerate(self.startupParameters):
            # These travel inside obproxy's "-o k=v,k2=v2": a ',' or '=' would split them.
            if not _OPTION_NAME.match(param.name):
                found.append(
                    FieldError(
                        f"startupParameters[{i}].name",
                        "must match [A-Za-z0-9_.]+ to be passed with -o",
                        param.name,
                    )
                )
            if "," in param.value or "=" in param.value:
                found.append(
                    FieldError(
                        f"startupParameters[{i}].value",
                        "cannot contain ',' or '=' (obproxy -o cannot carry them)",
                        param.value,
                    )
                )
        for i, param in enumerate(self.parameters):
            if not _OPTION_NAME.match(param.name):
                found.append(
                    FieldError(f"parameters[{i}].name", "must match [A-Za-z0-9_.]+", param.name)
                )
        return found
