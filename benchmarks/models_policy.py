"""Benchmark: listener-policy latency with many games asking at once.

    # CPU, tiny random IDEFICS2-architecture model:
    .venv/bin/python benchmarks/models_policy.py --tiny --games 20 --rounds 5

    # GPU, random weights in the full IDEFICS2-8B shape, bf16 (the issue's target: p95 < 1 s
    # for one action with a 10-turn history, 20 games asking at once, on one H100):
    python benchmarks/models_policy.py --full-size --games 20 --rounds 10

    # GPU, a real checkpoint (and adapter):
    python benchmarks/models_policy.py --model /models/policy [--adapter /models/lora]

Each of ``--games`` threads plays one game: per round it asks for one action with a 10-turn
history (the ``listener_act`` path after the database read: prompt, batched constrained
sampling, probability), all threads at once, through the same micro-batcher a GPU worker uses.
Each game has its own 10 tangram images; the first round encodes them (what turn 0 of a real
game costs) and is reported apart from the later rounds.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
from harness import percentile  # noqa: E402
from models_common import ACTIONS, game_images, utterance  # noqa: E402


def game_inputs(games: int, history: int, image_dir: Path, round_index: int):
    from models_svc.interfaces import PastTurn, PolicyInput

    items = []
    for game in range(games):
        names, paths = game_images(game, image_dir)
        rng = random.Random(game * 1000 + round_index)
        turns = tuple(
            PastTurn(("A",) if t % 2 else (), utterance(rng), ACTIONS[t % 5])
            for t in range(history)
        )
        items.append(
            PolicyInput(
                images=tuple(names),
                selection=("B", "E"),
                utterance=utterance(rng),
                history=turns,
                image_paths=tuple(str(p) for p in paths),
                seed=f"{game}:{round_index}",
            )
        )
    return items


def run_round(policy, items) -> list[float]:
    latencies = [0.0] * len(items)
    barrier = threading.Barrier(len(items))

    def ask(index: int) -> None:
        barrier.wait()
        start = time.perf_counter()
        policy.act([items[index]])
        latencies[index] = time.perf_counter() - start

    threads = [threading.Thread(target=ask, args=(i,)) for i in range(len(items))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return latencies


def main() -> None:
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tiny", action="store_true", help="tiny random model (default)")
    source.add_argument("--full-size", action="store_true", help="random IDEFICS2-8B-shaped model")
    source.add_argument("--model", help="a checkpoint directory")
    parser.add_argument("--adapter", help="a LoRA adapter directory (with --model)")
    parser.add_argument("--games", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", type=int, default=10)
    parser.add_argument("--max-batch", type=int, default=32)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--layers", type=int, help="shrink the full-size text model (smoke tests)")
    parser.add_argument("--vision-layers", type=int, help="shrink the full-size vision model")
    args = parser.parse_args()

    import torch

    from models_svc.backends.hf_common import resolve_device
    from models_svc.backends.hf_policy import HFPolicy
    from models_svc.batching import BatchedPolicy

    device = str(resolve_device(args.device))
    if args.full_size:
        from models_decode import full_size_loaded

        policy = HFPolicy.from_loaded(
            full_size_loaded(device, args.layers, args.vision_layers),
            "hf:random-idefics2-8b",
            "random",
        )
        label = "random-weight IDEFICS2-8B shape"
    else:
        path = args.model
        if path is None:
            from models_svc.tiny_models import tiny_idefics2

            path = str(tiny_idefics2(Path(tempfile.mkdtemp()) / "tiny"))
            label = "tiny random IDEFICS2-architecture model"
        else:
            label = path
        policy = HFPolicy(path, adapter=args.adapter, device=device)
    batched = BatchedPolicy(policy, max_batch=args.max_batch)
    image_dir = Path(tempfile.mkdtemp())
    tokens = len(policy._encode(game_inputs(1, args.history, image_dir, 0))["input_ids"][0])
    first = run_round(batched, game_inputs(args.games, args.history, image_dir, 0))
    later: list[float] = []
    for round_index in range(1, args.rounds):
        later += run_round(batched, game_inputs(args.games, args.history, image_dir, round_index))
    print(
        f"{label} on {device}: {args.games} games asking at once, {args.history}-turn history, "
        f"prompt {tokens} tokens"
    )
    print(
        f"  first turn (encodes the game's images): p50 {percentile(first, 50):.3f} s, "
        f"p95 {percentile(first, 95):.3f} s"
    )
    if later:
        print(
            f"  later turns ({len(later)} actions): p50 {percentile(later, 50):.3f} s, "
            f"p95 {percentile(later, 95):.3f} s, max {max(later):.3f} s"
        )
    if device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
