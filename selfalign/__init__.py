"""selfalign: Self-Alignment for Factuality (Zhang et al., ACL 2024) as a library and CLI."""

__version__ = "0.1.0"

from selfalign.errors import InputError, ModelError, SelfAlignError  # noqa: E402,F401
