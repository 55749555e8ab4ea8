"""The Redis pub/sub channel layer, with publishes that never wait for one another.

``channels_redis.pubsub`` serialises every publish, subscribe and unsubscribe of a web process
through one lock per Redis host, and a publish holds it for a whole round trip to Redis. Every
move is a publish (the players' new views), and every socket that opens or closes subscribes or
unsubscribes twice (its own channel and its group); in a burst of arrivals a move's message
waited behind hundreds of them, for up to a second and more. Here a publish takes a connection
of the layer's pool and goes at once; subscriptions (one pub/sub connection) keep the lock.
Two publishes of one game may now overtake each other, as publishes from two web processes
always could: a game socket sends only views newer than the last it sent
(``GameConsumer.send_view``), and every view is the whole state.
"""

from __future__ import annotations

import asyncio

from channels_redis.pubsub import (
    RedisPubSubChannelLayer,
    RedisPubSubLoopLayer,
    RedisSingleShardConnection,
)
from channels_redis.utils import _wrap_close, decode_hosts


class _Shard(RedisSingleShardConnection):
    async def publish(self, channel, message) -> None:
        """Publish without the shard's lock: the pool's connections carry publishes side by
        side (the lock guards the one pub/sub connection that subscriptions share)."""
        self._ensure_redis()
        await self._redis.publish(channel, message)


class _LoopLayer(RedisPubSubLoopLayer):
    def __init__(self, hosts=None, *args, **kwargs) -> None:
        super().__init__(hosts, *args, **kwargs)
        self._shards = [_Shard(host, self) for host in decode_hosts(hosts)]


class ConcurrentPublishLayer(RedisPubSubChannelLayer):
    """``RedisPubSubChannelLayer`` whose publishes do not queue behind each other or behind
    subscriptions (module doc); everything else is the same layer."""

    def _get_layer(self):
        loop = asyncio.get_running_loop()
        layer = self._layers.get(loop)
        if layer is None:
            layer = self._layers[loop] = _LoopLayer(*self._args, **self._kwargs, channel_layer=self)
            _wrap_close(self, loop)
        return layer
