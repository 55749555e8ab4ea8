"""Serving many adapters from one base: one copy of the base, outputs equal to separately
loaded ``hf:BASE+lora:ADAPTER`` models, turns of different adapters batched together with the
p_t each would get alone, and least-recently-used eviction under a memory budget."""

from __future__ import annotations

import threading

import pytest

from models_svc.action_space import valid_action_list

from .test_hf_policy import inputs

pytestmark = pytest.mark.ml

FORMAT = "respect-2024"


def server(**options):
    from models_svc.backends.policy_server import PolicyServer, ServingOptions

    return PolicyServer(ServingOptions(device="cpu", **options))


def spellings(path: str) -> list[str]:
    head, tail = path.rsplit("/", 1)
    return [path, path + "/", f"{head}//{tail}", f"{head}/./{tail}"]


def separate(base: str, adapter: str | None):
    from models_svc.backends.hf_policy import HFPolicy

    return HFPolicy(base, adapter=adapter, device="cpu", prompt_format=FORMAT)


def test_adapters_share_one_base_and_answer_as_separately_loaded_models(
    tiny_idefics2, tiny_lora, second_lora, tangram_images
):
    serving = server()
    views = {}
    for adapter in (None, tiny_lora, second_lora):
        for spelling in spellings(adapter) if adapter else spellings(tiny_idefics2):
            base = spelling if adapter is None else tiny_idefics2
            views[adapter] = serving.policy(base, spelling if adapter else "", FORMAT, "hf")
    assert serving.cache.loads == {"bases": 1, "adapters": 2}
    assert len(serving.cache.bases) == 1
    items = inputs(tangram_images, 4)
    for adapter, view in views.items():
        reference = separate(tiny_idefics2, adapter)
        assert view.version == reference.version
        served = view.act(items)
        alone = reference.act(items)
        assert [d.action for d in served] == [d.action for d in alone]
        for ours, theirs in zip(served, alone, strict=True):
            assert ours.probability == pytest.approx(theirs.probability, abs=1e-5, rel=0)
        for item, decision in zip(items[:2], served, strict=False):
            other = valid_action_list(frozenset(item.selection), len(item.images))[-1]
            for action in (decision.action, other):
                assert view.score(item, action) == pytest.approx(
                    reference.score(item, action), abs=1e-5, rel=0
                )
    # the adapters really differ from the base and from each other
    item = items[0]
    scores = {a: v.score(item, served[0].action) for a, v in views.items()}
    assert len({round(s, 6) for s in scores.values()}) == 3


def test_turns_of_mixed_adapters_in_one_batch_match_one_by_one(
    tiny_idefics2, tiny_lora, second_lora, tangram_images
):
    serving = server()
    routes = [tiny_lora, "", second_lora, tiny_lora, second_lora, "", tiny_lora, second_lora]
    items = inputs(tangram_images, len(routes))
    together = serving.run_batch(tiny_idefics2, FORMAT, items, routes)
    alone = [
        serving.run_batch(tiny_idefics2, FORMAT, [item], [route])[0]
        for item, route in zip(items, routes, strict=True)
    ]
    assert [d.action for d in together] == [d.action for d in alone]
    for ours, theirs in zip(together, alone, strict=True):
        assert ours.probability == pytest.approx(theirs.probability, abs=1e-6, rel=0)


def test_concurrent_games_reach_the_batcher_together(
    tiny_idefics2, tiny_lora, second_lora, tangram_images
):
    serving = server(max_batch=6, max_wait=30.0)  # closes as soon as the six are in
    routes = [tiny_lora, second_lora, "", tiny_lora, second_lora, ""]
    views = [serving.policy(tiny_idefics2, route, FORMAT, "hf") for route in routes]
    items = inputs(tangram_images, len(routes))
    answers = [None] * len(items)
    barrier = threading.Barrier(len(items))

    def play(index: int) -> None:
        barrier.wait()
        answers[index] = views[index].act([items[index]])[0]

    threads = [threading.Thread(target=play, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert serving.batcher(tiny_idefics2, FORMAT).batch_sizes == [6]
    # the same rows in another order: the same answers (to rounding: a row's place in a batch
    # may change which matrix-multiply kernel blocks its arithmetic)
    alone = serving.run_batch(tiny_idefics2, FORMAT, items, routes)
    assert [a.action for a in answers] == [b.action for b in alone]
    for ours, theirs in zip(answers, alone, strict=True):
        assert ours.probability == pytest.approx(theirs.probability, abs=1e-6, rel=0)


def test_least_recently_used_adapters_and_bases_go_under_a_tiny_budget(
    ml_dir, tiny_idefics2, tiny_lora, second_lora, tangram_images, caplog
):
    from models_svc.tiny_models import tiny_idefics2 as build

    other_base = str(build(ml_dir / "idefics2-other", seed=5))
    probe = server()
    entry = probe.cache.base(tiny_idefics2)
    probe.cache.adapter(entry, tiny_lora)
    probe.cache.adapter(entry, second_lora)
    base_size, sizes = entry.size, list(entry.adapter_sizes.values())
    assert base_size > 0 and all(size > 0 for size in sizes)
    # room for the base and its larger adapter, not for both adapters
    serving = server(budget=base_size + max(sizes))
    item = inputs(tangram_images, 1)[0]
    first = serving.policy(tiny_idefics2, tiny_lora, FORMAT, "hf")
    expected = first.score(item, "select A")
    with caplog.at_level("INFO", logger="models_svc.backends.model_cache"):
        serving.policy(tiny_idefics2, second_lora, FORMAT, "hf")
    assert f"evicted adapter {tiny_lora}" in caplog.text
    held = serving.cache.holdings()
    assert any(line.startswith(f"adapter {second_lora} ") for line in held)
    assert not any(line.startswith(f"adapter {tiny_lora} ") for line in held)
    # the evicted adapter comes back on its next turn, with the same answers
    assert first.score(item, "select A") == pytest.approx(expected, abs=1e-6, rel=0)
    assert serving.cache.loads == {"bases": 1, "adapters": 3}
    assert serving.cache.held_bytes() <= serving.cache.budget
    # a second base does not fit beside the first: the least recently used base goes
    with caplog.at_level("INFO", logger="models_svc.backends.model_cache"):
        serving.policy(other_base, "", FORMAT, "hf")
    assert [key.path for key in serving.cache.bases] == [other_base]
    assert f"evicted base {tiny_idefics2}" in caplog.text


def test_the_decoder_naming_the_policies_base_shares_it_with_adapters_off(
    tiny_idefics2, tiny_lora, settings
):
    from models_svc import registry
    from models_svc.backends.hf_decoder import HFDecoder
    from models_svc.interfaces import FeedbackContext

    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu"}
    registry.clear_cache()
    try:
        head, tail = tiny_idefics2.rsplit("/", 1)
        registry.get_policy(f"hf:{head}//{tail}+lora:{tiny_lora}", prompt_format=FORMAT)
        decoder = registry.get_decoder(f"hf:{tiny_idefics2}/")
        assert registry.policy_server().cache.loads == {"bases": 1, "adapters": 1}
        contexts = [
            FeedbackContext("the bird", "select B", "yes good"),
            FeedbackContext("the man", "select A C", "no, not that one", "select C"),
        ]
        alone = HFDecoder(tiny_idefics2, device="cpu").decode(contexts, "ternary")
        shared = decoder.decode(contexts, "ternary")
        assert [r.label for r in shared] == [r.label for r in alone]
        for ours, theirs in zip(shared, alone, strict=True):
            for label, value in theirs.extra["logprobs"].items():
                assert ours.extra["logprobs"][label] == pytest.approx(value, abs=1e-5, rel=0)
    finally:
        registry.clear_cache()


def test_a_batch_never_exceeds_its_size_and_a_lone_turn_does_not_wait_for_company(
    tiny_idefics2, tiny_lora, tangram_images
):
    serving = server(max_batch=4, max_wait=0.2)
    view = serving.policy(tiny_idefics2, tiny_lora, FORMAT, "hf")
    items = inputs(tangram_images, 6)
    barrier = threading.Barrier(len(items))

    def play(index: int) -> None:
        barrier.wait()
        view.act([items[index]])

    threads = [threading.Thread(target=play, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    sizes = serving.batcher(tiny_idefics2, FORMAT).batch_sizes
    assert sum(sizes) == 6 and max(sizes) == 4
    view.act([items[0]])  # alone: answered once the window closes
    assert sizes[-1] == 1


def test_a_view_finds_its_batcher_once_not_on_every_turn(tiny_idefics2, tiny_lora, tangram_images):
    """Keying the base by its files on every turn (a realpath and a stat per weight file, under
    the cache lock) made 16 games asking at once miss each other's 5 ms batch window."""
    serving = server(max_wait=0.0)
    view = serving.policy(tiny_idefics2, tiny_lora, FORMAT, "hf")
    lookups = []
    find = serving.batcher

    def counted(base, fmt):
        lookups.append((base, fmt))
        return find(base, fmt)

    serving.batcher = counted
    items = inputs(tangram_images, 2)
    first = view.act(items[:1]) + view.act(items[1:])
    assert lookups == [(tiny_idefics2, FORMAT)]
    assert [d.action for d in first] == [d.action for d in view.act(items)]
    assert sum(find(tiny_idefics2, FORMAT).batch_sizes) == 4


def growing_games(images, games: int, turns: int, late: int = 0):
    """Turn ``turns`` of each game, whose prompt extends the one of its turn before (game g
    shows the images rotated by g; the last ``late`` games started one turn later)."""
    from models_svc.interfaces import PastTurn, PolicyInput

    from .conftest import NAMES

    items = []
    for game in range(games):
        played = turns - 1 if game >= games - late else turns
        names = tuple(NAMES[game:] + NAMES[:game])[:10]
        paths = tuple(images[game:] + images[:game])[:10]
        history = tuple(
            PastTurn(("A",) if t % 2 else (), f"the bird {t} of game {game}", "select B")
            for t in range(max(played, 0))
        )
        items.append(
            PolicyInput(
                images=names,
                selection=("A",) if played % 2 else (),
                utterance=f"the bird {played} of game {game}",
                history=history,
                image_paths=paths,
                seed=f"{game}:{played}",
            )
        )
    return items


def test_turns_resuming_their_games_stored_prompts_answer_as_a_fresh_model(
    tiny_idefics2, tiny_lora, second_lora, tangram_images
):
    """Each game's next turn runs only its new tokens on the stored keys and values of its last
    prompt, batched with games whose stored prompts have other lengths (and a game's first turn
    beside them), and answers as a separately loaded model without any cache."""
    routes = [tiny_lora, second_lora, "", tiny_lora, second_lora]
    cached = server(prefix_cache_bytes=2**30)
    one_by_one = server(prefix_cache_bytes=2**30)
    references = {route: separate(tiny_idefics2, route or None) for route in set(routes)}
    for turn in range(4):
        items = growing_games(tangram_images, len(routes), turn, late=2)
        together = cached.run_batch(tiny_idefics2, FORMAT, items, routes)
        alone = [
            one_by_one.run_batch(tiny_idefics2, FORMAT, [item], [route])[0]
            for item, route in zip(items, routes, strict=True)
        ]
        fresh = [references[r].act([i])[0] for i, r in zip(items, routes, strict=True)]
        assert [d.action for d in together] == [d.action for d in fresh]
        assert [d.action for d in alone] == [d.action for d in fresh]
        for ours, single, theirs in zip(together, alone, fresh, strict=True):
            assert ours.probability == pytest.approx(single.probability, abs=1e-6, rel=0)
            assert ours.probability == pytest.approx(theirs.probability, abs=1e-5, rel=0)
        cache = cached._shared_policy(cached.cache.base(tiny_idefics2), FORMAT).prefix_cache
        if turn == 1:  # every game has played its first turn: the rest resume
            counts = (cache.reused_tokens, cache.computed_tokens)
    assert len(cache) == len(routes)
    reused, computed = cache.reused_tokens - counts[0], cache.computed_tokens - counts[1]
    assert reused > 3 * computed > 0
    # and only the new text was tokenised: 5 games' prompts after the first turns (and one
    # game's turn 1 after its first), the 2 late games' first prompts tokenised whole
    memo = cached._shared_policy(cached.cache.base(tiny_idefics2), FORMAT)._prompt_ids()
    assert memo.enabled and memo.resumed == 3 + 5 + 5


def test_a_stored_prompt_is_used_only_where_the_new_one_starts_with_it():
    import torch

    from models_svc.backends.prefix_cache import Prefix, PrefixCache

    def stored(ids):
        layer = torch.zeros((2, len(ids), 4))
        return Prefix(torch.tensor(ids), [(layer, layer.clone())])

    image = 99
    cache = PrefixCache(budget=10**6, image_token_id=image)
    cache.store("game", stored([1, 99, 2, 3, 4]))
    assert cache.lookup("game", torch.tensor([1, 99, 2, 3, 4, 5, 6])).length == 5
    assert cache.lookup("game", torch.tensor([1, 99, 2, 7, 4, 5])).length == 3
    # at least one token is left to run: its logits start the answer
    assert cache.lookup("game", torch.tensor([1, 99, 2, 3, 4])).length == 4
    assert cache.lookup("game", torch.tensor([8, 99, 2])) is None
    assert cache.lookup("other game", torch.tensor([1, 99, 2, 3, 4, 5])) is None
    # an image token in the part to run: its features would be missing
    assert cache.lookup("game", torch.tensor([1, 99, 2, 3, 4, 99, 5])) is None
    # least recently used entries go beyond the budget
    one = stored([1, 2, 3]).size
    small = PrefixCache(budget=2 * one, image_token_id=None)
    for name in ("a", "b", "c"):
        small.store(name, stored([1, 2, 3]))
    assert len(small) == 2 and small.held_bytes == 2 * one
    assert small.lookup("a", torch.tensor([1, 2, 3, 4])) is None
    assert small.lookup("c", torch.tensor([1, 2, 3, 4])).length == 3


@pytest.mark.parametrize(("budget", "expected"), [(0, None), (5 * 2**20, 5 * 2**20)])
def test_the_live_workers_prefix_cache_follows_its_setting(
    tiny_idefics2, tiny_lora, tangram_images, settings, budget, expected
):
    from models_svc import registry

    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu", "PREFIX_CACHE_BYTES": budget}
    registry.clear_cache()
    try:
        view = registry.get_policy(f"hf:{tiny_idefics2}+lora:{tiny_lora}", prompt_format=FORMAT)
        view.act(inputs(tangram_images, 1))
        server = registry.policy_server()
        cache = server._shared_policy(server.cache.base(tiny_idefics2), FORMAT).prefix_cache
        assert (cache.budget if cache else None) == expected
        assert cache is None or len(cache) == 1
    finally:
        registry.clear_cache()


@pytest.mark.parametrize(
    ("pool", "concurrency", "expected"),
    [
        ("threads", 16, 16),
        ("threads", 64, 32),
        ("solo", 1, 1),
        ("prefork", 4, 1),
        ("eventlet", 8, 32),
    ],
)
def test_a_workers_batches_hold_at_most_the_turns_its_pool_can_ask_at_once(
    settings, pool, concurrency, expected
):
    """A thread pool of 16 asks at most 16 turns at once, so a batch of 16 needs no wait; a
    solo worker or prefork child asks one at a time; other pools keep the setting (32)."""
    from celery.signals import worker_init

    from models_svc import registry, tasks

    threads = concurrency

    class Worker:  # what the signal's sender, a WorkController, says of its pool
        pool_cls, concurrency = pool, threads

    assert tasks.size_live_batches in [ref() for _, ref in worker_init.receivers]

    settings.MODELS_SVC = {**settings.MODELS_SVC, "DEVICE": "cpu", "POLICY_MAX_BATCH": 32}
    registry.clear_cache()
    try:
        worker_init.send(sender=Worker())
        assert registry.policy_server().options.max_batch == expected
    finally:
        registry.set_turns_at_once(None)
        registry.clear_cache()
