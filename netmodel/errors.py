"""The one error type a user can cause, printed by the CLI as a single line."""

from __future__ import annotations


class NetmodelError(Exception):
    """A user-facing error: bad input, impossible topology, unreachable target.

    `str()` gives one line: ``file:line: field: message``, leaving out the parts
    that are not known.
    """

    def __init__(self, message: str, *, file: str | None = None,
                 line: int | None = None, field: str | None = None):
        self.message = message
        self.file = file
        self.line = line
        self.field = field
        super().__init__(str(self))

    def __str__(self) -> str:
        where = ""
        if self.file:
            where = f"{self.file}:{self.line}: " if self.line else f"{self.file}: "
        what = f"{self.field}: " if self.field else ""
        text = f"{where}{what}{self.message}"
        # one line, whatever a key or value of the input held
        return text.replace("\r", "\\r").replace("\n", "\\n")
