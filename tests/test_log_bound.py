"""Bounded subtask logs: an execution's first and last N KiB are stored with a marker between,
whatever the step writes, without holding what it writes in memory."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine import Engine, Node, Step, StepContext, TaskStatus, Template
from engine.db.subtask_log import MASK, SubtaskLogger, keep_bytes

KEEP_KIB = 64
CHUNK_LINES = 64
LINE = 1024  # bytes per line, newline included
MIB_WRITTEN = 50
SECRET = "the-proxyro-password"
HELD: list[int] = []
FAIL_FIRST: set[str] = set()


def _line(i: int) -> str:
    text = f"output line {i:08d} "
    return text + "x" * (LINE - len(text) - 1) + "\n"


class Flood(Step):
    """Writes 50 MiB of output (64 KiB at a time) between a first and a last line that name a
    secret; notes how much its logger holds as it goes."""

    def execute(self, ctx: StepContext) -> None:
        ctx.log.add_secret(SECRET)
        ctx.log.info(f"first line, with {SECRET}")
        chunks = MIB_WRITTEN * 1024 * 1024 // (CHUNK_LINES * LINE)
        for c in range(chunks):
            ctx.log.write("".join(_line(c * CHUNK_LINES + i) for i in range(CHUNK_LINES)))
            if c % 16 == 0:
                HELD.append(ctx.log.held)
        ctx.log.info(f"last line, with {SECRET}")
        if ctx.name in FAIL_FIRST:
            FAIL_FIRST.discard(ctx.name)
            raise RuntimeError("failing once")

    retry = execute


def _flood() -> Template:
    return Template("flood", [Node(f"{__name__}.Flood", "Flood", timeout=600)])


@pytest.fixture(autouse=True)
def _clean() -> None:
    HELD.clear()
    FAIL_FIRST.clear()


def test_a_step_writing_50_mib_keeps_its_start_its_end_and_a_marker(db_path: Path) -> None:
    with Engine(str(db_path), log_keep_kib=KEEP_KIB) as engine:
        task = engine.run(engine.submit(_flood()).id, timeout=600)
        assert task.status is TaskStatus.SUCCESSFUL
        log = engine.log(task.id, task.subtasks[0].id)
    keep = KEEP_KIB * 1024
    assert len(log.encode()) <= 2 * keep + 100  # the two ends, and one marker line
    assert log.startswith("############{EXECUTE}{")
    lines = log.splitlines()
    assert lines[1].endswith(f"first line, with {MASK}") and SECRET not in log
    assert lines[-1].endswith(f"last line, with {MASK}")
    markers = [n for n in lines if n.startswith("... ")]
    assert len(markers) == 1 and re.fullmatch(r"\.\.\. 49\.\d MiB left out \.\.\.", markers[0])
    head, tail = log.split(markers[0] + "\n")
    assert keep - LINE < len(head.encode()) <= keep  # whole lines, as many as fit
    assert keep - LINE < len(tail.encode()) <= keep
    # Nothing between lost or doubled: the lines kept run on, and the marker counts the rest.
    numbers = [int(n.split()[2]) for n in lines if n.startswith("output line ")]
    assert numbers == sorted(numbers) and len(set(numbers)) == len(numbers)
    total = MIB_WRITTEN * 1024 * 1024
    shown = sum(len(n) + 1 for n in lines if n.startswith("output line "))
    assert float(markers[0].split()[1]) == pytest.approx((total - shown) / 2**20, abs=0.06)
    # Memory: the logger never held more than the two ends (plus one chunk being written).
    assert HELD and max(HELD) <= 2 * keep + CHUNK_LINES * LINE


def test_every_execution_is_bounded_and_shows_its_header(db_path: Path) -> None:
    FAIL_FIRST.add("Flood")
    with Engine(str(db_path), log_keep_kib=8) as engine:
        task = engine.run(engine.submit(_flood()).id, timeout=600)
        assert task.status is TaskStatus.FAILED
        task = engine.run(engine.retry(task.id).id, timeout=600)
        assert task.status is TaskStatus.SUCCESSFUL
        log = engine.log(task.id, task.subtasks[0].id)
    headers = re.findall(r"^############\{(\w+)\}\{", log, re.MULTILINE)
    assert headers == ["EXECUTE", "RETRY"]
    assert len(re.findall(r"^\.\.\. [\d.]+ MiB left out \.\.\.$", log, re.MULTILINE)) == 2
    assert len(log.encode()) <= 2 * (2 * 8 * 1024 + 100)
    assert "RuntimeError: failing once" in log  # the first run's end, after its tail


def test_the_bound_is_set_by_the_engine_or_the_environment(
    db_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("OCPTASK_LOG_KEEP_KIB", raising=False)
    assert keep_bytes() == 64 * 1024 and keep_bytes(3) == 3 * 1024
    monkeypatch.setenv("OCPTASK_LOG_KEEP_KIB", "2")
    with Engine(str(db_path)) as engine:
        assert engine.runner.log_keep == 2048
    for bad in ("0", "lots", "-1"):
        monkeypatch.setenv("OCPTASK_LOG_KEEP_KIB", bad)
        with pytest.raises(ValueError, match=r"\$OCPTASK_LOG_KEEP_KIB must be a whole number"):
            Engine(str(db_path))
    with pytest.raises(ValueError, match="log_keep_kib must be"):
        Engine(str(db_path), log_keep_kib=0)


def test_what_is_kept_and_what_is_counted_add_up() -> None:
    """1,000 lines of 100 bytes through a 1 KiB bound: the head's and tail's whole lines, the
    count between them, and nothing else."""
    log = SubtaskLogger(1, keep=1024)
    written = [f"{i:04d} " + "y" * 94 + "\n" for i in range(1000)]
    for text in written:
        log.write(text)
    assert log.drain() == "".join(written[:10])  # the head, stored as it comes
    assert log.drain() == "" and not log.pending  # past the head: nothing until the end
    log.end()
    stored = log.drain()
    assert stored == f"... {(1000 - 20) * 100 / 1024:.1f} KiB left out ...\n" + "".join(
        written[-10:]
    )
    log.error("after the end")  # the runner's own last words are kept
    assert log.drain().endswith("after the end\n")


def test_one_huge_write_without_newlines_is_cut_at_the_bound() -> None:
    log = SubtaskLogger(1, keep=1024)
    log.write("z" * 10_000)
    log.end()
    stored = log.drain()
    assert stored == "z" * 1024 + "\n... 7.8 KiB left out ...\n" + "z" * 1024
