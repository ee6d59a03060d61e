"""Split nested state (optimizer state dicts, RNG states) into tensors for safetensors and a
JSON skeleton, and join them back. This is how the trainer checkpoints without pickle."""
from __future__ import annotations

from typing import Any

import torch


def split_state(obj: Any, prefix: str, tensors: dict[str, torch.Tensor]) -> Any:
    """Replace every tensor in ``obj`` by a reference, storing it in ``tensors``.

    Dict keys keep their types (optimizer states are keyed by int), tuples stay tuples.
    """
    if isinstance(obj, torch.Tensor):
        key = f"{prefix}"
        tensors[key] = obj
        return {"__tensor__": key}
    if isinstance(obj, dict):
        return {"__dict__": [[k, split_state(v, f"{prefix}.{k}", tensors)] for k, v in obj.items()]}
    if isinstance(obj, (list, tuple)):
        items = [split_state(v, f"{prefix}.{i}", tensors) for i, v in enumerate(obj)]
        return {"__tuple__": items} if isinstance(obj, tuple) else items
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    raise TypeError(f"cannot checkpoint a value of type {type(obj).__name__} at {prefix}")


def join_state(obj: Any, tensors: dict[str, torch.Tensor]) -> Any:
    """Inverse of `split_state`."""
    if isinstance(obj, dict):
        if "__tensor__" in obj:
            key = obj["__tensor__"]
            if key not in tensors:
                raise KeyError(f"checkpoint lacks tensor {key}")
            return tensors[key]
        if "__dict__" in obj:
            return {(k if not isinstance(k, list) else tuple(k)): join_state(v, tensors) for k, v in obj["__dict__"]}
        if "__tuple__" in obj:
            return tuple(join_state(v, tensors) for v in obj["__tuple__"])
        raise ValueError(f"malformed checkpoint entry {sorted(obj)}")
    if isinstance(obj, list):
        return [join_state(v, tensors) for v in obj]
    return obj
