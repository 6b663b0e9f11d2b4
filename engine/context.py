"""The context that flows along the DAG: OCP's ``{parallelIdx, stringMap, listMap}``.

Values are strings (stringMap) and lists of strings (listMap), as in OCP, so a context always
round-trips through JSON unchanged whatever database holds it.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from .errors import ContextConflict


@dataclass
class Context:
    string_map: dict[str, str] = field(default_factory=dict)
    list_map: dict[str, list[str]] = field(default_factory=dict)
    parallel_idx: int = -1

    @classmethod
    def of(cls, args: Context | Mapping[str, Any] | None) -> Context:
        """Build a task context from submit arguments.

        Accepts a Context, an OCP-shaped mapping (``stringMap``/``listMap`` keys), or a flat
        mapping where strings go to stringMap and lists go to listMap.
        """
        if args is None:
            return cls()
        if isinstance(args, Context):
            return args.copy()
        if not isinstance(args, Mapping):
            raise TypeError(f"task arguments must be a mapping, not {type(args).__name__}")
        if set(args) <= {"stringMap", "listMap", "parallelIdx", "parallel"} and args:
            flat: dict[str, Any] = {}
            flat.update(args.get("stringMap") or {})
            for key, value in (args.get("listMap") or {}).items():
                flat[key] = list(value)
            args = flat
        ctx = cls()
        for key, value in args.items():
            if not isinstance(key, str) or not key:
                raise TypeError(f"context key {key!r} must be a non-empty string")
            if isinstance(value, str):
                ctx.string_map[key] = value
            elif isinstance(value, bool):
                ctx.string_map[key] = "true" if value else "false"
            elif isinstance(value, int):
                ctx.string_map[key] = str(value)
            elif isinstance(value, (list, tuple)):
                ctx.list_map[key] = [_scalar(key, v) for v in value]
            else:
                raise TypeError(
                    f"context value for {key!r} must be a string or a list, "
                    f"not {type(value).__name__}"
                )
        return ctx

    def copy(self, parallel_idx: int | None = None) -> Context:
        return Context(
            dict(self.string_map),
            {k: list(v) for k, v in self.list_map.items()},
            self.parallel_idx if parallel_idx is None else parallel_idx,
        )

    def to_ocp(self) -> dict[str, Any]:
        return {
            "listMap": {k: list(v) for k, v in self.list_map.items()},
            "parallel": self.parallel_idx != -1,
            "parallelIdx": self.parallel_idx,
            "stringMap": dict(self.string_map),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any] | None) -> Context:
        data = data or {}
        return cls(
            {str(k): str(v) for k, v in (data.get("stringMap") or {}).items()},
            {str(k): [str(x) for x in v] for k, v in (data.get("listMap") or {}).items()},
            int(data.get("parallelIdx", -1)),
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "parallelIdx": self.parallel_idx,
            "stringMap": dict(self.string_map),
            "listMap": {k: list(v) for k, v in self.list_map.items()},
        }

    @classmethod
    def merge(cls, contexts: Iterable[Context], parallel_idx: int) -> Context:
        """Merge upstream contexts as OCP does: stringMap values must agree, listMaps are unioned.

        Union keeps first-seen order so a list split over (say) host ids keeps its indices.
        """
        merged = cls(parallel_idx=parallel_idx)
        for ctx in contexts:
            for key, value in ctx.string_map.items():
                known = merged.string_map.setdefault(key, value)
                if known != value:
                    raise ContextConflict(
                        f"upstream contexts disagree on stringMap[{key!r}]: {known!r} vs {value!r}"
                    )
            for key, values in ctx.list_map.items():
                target = merged.list_map.setdefault(key, [])
                for value in values:
                    if value not in target:
                        target.append(value)
        return merged


def _scalar(key: str, value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    raise TypeError(f"listMap[{key!r}] elements must be strings, not {type(value).__name__}")
