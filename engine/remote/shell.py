"""The shell text the SSH layer sends around each command, and how it reads the output back.

Every command runs as the leader of a new session, so that its whole process tree can be killed
as a group; the leader reports its group id on stderr (``PGID_MARK``), which ``OutputLines``
takes out of the output. A tagged command also leaves a mark file in ``RUN_DIR`` while it lives,
so that a later run can kill what a dead controller left behind (``SshConnection.kill_tagged``).
"""

from __future__ import annotations

from collections.abc import Callable

PGID_MARK = "ocptask-pgid "
# Run the command as the leader of a new session so the whole tree can be killed as a group.
# The command travels as a positional argument: no layer of quoting is added around it.
WRAPPER = "setsid -w sh -c 'printf \"" + PGID_MARK + '%s\\n" $$ 1>&2; eval "$1"\' ocptask '
# With a tag, the group also leaves a file ``~/.ocptask/run/<tag>.<pgid>`` holding its leader's
# start time while it lives, so that a later run can find and kill what a dead controller left
# behind (``kill_tagged``), and never a stranger that reused the number. A TERM, HUP or INT ends
# the shell through its EXIT trap, which removes the file; an unwritable home only loses the mark.
RUN_DIR = ".ocptask/run"
# A shell function (its own positional parameters, so the command's are left alone): field 22
# of /proc/<pid>/stat, counted after the "(comm)" field, which may hold spaces or brackets.
START_TIME = (
    '_ocptask_start() { _ocptask_st=; read -r _ocptask_l < "/proc/$1/stat" || return 0; '
    "_ocptask_l=${_ocptask_l##*) }; set -f; set -- $_ocptask_l; set +f; "
    "[ $# -ge 20 ] && shift 19 && _ocptask_st=$1; return 0; }; "
)
TAGGED_WRAPPER = (
    "setsid -w sh -c 'printf \""
    + PGID_MARK
    + '%s\\n" $$ 1>&2; '
    + START_TIME
    + f'_ocptask_d="$HOME/{RUN_DIR}"; _ocptask_f="$_ocptask_d/$2.$$"; _ocptask_start $$; '
    '{ [ -d "$_ocptask_d" ] || mkdir -p "$_ocptask_d"; echo "$_ocptask_st" > "$_ocptask_f"; } '
    '2>/dev/null || _ocptask_f=; if [ -n "$_ocptask_f" ]; then '
    'trap "rm -f \\"$_ocptask_f\\"" EXIT; trap "exit 143" TERM HUP INT; fi; '
    'eval "$1"\' ocptask '
)


def stop_script(process: str, *, tries: int = 20, pause: float = 0.05) -> str:
    """Shell that stops ``process`` (a pid, or ``-<pgid>`` for a process group, or a shell
    word that expands to one): TERM, up to ``tries`` times ``pause`` seconds for it to go, then
    KILL. It never fails. No "--" before a group: dash's kill takes "-TERM -<pgid>" but not
    "-TERM -- -<pgid>"."""
    return (
        f"kill -TERM {process} 2>/dev/null; i=0; "
        f"while kill -0 {process} 2>/dev/null && [ $i -lt {tries} ]; "
        f"do sleep {pause:g}; i=$((i+1)); done; kill -KILL {process} 2>/dev/null; true"
    )


def checked_tag(tag: str) -> str:
    """A command tag as it goes into file names and shell patterns."""
    if not tag or not all(c.isalnum() or c == "-" for c in tag):
        raise ValueError(f"command tag {tag!r}: letters, digits and '-' only")
    return tag


class OutputLines:
    """Split a byte stream into lines for the callback; keep everything for the result."""

    def __init__(
        self,
        stream: str,
        on_output: Callable[[str, str], None] | None,
        pgid_mark: str | None = None,
    ) -> None:
        self.stream = stream
        self.on_output = on_output
        self.pgid_mark = pgid_mark
        self.pgid: int | None = None
        self._buffer = b""
        self._kept: list[str] = []
        self._newline_at_end = False

    def feed(self, data: bytes) -> None:
        if data:
            self._newline_at_end = data.endswith(b"\n")
        self._buffer += data
        *lines, self._buffer = self._buffer.split(b"\n")
        for raw in lines:
            self._line(raw.decode("utf-8", "replace"))

    def _line(self, text: str) -> None:
        if self.pgid_mark and self.pgid is None and text.startswith(self.pgid_mark):
            number = text[len(self.pgid_mark) :].strip()
            if number.isdigit():
                self.pgid = int(number)
                return
        self._kept.append(text)
        if self.on_output is not None:
            self.on_output(self.stream, text)

    def close(self) -> str:
        if self._buffer:
            self._line(self._buffer.decode("utf-8", "replace"))
            self._buffer = b""
        return "\n".join(self._kept) + ("\n" if self._kept and self._newline_at_end else "")
