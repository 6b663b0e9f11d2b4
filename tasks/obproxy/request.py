"""The "Create an OBProxy cluster" request body, field for field as OCP documents it.

Types are strict (JSON ``"2883"`` is not a port; ``true`` is not an id) and unknown fields are
ignored, as OCP's own sample carries an undocumented ``obLinks[].clusterId``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from engine import FieldError

Port = Annotated[int, Field(ge=1, le=65535)]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=128)]


class _Model(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore")


class ObLink(_Model):
    clusterName: Name
    obClusterId: Annotated[int, Field(ge=1)]
    username: Name


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
        if hosts:
            found.append(
                FieldError(
                    "obproxyInstallParam.hostIds",
                    "installing on hosts is not available yet (no host registry); "
                    "pass an empty list to create the cluster record only",
                    hosts,
                )
            )
        return found
