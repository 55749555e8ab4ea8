"""Rows of different LoRA adapters in one forward pass, with a fixed number of ops per layer.

peft mixes adapters in a batch (``adapter_names=``) by walking every module of the model to hook
it, on every forward pass, and then, in every LoRA layer, looping over the adapters present:
gather that adapter's rows, run its two small matrices, scatter the result back. With six
adapters that is some fifty tensor ops per layer per pass, where the base layer is one; on a
small model or one CPU thread those ops and the walk cost more than the arithmetic, and they grow
with the number of adapters in the batch, so batching across adapters pays less than it should.

``mixed_rows`` does the same arithmetic as peft's vanilla LoRA (``B(A(x)) * scaling`` added to
the base layer's output, input cast to the adapter's dtype) with each row's matrices gathered
from a stack of all the model's adapters: two batched matmuls per layer however many adapters
the batch holds. The LoRA layers are found once per set of attached adapters, not per pass.
Rows named ``__base__`` gather zeros (their output is the base layer's, exactly). Models whose
LoRA layers are not plain ``nn.Linear`` LoRA (DoRA and other variants, merged weights, dropout
in training mode) get peft's own ``adapter_names=`` path instead (``None`` from ``mixed_rows``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from .sampling import BASE_ROW


@dataclass
class _Stack:
    """All adapters of one LoRA layer, rank padded with zeros: ``a`` (n+1, r, in), ``b``
    (n+1, out, r), ``scale`` (n+1,), the last slot zero (the base row)."""

    key: tuple
    a: torch.Tensor
    b: torch.Tensor
    scale: torch.Tensor
    slot: dict[str, int]


@dataclass
class _Layers:
    key: tuple
    layers: list[Any]
    stacks: dict[int, _Stack] = field(default_factory=dict)


def _lora_layers(model: Any) -> list[Any] | None:
    """The model's LoRA layers, or None when one of them is not plain LoRA on ``nn.Linear``."""
    from peft.tuners.lora.layer import Linear, LoraLayer

    layers = [m for m in model.modules() if isinstance(m, LoraLayer)]
    if any(type(m) is not Linear or not isinstance(m.base_layer, torch.nn.Linear) for m in layers):
        return None
    return layers


def _layers(model: Any) -> _Layers | None:
    key = tuple(sorted(model.peft_config))
    cached = getattr(model, "_respect_mixed_lora", None)
    if cached is None or cached.key != key:
        layers = _lora_layers(model)
        if layers is None:
            return None
        cached = _Layers(key, layers)
        model._respect_mixed_lora = cached
    return cached


def _stack(layer: Any) -> _Stack:
    names = sorted(layer.lora_A)
    key = tuple((n, id(layer.lora_A[n].weight), id(layer.lora_B[n].weight)) for n in names)
    cached = getattr(layer, "_respect_stack", None)
    if cached is not None and cached.key == key:
        return cached
    first = layer.lora_A[names[0]].weight if names else layer.base_layer.weight
    rank = max((layer.lora_A[name].weight.shape[0] for name in names), default=1)
    a = first.new_zeros((len(names) + 1, rank, layer.in_features))
    b = first.new_zeros((len(names) + 1, layer.out_features, rank))
    scale = first.new_zeros(len(names) + 1)
    for slot, name in enumerate(names):
        weight_a, weight_b = layer.lora_A[name].weight, layer.lora_B[name].weight
        a[slot, : weight_a.shape[0]] = weight_a
        b[slot, :, : weight_b.shape[1]] = weight_b
        scale[slot] = layer.scaling[name]
    stack = _Stack(key, a, b, scale, {name: slot for slot, name in enumerate(names)})
    layer._respect_stack = stack
    return stack


def _plain(layer: Any, names: set[str]) -> bool:
    """Whether ``layer`` runs the adapters ``names`` as vanilla LoRA (what ``mixed_rows`` does)."""
    if layer.merged or layer.training or layer.disable_adapters:
        return False
    return not any(name in layer.lora_variant for name in names)


def _delta(stack: _Stack, rows: list[int], x: torch.Tensor) -> torch.Tensor:
    if x.shape[0] == len(rows):
        index = torch.tensor(rows, device=x.device)
    elif len(set(rows)) == 1:  # e.g. the image tower: one adapter, any number of images
        index = torch.full((x.shape[0],), rows[0], device=x.device)
    else:
        raise ValueError(f"{x.shape[0]} inputs for {len(rows)} rows of mixed adapters")
    a, b, scale = stack.a[index], stack.b[index], stack.scale[index]
    flat = x.to(a.dtype).reshape(x.shape[0], -1, x.shape[-1])
    out = torch.bmm(torch.bmm(flat, a.transpose(1, 2)), b.transpose(1, 2))
    return (out * scale[:, None, None]).reshape(*x.shape[:-1], b.shape[1])


@contextlib.contextmanager
def mixed_rows(model: Any, adapters: Sequence[str]) -> Iterator[bool]:
    """Within the block, every forward pass of the peft ``model`` applies row i's adapter
    ``adapters[i]`` (``__base__``: none) to row i. Yields False, doing nothing, where the fast
    path does not apply (the caller then passes peft's ``adapter_names=``)."""
    found = _layers(model) if hasattr(model, "peft_config") else None
    names = set(adapters) - {BASE_ROW}
    if found is None or not all(_plain(layer, names) for layer in found.layers):
        yield False
        return
    handles = []
    switched = []
    try:
        for layer in found.layers:
            stack = _stack(layer)
            base_slot = len(stack.slot)
            rows = [base_slot if n == BASE_ROW else stack.slot.get(n, base_slot) for n in adapters]

            def hook(_module, args, output, stack=stack, rows=rows):
                return output + _delta(stack, rows, args[0]).to(output.dtype)

            layer._disable_adapters = True  # the layer runs its base only; the hook adds
            switched.append(layer)
            handles.append(layer.register_forward_hook(hook))
        yield True
    finally:
        for handle in handles:
            handle.remove()
        for layer in switched:
            layer._disable_adapters = False


@contextlib.contextmanager
def row_adapters(model: Any, adapters: Sequence[str] | None) -> Iterator[dict[str, Any]]:
    """Forward-pass keyword arguments under which row i of ``model`` runs adapter
    ``adapters[i]`` (``None``: the model as it is): nothing extra inside ``mixed_rows``, else
    peft's ``adapter_names=``. A name the model does not hold raises ValueError."""
    if adapters is None:
        yield {}
        return
    if not hasattr(model, "peft_config"):
        if any(name != BASE_ROW for name in adapters):
            raise ValueError(f"adapters {sorted(set(adapters))} asked of a model without adapters")
        yield {}
        return
    unknown = set(adapters) - set(model.peft_config) - {BASE_ROW}
    if unknown:
        raise ValueError(f"the model holds no adapter named {', '.join(sorted(unknown))}")
    with mixed_rows(model, adapters) as fast:
        yield {} if fast else {"adapter_names": list(adapters)}
