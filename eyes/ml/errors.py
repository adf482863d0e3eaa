"""Errors of the ML layer. They carry an HTTP status so the web layer can render them unchanged."""

from __future__ import annotations

from pathlib import Path

from eyes.errors import EyesError

EXPORT_COMMAND = "eyes models export-backbone"


class ModelFileError(EyesError):
    """A model file is missing, corrupt or does not match its card. The message names the file."""

    status_code = 503
    code = "model_file"

    def __init__(self, message: str, *, path: Path | str | None = None) -> None:
        super().__init__(message, details={"path": str(path)} if path is not None else None)
        self.path = Path(path) if path is not None else None


def backbone_file_error(path: Path, problem: str) -> ModelFileError:
    """The error for a broken backbone file, with the command that rebuilds it."""
    return ModelFileError(
        f"the backbone model file {path} {problem}; rebuild it with '{EXPORT_COMMAND}'", path=path
    )
