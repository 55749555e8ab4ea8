"""Room for an answer's tokens in a batch's key-value cache, so decoding steps write in place.

transformers' dynamic cache layers concatenate each decoding step's keys and values onto the
whole cache: every step copies every row's ~1,000 cached positions at every layer (about 1 MiB a
layer and tensor for 16 tiny-model rows, more than the step's own arithmetic), a cost that grows
with the batch and the prompt. ``make_room`` moves each layer's keys and values into buffers
with ``room`` more positions; a step then writes its own positions and the layer hands attention
a view of the filled part: the same values in the same order, so attention reads exactly what
it read before. A step past the room falls back to the layer's own update. A sliding-window
layer gets room only while the window cannot be reached (it then holds every position, as a
plain layer does).
"""

from __future__ import annotations

from typing import Any

import torch
from transformers.cache_utils import DynamicLayer, DynamicSlidingWindowLayer


class _Room:
    """Keys and values as views into buffers with spare positions (mixed into a cache layer)."""

    def _fill(self, keys: Any, values: Any, room: int) -> None:
        self._filled = filled = keys.shape[-2]
        shape = (*keys.shape[:-2], filled + room, keys.shape[-1])
        self._key_buffer = keys.new_empty(shape)
        self._value_buffer = values.new_empty(shape)
        self._key_buffer[..., :filled, :] = keys
        self._value_buffer[..., :filled, :] = values
        self._show()

    def _show(self) -> None:
        """Point the layer's keys and values at the filled part of the buffers."""
        self.keys = self._key_buffer[..., : self._filled, :]
        self.values = self._value_buffer[..., : self._filled, :]

    def _write(self, key_states: torch.Tensor, value_states: torch.Tensor) -> bool:
        """Write the new positions into the buffers; False when they do not fit."""
        filled, new = self._filled, key_states.shape[-2]
        if filled + new > self._key_buffer.shape[-2]:
            return False
        self._key_buffer[..., filled : filled + new, :] = key_states
        self._value_buffer[..., filled : filled + new, :] = value_states
        self._filled += new
        self._show()
        return True


class RoomyLayer(_Room, DynamicLayer):
    def __init__(self, layer: DynamicLayer, room: int) -> None:
        DynamicLayer.__init__(self)
        self.device, self.is_initialized = layer.device, True
        self._fill(layer.keys, layer.values, room)

    def update(self, key_states, value_states, *args, **kwargs):
        if self._write(key_states, value_states):
            return self.keys, self.values
        return DynamicLayer.update(self, key_states, value_states, *args, **kwargs)


class RoomySlidingLayer(_Room, DynamicSlidingWindowLayer):
    def __init__(self, layer: DynamicSlidingWindowLayer, room: int) -> None:
        DynamicSlidingWindowLayer.__init__(self, layer.sliding_window)
        self.device, self.is_initialized = layer.device, True
        self._sliding_window_tensor = layer._sliding_window_tensor
        self.cumulative_length = layer.cumulative_length
        self._fill(layer.keys, layer.values, room)

    def update(self, key_states, value_states, *args, **kwargs):
        if self._write(key_states, value_states):
            self.cumulative_length += key_states.shape[-2]
            return self.keys, self.values
        return DynamicSlidingWindowLayer.update(self, key_states, value_states, *args, **kwargs)


def make_room(cache, room: int) -> None:
    """Give the layers of the dynamic cache ``cache`` ``room`` spare positions (in place)."""
    for index, layer in enumerate(cache.layers):
        if not layer.is_initialized:
            continue
        if type(layer) is DynamicLayer:
            cache.layers[index] = RoomyLayer(layer, room)
        elif (
            type(layer) is DynamicSlidingWindowLayer
            and not layer.record_past
            and layer.keys is not None
            and layer.keys.shape[-2] == layer.cumulative_length
            and layer.cumulative_length + room < layer.sliding_window
        ):
            cache.layers[index] = RoomySlidingLayer(layer, room)
