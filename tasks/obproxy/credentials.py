"""Passwords obproxy needs to reach OceanBase clusters (the obLink user's, e.g. proxyro).

Registered by the operator ahead of a create; read only by the "Set obproxy user and password for
connect" step, which masks the value in its log. Never part of a request, task record or log.
"""

from __future__ import annotations

from engine import Engine, FieldError, RequestInvalid

from .records import ObCredentialRecord


def register_ob_credential(engine: Engine, cluster_name: str, username: str, password: str) -> None:
    problems = [
        FieldError(field, "must be a non-empty string")
        for field, value in (
            ("clusterName", cluster_name),
            ("username", username),
            ("password", password),
        )
        if not isinstance(value, str) or not value.strip()
    ]
    if problems:
        raise RequestInvalid(problems)
    engine.store.ensure_schema()
    with engine.store.write() as session:
        record = session.get(ObCredentialRecord, (cluster_name, username))
        if record is None:
            record = ObCredentialRecord(cluster_name=cluster_name, username=username, password="")
        record.password = engine.store.secrets.seal(password)  # type: ignore[assignment]
        session.add(record)
