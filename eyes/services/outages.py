"""The database out of reach, as the layers above see it: which errors of the database library
mean that, and the domain error they become. The web layer answers them with a 503 without
knowing the library (an import-linter contract in pyproject.toml keeps it so)."""

from __future__ import annotations

from sqlalchemy.exc import InterfaceError, OperationalError

from eyes.errors import ServiceUnavailable

# A lost connection (the database restarting, say), wherever it surfaces: the web layer's error
# handlers and pages name these through this module, without importing the library.
DATABASE_DOWN: tuple[type[Exception], ...] = (OperationalError, InterfaceError)


class DatabaseUnavailable(ServiceUnavailable):
    """`cause`, one of `DATABASE_DOWN`, as a domain error: this request fails cleanly; the pool
    checks connections before use, so the next request reconnects by itself."""

    code = "database_unavailable"

    def __init__(self, cause: Exception) -> None:
        super().__init__("the database is unavailable right now; try again shortly")
        # What the log may say: the driver's message, not the statement (a statement can be
        # huge, and it carries user input).
        self.reason = str(getattr(cause, "orig", None) or type(cause).__name__)
