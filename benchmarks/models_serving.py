"""Benchmark: serving a round's systems from one base model on one GPU host.

    # CPU, tiny random IDEFICS2-architecture model, 6 adapters, 16 games asking at once:
    .venv/bin/python benchmarks/models_serving.py [--games 16 --rounds 5] [--smoke]

    # GPU, random weights in the full IDEFICS2-8B shape, bf16, 6 random adapters (the goal:
    # p95 < 1 s for 20 games asking at once on one H100):
    python benchmarks/models_serving.py --full-size --games 20 --rounds 10

Six LoRA adapters are served through the live worker's path (``models_svc.registry``'s policy
server: one base copy, adapters by name, one micro-batcher per base, the prefix cache). Their
specs write the base path six ways (``/x/tiny``, ``/x/tiny/``, ``/x//tiny``, ``/x/./tiny``, a
link, ``/x/../x/tiny``). Each of ``--games`` threads plays one game (adapter = game mod 6),
asking for one action per round, all at once; a game's prompt grows by one exchange per round
from a 10-turn history, as a real game's does, so each turn after the first resumes the game's
stored prompt (``prefix_cache``) and runs only its new tokens. The same rounds run batched (turns
of every adapter in one forward pass, at most one per game, as a live worker with a thread per
game caps its batches) and one at a time (``max_batch=1``), each on its own
server with its own cache, the two taking turns round by round (so a shared machine's slow
spells fall on both alike). Live latency beside training is measured the same way: the same
rounds, batched, on two more servers taking turns, with another process training a LoRA
adapter on the same base (what the ``gpu-batch`` worker does during a round) running during
one server's part of each round and stopped (``SIGSTOP``) during the other's. Both processes
use one torch thread each and the training one runs at the lowest CPU priority, as a CPU host's
batch worker should (``nice -n 19``); the machine may still be shared by other work, so the
figures are noisy. The batched-against-one-at-a-time comparison is also run without the prefix
cache, every turn running its whole prompt (printed before the last lines).

The last lines read ``base copies loaded: N``, ``batched speed-up: N.N×`` and ``live p95 during
training: N.N× idle``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import harness  # noqa: E402, F401  (puts the repository on sys.path)
from harness import percentile  # noqa: E402

FORMAT = "respect-2024"
PREFIX_BYTES = 2**30  # the prefix cache of each server (the live worker's default is 4 GiB)


def spellings(base: Path, scratch: Path) -> list[str]:
    """Six ways of writing the same directory."""
    link = scratch / "base-link"
    if not link.exists():
        os.symlink(base, link)
    head, tail = str(base.parent), base.name
    return [
        str(base),
        f"{base}/",
        f"{head}//{tail}",
        f"{head}/./{tail}",
        str(link),
        f"{head}/../{Path(head).name}/{tail}",
    ]


def random_adapters(base: str, count: int, scratch: Path) -> list[str]:
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    from models_svc.training.config import LORA_TARGETS

    paths = []
    for index in range(count):
        torch.manual_seed(100 + index)
        model = get_peft_model(
            AutoModelForImageTextToText.from_pretrained(base),
            LoraConfig(r=8, lora_alpha=16, lora_dropout=0.0, target_modules=LORA_TARGETS),
        )
        with torch.no_grad():
            for name, parameter in model.named_parameters():
                if "lora_B" in name:
                    parameter.normal_(0, 0.2)
        path = scratch / f"adapter-{index}"
        model.save_pretrained(str(path))
        paths.append(str(path))
    return paths


def growing_games(games: int, round_index: int, image_dir: Path):
    """Round ``round_index`` of each game: a history of 10 + ``round_index`` turns, so each
    round's prompt extends the round before's (the exchange it answered, then a new utterance)."""
    from models_common import ACTIONS, game_images, utterance

    from models_svc.interfaces import PastTurn, PolicyInput

    items = []
    for game in range(games):
        names, paths = game_images(game, image_dir)
        rng = random.Random(game)
        said = [utterance(rng) for _ in range(11 + round_index)]
        turns = tuple(
            PastTurn(("A",) if t % 2 else (), said[t], ACTIONS[t % 5])
            for t in range(10 + round_index)
        )
        items.append(
            PolicyInput(
                images=tuple(names),
                selection=("A",) if round_index % 2 else (),
                utterance=said[-1],
                history=turns,
                image_paths=tuple(str(p) for p in paths),
                seed=f"{game}:{round_index}",
            )
        )
    return items


def play_rounds(view_sets, games: int, rounds: range, image_dir: Path, before=None):
    """Latencies (s) of every turn and the wall time of ``rounds`` of ``games`` games, per set
    of served views in ``view_sets`` (each set plays the same games on its own server).

    One thread per game for all the rounds (as a live worker's thread pool keeps its threads):
    each round is played on every set in turn, each set's part starting when every game has
    its answer to the part before. Interleaving the sets round by round gives each the same
    share of a shared machine's slow and fast spells, so their ratio is fair. ``before(i)``,
    if given, runs before each round's part on set ``i``."""
    inputs = [growing_games(games, round_index, image_dir) for round_index in rounds]
    latencies = [[0.0] * (games * len(inputs)) for _ in view_sets]
    walls = [0.0] * len(view_sets)
    barrier = threading.Barrier(games + 1)  # the games and the timing thread

    def play(game: int) -> None:
        for index, items in enumerate(inputs):
            for part, views in enumerate(view_sets):
                barrier.wait()
                began = time.perf_counter()
                views[game % len(views)].act([items[game]])
                latencies[part][index * games + game] = time.perf_counter() - began
                barrier.wait()

    threads = [threading.Thread(target=play, args=(g,)) for g in range(games)]
    for thread in threads:
        thread.start()
    for _ in inputs:
        for part in range(len(view_sets)):
            if before is not None:
                before(part)
            barrier.wait()
            began = time.perf_counter()
            barrier.wait()
            walls[part] += time.perf_counter() - began
    for thread in threads:
        thread.join()
    return latencies, walls


def train_forever(base: str) -> None:
    """The training process: LoRA steps on the base until killed, at the lowest CPU priority
    (as the README starts a CPU host's batch worker: ``nice -n 19``)."""
    import torch

    os.nice(19)
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForImageTextToText

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = get_peft_model(
        AutoModelForImageTextToText.from_pretrained(base),
        LoraConfig(r=8, lora_alpha=16, target_modules=["q_proj", "v_proj"]),
    )
    model.train()
    optimiser = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    vocab = model.config.text_config.vocab_size
    steps = 0
    while True:
        ids = torch.randint(5, vocab, (4, 256))
        loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
        optimiser.step()
        optimiser.zero_grad()
        steps += 1
        if steps == 1:
            print("training", flush=True)


def start_training(base: str) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, __file__, "--train", base], stdout=subprocess.PIPE, text=True
    )
    line = process.stdout.readline() if process.stdout else ""
    if line.strip() != "training":
        process.kill()
        raise SystemExit("the training process did not start")
    return process


def tiny_run(args) -> None:
    import torch

    from models_svc.backends.policy_server import PolicyServer, ServingOptions
    from models_svc.tiny_models import tiny_idefics2

    torch.set_num_threads(1)
    scratch = Path(tempfile.mkdtemp())
    base = tiny_idefics2(scratch / "x" / "tiny")
    adapters = random_adapters(str(base), 6, scratch)
    image_dir = scratch / "images"
    measured = range(1, 1 + args.rounds)

    def views(max_batch: int, prefix_bytes: int):
        options = ServingOptions(
            device="cpu",
            max_batch=max_batch,
            max_wait=0.005 if max_batch > 1 else 0.0,
            prefix_cache_bytes=prefix_bytes,
        )
        server = PolicyServer(options)
        served = [
            server.policy(path, adapter, FORMAT, f"hf:{path}+lora:{adapter}")
            for path, adapter in zip(spellings(base, scratch), adapters, strict=True)
        ]
        play_rounds([served], args.games, range(1), image_dir)  # each game's first turn
        return server, served

    def compare(prefix_bytes: int):
        """Idle latencies (batched) and walls of the measured rounds, batched and one at a
        time, the two interleaved round by round."""
        batched, served = views(args.games, prefix_bytes)
        _, single = views(1, prefix_bytes)
        sizes = batched.batcher(str(base), FORMAT).batch_sizes
        first = len(sizes)
        latencies, walls = play_rounds([served, single], args.games, measured, image_dir)
        return batched, sizes[first:], latencies[0], walls[0], walls[1]

    def beside_training():
        """Latencies of the measured rounds on two more batched servers, the training process
        stopped during one's part of each round and running during the other's."""
        _, quiet = views(args.games, PREFIX_BYTES)
        _, busy = views(args.games, PREFIX_BYTES)
        trainer = start_training(str(base))

        def switch(part: int) -> None:
            trainer.send_signal(signal.SIGCONT if part == 1 else signal.SIGSTOP)

        try:
            latencies, _ = play_rounds([quiet, busy], args.games, measured, image_dir, switch)
        finally:
            trainer.kill()
            trainer.wait()
        return latencies[0], latencies[1]

    _, _, _, plain_batched, plain_single = compare(0)
    batched, sizes, _, batched_wall, single_wall = compare(PREFIX_BYTES)
    idle, busy = beside_training()
    turns = args.games * args.rounds
    cache = batched.cache.bases[next(iter(batched.cache.bases))].policies[FORMAT].prefix_cache
    reused = cache.reused_tokens / max(1, cache.reused_tokens + cache.computed_tokens)
    print(f"tiny random IDEFICS2 on cpu: {args.games} games, {args.rounds} rounds, 6 adapters")
    print(
        f"  batched: {turns / batched_wall:.1f} turns/s, mean batch {sum(sizes) / len(sizes):.1f}"
    )
    print(f"  one at a time: {turns / single_wall:.1f} turns/s")
    print(
        f"  prefix cache: {reused:.0%} of prompt tokens resumed, not run again; without it: "
        f"batched {turns / plain_batched:.1f} turns/s, one at a time "
        f"{turns / plain_single:.1f} turns/s, speed-up {plain_single / plain_batched:.1f}×"
    )
    print(f"  idle p95 {percentile(idle, 95):.3f} s, during training {percentile(busy, 95):.3f} s")
    print(f"base copies loaded: {batched.cache.loads['bases']}")
    print(f"batched speed-up: {single_wall / batched_wall:.1f}×")
    print(f"live p95 during training: {percentile(busy, 95) / percentile(idle, 95):.1f}× idle")


def full_size_run(args) -> None:
    import torch

    if not torch.cuda.is_available():
        raise SystemExit("--full-size needs a CUDA GPU: torch.cuda.is_available() is False here")
    from models_decode import full_size_loaded
    from peft import LoraConfig, get_peft_model

    from models_svc.backends.hf_policy import HFPolicy
    from models_svc.backends.model_cache import BaseEntry, parameter_bytes
    from models_svc.backends.prefix_cache import PrefixCache
    from models_svc.batching import MicroBatcher
    from models_svc.model_keys import ModelKey
    from models_svc.training.config import LORA_TARGETS

    loaded = full_size_loaded("cuda", args.layers, args.vision_layers)
    base_bytes = parameter_bytes(loaded.model.parameters())
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=LORA_TARGETS)
    names = [f"system_{i}" for i in range(6)]
    model = get_peft_model(loaded.model, config, adapter_name=names[0])
    for name in names[1:]:
        model.add_adapter(name, config)
    with torch.no_grad():
        for name, parameter in model.named_parameters():
            if "lora_B" in name:
                parameter.normal_(0, 0.01)
    model.to("cuda").eval()
    loaded.model = model
    entry = BaseEntry(ModelKey("random-idefics2-8b", "random"), loaded, base_bytes)
    policy = HFPolicy.from_loaded(loaded, "hf:random", "random", prompt_format=FORMAT, shared=entry)
    policy.prefix_cache = PrefixCache(16 * 2**30, model.config.image_token_id)
    batcher = MicroBatcher(
        lambda items, routes: policy.act(items, adapters=[str(r) for r in routes]),
        name="full-size",
        max_batch=args.games,
        max_wait=0.005,
    )

    class View:
        def __init__(self, name: str) -> None:
            self.route = name

        def act(self, items):
            return batcher.submit(items, self.route)

    image_dir = Path(tempfile.mkdtemp())
    views = [View(name) for name in names]
    play_rounds([views], args.games, range(1), image_dir)
    played = play_rounds([views], args.games, range(1, 1 + args.rounds), image_dir)
    latencies, wall = played[0][0], played[1][0]
    adapter_bytes = parameter_bytes(p for n, p in model.named_parameters() if "lora_" in n) / 6
    print(f"random-weight IDEFICS2-8B shape, bf16, 6 adapters, {args.games} games at once")
    print(f"  base {base_bytes / 2**30:.2f} GiB, one adapter {adapter_bytes / 2**20:.1f} MiB")
    print(f"  {args.games * args.rounds / wall:.1f} turns/s, p50 {percentile(latencies, 50):.3f} s")
    print(f"  p95 {percentile(latencies, 95):.3f} s, max {max(latencies):.3f} s")
    print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--games", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--smoke", action="store_true", help="2 rounds (seconds; CI)")
    parser.add_argument("--full-size", action="store_true", help="IDEFICS2-8B shape, bf16, GPU")
    parser.add_argument("--layers", type=int, help="shrink the full-size text model")
    parser.add_argument("--vision-layers", type=int, help="shrink the full-size vision model")
    parser.add_argument("--train", metavar="BASE", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.train:
        train_forever(args.train)
    elif args.full_size:
        full_size_run(args)
    else:
        if args.smoke:
            args.rounds = 2
        tiny_run(args)


if __name__ == "__main__":
    main()
