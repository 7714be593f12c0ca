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


class Interrupted(SelfAlignError):
    """A run stopped by SIGTERM after saving what it had; exit 143 (128 + SIGTERM)."""

    exit_code = 143
