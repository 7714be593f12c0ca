"""Typed errors. The library raises these; only the CLI turns them into exit codes."""


class SelfAlignError(Exception):
    """A problem the user can fix (bad input, missing model, bad flag). Printed as one line, exit 2."""


class InputError(SelfAlignError):
    """Bad input data: the message names the file and, where known, the line."""

    def __init__(self, path, message, line=None):
        where = f"{path}:{line}" if line is not None else f"{path}"
        super().__init__(f"{where}: {message}")
        self.path, self.line = path, line


class ModelError(SelfAlignError):
    """A model spec that cannot be resolved or loaded."""


class Interrupted(BaseException):
    """SIGTERM or Ctrl-C inside a stage: what was written is kept. ``code`` is the exit status (143, 130).

    A BaseException (like KeyboardInterrupt), so that no ``except Exception`` on the way swallows it."""

    def __init__(self, message: str, code: int):
        super().__init__(message)
        self.code = code
