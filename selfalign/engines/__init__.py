"""Engines are the only code that touches a model's forward pass; stages above see texts and numbers."""
from selfalign.engines.base import Engine, GenerationConfig  # noqa: F401


def make_engine(name: str = "hf", **load_kwargs) -> "Engine":
    """Build an engine by name. ``hf`` (transformers) is the default and the only built-in one so far."""
    from selfalign.errors import SelfAlignError

    if name == "hf":
        from selfalign.engines.hf import HFEngine

        return HFEngine.from_spec(**load_kwargs)
    raise SelfAlignError(f"unknown engine {name!r}; available: hf")
