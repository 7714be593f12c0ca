"""Engines are the only code that touches a model's forward pass; stages above see texts and numbers. The engines
are named in ``registry.ENGINES``: one file here plus one row there."""
from selfalign.engines.base import Engine, GenerationConfig  # noqa: F401


def make_engine(name: str = "hf", **load_kwargs) -> "Engine":
    """Build an engine by name (``ModelArgs.engine``): ``hf`` (transformers, the default), ``vllm`` (optional
    extra), ``openai`` (an OpenAI-compatible server at $OPENAI_BASE_URL) or ``openai:<base_url>``."""
    from selfalign.registry import ENGINES

    key, arg = ENGINES.split(name)
    if arg is not None:
        load_kwargs["base_url"] = arg
    return ENGINES.load(key).from_spec(**load_kwargs)
