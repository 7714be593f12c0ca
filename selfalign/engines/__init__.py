"""Engines are the only code that touches a model's forward pass; stages above see texts and numbers. The engines
are named in ``registry.ENGINES``: one file here plus one row there."""
from selfalign.engines.base import Engine, GenerationConfig  # noqa: F401


def make_engine(name: str = "hf", **load_kwargs) -> "Engine":
    """Build an engine by name (``ModelArgs.engine``): ``hf`` (transformers, the default), ``vllm`` (optional
    extra), ``openai`` (an OpenAI-compatible server at $OPENAI_BASE_URL) or ``openai:<base_url>``. With
    ``device_map``, ``tensor_parallel_size`` or ``data_parallel_size`` (``config.ParallelArgs``) the placement is
    checked first (``engines/placement.py``); ``data_parallel_size`` > 1 gives a pool of copies
    (``engines/pool.py``)."""
    from selfalign.engines import placement
    from selfalign.registry import ENGINES

    copies = load_kwargs.pop("data_parallel_size", 1)
    placement.check(name, load_kwargs.get("device", "auto"), load_kwargs.get("device_map"),
                    load_kwargs.get("tensor_parallel_size", 1), copies)
    key, arg = ENGINES.split(name)
    if copies > 1:
        from selfalign.engines.pool import PoolEngine

        return PoolEngine(name, copies, load_kwargs)
    if arg is not None:
        load_kwargs["base_url"] = arg
    return ENGINES.load(key).from_spec(**load_kwargs)
