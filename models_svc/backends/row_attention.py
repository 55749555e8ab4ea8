"""Attention for left-padded batches: each row's prompt attends over its own tokens only.

A batch of prompts of different lengths is left padded. With PyTorch's SDPA (transformers'
``sdpa``) that costs a boolean ``(batch, 1, L, L)`` mask, which the CPU kernel turns into an
additive float mask and which rules out its causal fast path: every row pays attention over the
longest row's full square, masked positions included. A 16-row listener batch of ~850-token
prompts on one CPU thread took ~30 ms per row that way, against ~14 ms for the same row alone.

``row_sdpa`` (registered with transformers' attention and mask interfaces) runs the prefill of a
left-padded batch row by row, each row sliced to its real tokens and run with ``is_causal``
exactly as it would run alone (inference only: with gradients on it is ``sdpa``), so padding
costs nothing and a row's result does not depend on its neighbours. The same holds for several
new tokens per row after a cache (a turn resuming its game's stored prompt, ``prefix_cache``):
each row's new tokens attend over its own keys only, with the causal mask a row alone would get,
and for a decoding step of a batch with padding or finished rows (whose step is masked out and
skipped). Everything else (unpadded prefills and decoding steps, masks that are not plain
causal-and-padding) is transformers' ``sdpa`` unchanged. Padding positions get zeros (no real
token ever attends to them). The projections and MLPs still run on the whole batch, which is
where batching pays.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import torch

NAME = "row_sdpa"


def _left_padding(mask: torch.Tensor) -> torch.Tensor | None:
    """Pads per row of a 2D padding mask (True = token) when every row is left padded (its
    tokens contiguous and at the end); None otherwise."""
    as_int = mask.to(torch.int8)
    if bool((as_int[:, 1:] < as_int[:, :-1]).any()):
        return None
    return (~mask).sum(dim=1)


def row_sdpa_mask(
    batch_size: int,
    q_length: int,
    kv_length: int,
    q_offset: Any = 0,
    kv_offset: int = 0,
    mask_function: Any = None,
    attention_mask: torch.Tensor | None = None,
    **kwargs: Any,
) -> torch.Tensor | None:
    """The 2D padding mask (what ``row_sdpa_attention`` slices by) for a causal prefill of a
    left-padded batch, or for several new tokens per row after a cache (a turn resuming its
    game's stored prompt, ``prefix_cache``); else the mask transformers builds for ``sdpa``.

    Either qualifies when the mask is plain causal (transformers allows skipping it:
    ``allow_is_causal_skip``), no sliding window reaches back past the first token (as ``sdpa``
    checks) and no gradient is being recorded (training keeps ``sdpa`` as it is). A prefill
    qualifies when nothing is cached yet, some row is padded and every row's tokens sit at its
    end (an unpadded one runs ``is_causal`` as it would alone). New tokens after a cache
    qualify whenever there are several per row, padded or not, so that a row runs the same
    arithmetic alone and in a batch. One new token (a decoding step) qualifies when some
    position is masked (padding, or a finished row's step); unmasked, it keeps ``sdpa``."""
    from transformers.masking_utils import causal_mask_function, sdpa_mask

    local_size = kwargs.get("local_size")
    plain = (
        not torch.is_grad_enabled()
        and isinstance(q_offset, int)
        and kv_offset == 0
        and kwargs.get("allow_is_causal_skip", True)
        and (local_size is None or kv_length < local_size)
        and attention_mask is not None
        and attention_mask.ndim == 2
        and attention_mask.shape[1] == kv_length
    )
    if plain and attention_mask is not None:
        prefill = (
            q_offset == 0
            and q_length == kv_length > 1
            and not bool(attention_mask.all())
            and _left_padding(attention_mask) is not None
        )
        resuming = 1 < q_length < kv_length and q_offset + q_length == kv_length
        stepping = (
            q_length == 1 < kv_length
            and q_offset + 1 == kv_length
            and not bool(attention_mask.all())
        )
        if prefill or resuming or stepping:
            return attention_mask
    return sdpa_mask(
        batch_size=batch_size,
        q_length=q_length,
        kv_length=kv_length,
        q_offset=q_offset,
        kv_offset=kv_offset,
        mask_function=mask_function or causal_mask_function,
        attention_mask=attention_mask,
        **kwargs,
    )


def row_sdpa_attention(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    attention_mask: torch.Tensor | None,
    **kwargs: Any,
) -> tuple[torch.Tensor, None]:
    """``sdpa``, except that a 2D mask (from ``row_sdpa_mask``) runs each row alone over its
    own tokens."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if attention_mask is None or attention_mask.ndim != 2:
        return sdpa_attention_forward(module, query, key, value, attention_mask, **kwargs)
    if query.shape[2] < key.shape[2]:
        return _resumed_rows(module, query, key, value, attention_mask, **kwargs), None
    pads = _left_padding(attention_mask)
    if pads is None:  # row_sdpa_mask only hands over left-padded masks
        raise ValueError("row_sdpa: the padding mask is not left padded")
    batch, _, length, _ = query.shape
    output = query.new_zeros((batch, length, query.shape[1], value.shape[-1]))
    for row, pad in enumerate(pads.tolist()):
        part = slice(row, row + 1)
        answer, _ = sdpa_attention_forward(
            module,
            query[part, :, pad:],
            key[part, :, pad:],
            value[part, :, pad:],
            None,
            **kwargs,
        )
        output[row, pad:] = answer[0]
    return output, None


@dataclass(frozen=True)
class _Row:
    """One row's part of a pass after a cache: its last ``new`` queries attend over the key
    positions ``keys`` under the additive mask ``causal`` (None: a single query sees every one
    of them)."""

    row: int
    new: int
    keys: torch.Tensor | slice  # a slice where the row's keys are contiguous (no copy)
    causal: torch.Tensor | None


_plans = threading.local()


def _plan(mask: torch.Tensor, length: int, dtype: torch.dtype) -> list[_Row]:
    """The rows with new tokens (a row whose new positions are all masked, a finished answer
    in a decoding step, has none and is skipped), each with its queries and keys, for the 2D
    ``mask`` of a pass with ``length`` new tokens per row; worked out once per pass (every
    layer of the pass gets the same mask object)."""
    last = getattr(_plans, "last", None)
    if last is not None and last[0] is mask and last[1:3] == (length, dtype):
        return last[3]
    width = mask.shape[1]
    flags = mask.bool()
    # Per row: its new tokens, all its tokens, how many trailing tokens are real in a row, and
    # whether its tokens are contiguous (left padded), each in one vectorised pass.
    news = flags[:, -length:].sum(dim=1).tolist()
    seen = flags.sum(dim=1).tolist()
    trailing = flags.flip(1).to(torch.int8).cumprod(dim=1).sum(dim=1).tolist()
    rows = []
    for row, (new, total, tail) in enumerate(zip(news, seen, trailing, strict=True)):
        if new == 0:
            continue
        if tail < new:
            raise ValueError("row_sdpa: the new tokens of a row are not left padded")
        causal = None
        if new > 1:  # additive, as SDPA would turn a boolean mask into on every layer
            allowed = torch.ones((new, total), dtype=torch.bool, device=mask.device)
            causal = torch.zeros((new, total), dtype=dtype, device=mask.device)
            causal = causal.masked_fill(~allowed.tril(diagonal=total - new), float("-inf"))
            causal = causal[None, None]
        keys: torch.Tensor | slice = slice(width - total, None)
        if tail < total:  # padding between its tokens: gather them
            keys = flags[row].nonzero()[:, 0]
        rows.append(_Row(row, new, keys, causal))
    _plans.last = (mask, length, dtype, rows)
    return rows


def _resumed_rows(
    module: torch.nn.Module,
    query: torch.Tensor,
    key: torch.Tensor,
    value: torch.Tensor,
    mask: torch.Tensor,
    **kwargs: Any,
) -> torch.Tensor:
    """New tokens after a cache, row by row: each row's real queries (its last ones; the new
    tokens are left padded) attend causally over its real keys (the mask's True positions,
    wherever padding sits between them). Rows without new tokens get zeros."""
    batch, heads, length, width = query.shape
    output = query.new_zeros((batch, length, heads, width))
    attend = _row_attention(module, heads != key.shape[1], kwargs)
    for part in _plan(mask, length, query.dtype):
        row, new = part.row, part.new
        answer = attend(
            query[row : row + 1, :, length - new :],
            key[row : row + 1, :, part.keys],
            value[row : row + 1, :, part.keys],
            part.causal,
        )
        output[row, length - new :] = answer[0]
    return output


def _row_attention(module: torch.nn.Module, grouped: bool, kwargs: dict[str, Any]):
    """Attention of one row, output as (1, queries, heads, width). For a plain causal LM this
    is the very call transformers' ``sdpa`` makes for an unmasked single query (same kernel,
    same arguments, so a decoding row alone and in a batch get the same numbers) without its
    per-call checks; anything else (a softcap, a position bias) goes through ``sdpa`` itself."""
    from transformers.integrations.sdpa_attention import sdpa_attention_forward

    if kwargs.get("softcap") is not None or kwargs.get("position_bias") is not None:
        return lambda q, k, v, mask: sdpa_attention_forward(module, q, k, v, mask, **kwargs)[0]
    from transformers.integrations.sdpa_attention import repeat_kv

    scaling, dropout = kwargs.get("scaling"), kwargs.get("dropout", 0.0)
    groups = getattr(module, "num_key_value_groups", 1)

    def attend(q, k, v, mask):
        extra = {}
        if grouped and mask is None:
            extra["enable_gqa"] = True
        elif grouped:  # as ``sdpa`` does: some kernels take grouped heads only unmasked
            k, v = repeat_kv(k, groups), repeat_kv(v, groups)
        answer = torch.nn.functional.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=dropout, scale=scaling, is_causal=False, **extra
        )
        return answer.transpose(1, 2)

    return attend


def register() -> str:
    """Make ``row_sdpa`` known to transformers (idempotent); returns its name."""
    from transformers import AttentionInterface
    from transformers.masking_utils import AttentionMaskInterface

    AttentionInterface.register(NAME, row_sdpa_attention)
    AttentionMaskInterface.register(NAME, row_sdpa_mask)
    return NAME


def use_row_attention(model: Any) -> None:
    """Switch a loaded model's text decoder from ``sdpa`` to ``row_sdpa`` (same results; other
    attention implementations, and the vision tower, are left as they are)."""
    config = getattr(model, "config", None)
    text = getattr(config, "text_config", None)
    target = text if text is not None else config
    if target is None or getattr(target, "_attn_implementation", None) != "sdpa":
        return
    name = register()
    if text is not None:
        model.set_attn_implementation({"text_config": name})
    else:
        model.set_attn_implementation(name)
