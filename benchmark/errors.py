"""The error kinds vlm4rec-bench raises on purpose, at ground level.

Every package (``benchmark``, ``vlm4rec``, ``baselines`` and plug-ins) may import this module
without pulling in anything above it. :class:`BenchError` is the one base: anything deriving
from it is a problem the user can fix or must know about (a bad config value, a bad input
line, a changed file), so the command line prints it as one line and exits with code 2
instead of showing a traceback. The subclasses keep the built-in base they had before
(``ValueError``, ``KeyError``, …) so ``except ValueError`` callers keep working.
"""

from __future__ import annotations


class BenchError(Exception):
    """Base of every error the harness raises on purpose (printed as one line by the CLI)."""


class ConfigError(BenchError, ValueError):
    """A configuration value is missing, unknown or of the wrong type (names the key)."""


class CliError(BenchError):
    """An error the user can fix at the command line (bad flag, missing file)."""


class BadInputError(BenchError, ValueError):
    """A bad input line met in strict mode, or a file a reader cannot read at all."""

    def __init__(self, file: str, line: int | None, kind: str, detail: str = "") -> None:
        self.file = str(file)
        self.line = line
        self.kind = kind
        self.detail = detail
        where = f"{self.file}:{line}" if line is not None else self.file
        super().__init__(f"{where}: {kind}" + (f": {detail}" if detail else ""))


class WrongFormatError(BadInputError):
    """The file is not in the format (release/layout) it was read as."""

    def __init__(self, file: str, detail: str) -> None:
        super().__init__(file, None, "wrong_format", detail)


class IntegrityError(BenchError, RuntimeError):
    """Persisted data no longer matches what was recorded for it (a changed split or cache file)."""
