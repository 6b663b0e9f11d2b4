"""The no-op step the benchmarks run, importable by className like any step."""

from __future__ import annotations

from engine import Step, StepContext


def noop(ctx: object) -> None:
    """The work itself: nothing, so what is measured is pure orchestration."""


class Noop(Step):
    def execute(self, ctx: StepContext) -> None:
        noop(ctx)
