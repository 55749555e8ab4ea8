"""The channel layer (``config.pubsub``) on a real Redis: a move's publish never queues behind
another publish or behind the subscriptions of sockets opening and closing."""

from __future__ import annotations

import asyncio
import os

import pytest

from config.pubsub import ConcurrentPublishLayer
from tests.conftest import require

# The database is not used; marked so the session teardown of tests/play finds its test database.
pytestmark = [pytest.mark.django_db, pytest.mark.asyncio]


@pytest.fixture
async def layer():
    url = os.environ.get("REDIS_URL", "")
    require(bool(url), "the channel layer tests need Redis")
    layer = ConcurrentPublishLayer(hosts=[url], prefix=f"test-pubsub-{os.getpid()}")
    yield layer
    await layer.flush()


async def test_a_publish_goes_while_a_subscription_holds_the_lock(layer):
    """A socket opening or closing holds the subscriptions' lock for its round trip to Redis;
    a group message sent meanwhile is delivered without waiting for it."""
    channel = await layer.new_channel()
    await layer.group_add("game", channel)
    (shard,) = layer._get_layer()._shards
    async with shard._lock:
        await asyncio.wait_for(layer.group_send("game", {"type": "game.update", "n": 1}), 2)
        received = await asyncio.wait_for(layer.receive(channel), 5)
    assert received == {"type": "game.update", "n": 1}


async def test_publishes_go_side_by_side_and_all_arrive(layer):
    """Many publishes at once (the moves of many games) all arrive (in any order: consumers keep
    the newest version of a game, as with publishes from two processes)."""
    channels = {}
    for game in range(5):
        channels[game] = await layer.new_channel()
        await layer.group_add(f"game-{game}", channels[game])
    await asyncio.gather(
        *(
            layer.group_send(f"game-{game}", {"type": "game.update", "n": n})
            for n in range(10)
            for game in range(5)
        )
    )
    for channel in channels.values():
        got = [(await asyncio.wait_for(layer.receive(channel), 5))["n"] for _ in range(10)]
        assert sorted(got) == list(range(10))
