"""Benchmark: training throughput, packed (one forward pass per game) against per-turn scoring.

    # CPU, tiny random IDEFICS2-architecture model (the packing target: ≥ 4× with equal losses):
    .venv/bin/python benchmarks/training.py --games 24 --turns 8

    # GPU, random weights in the full IDEFICS2-8B shape, bf16, LoRA, gradient checkpointing
    # (the target: ≥ 30 turn-examples per second on one H100/H200), packed only by default:
    python benchmarks/training.py --full-size --games 16 --turns 8 [--compare]

Each game has its own 10 tangram images and ``--turns`` turns whose prompts extend each other
as in a real game. One pass = forward and backward over every example (the optimiser step is
left out so that both modes see the same weights); the per-example losses of the two modes are
compared before timing. The last line reads ``packing speed-up: N.N×`` when both modes ran.
"""

from __future__ import annotations

import argparse
import os
import random
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import harness  # noqa: E402, F401  (puts the repository on sys.path)
from models_common import utterance  # noqa: E402

LETTERS = "ABCDEFGHIJ"


def game_examples(games: int, turns: int, image_dir: Path):
    """Examples of ``games`` games (each turn selects one new image, seeded)."""
    from models_svc.interfaces import PastTurn
    from models_svc.tiny_models import write_tangram_pngs
    from models_svc.training.examples import Example

    examples, paths = [], {}
    for game in range(games):
        names = [f"train{game}-{i}" for i in range(10)]
        for name, path in zip(names, write_tangram_pngs(image_dir, names, size=128), strict=True):
            paths[name] = str(path)
        rng = random.Random(game)
        history: list = []
        selection: list[str] = []
        for letter in rng.sample(LETTERS, min(turns, len(LETTERS))):
            spoken = utterance(rng)
            action = f"select {letter}"
            examples.append(
                Example(
                    key=f"{game}:{len(history)}",
                    group=f"game:{game}",
                    images=tuple(names),
                    history=tuple(history),
                    selection=tuple(sorted(selection)),
                    utterance=spoken,
                    action=action,
                    prompt_format="respect-2024",
                )
            )
            history.append(PastTurn(tuple(sorted(selection)), spoken, action))
            selection.append(letter)
    return examples, paths


def one_pass(scorer, examples, config, packing: bool) -> tuple[float, list[float]]:
    """Seconds for forward + backward over every example, and each example's loss."""
    import torch

    from models_svc.training.components import StepTerms, objective_for
    from models_svc.training.trainer import Item, item_losses

    objective = objective_for(config.__class__(**{**config.__dict__, "packing": packing}))
    groups: dict[str, list] = {}
    for example in examples:
        groups.setdefault(example.group, []).append(Item(example))
    losses: dict[str, float] = {}
    synchronize = torch.cuda.synchronize if torch.cuda.is_available() else (lambda: None)
    synchronize()
    start = time.perf_counter()
    for items in groups.values():
        values = item_losses(scorer, items, objective, StepTerms())
        torch.stack(values).sum().backward()
        for item, value in zip(items, values, strict=True):
            losses[item.example.key] = float(value)
    synchronize()
    return time.perf_counter() - start, [losses[e.key] for e in examples]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--full-size", action="store_true", help="random IDEFICS2-8B shape, bf16")
    parser.add_argument("--games", type=int, default=24)
    parser.add_argument("--turns", type=int, default=8)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--device", default="auto")
    parser.add_argument("--compare", action="store_true", help="also time per-turn on GPU")
    parser.add_argument("--layers", type=int, help="shrink the full-size text model (smoke tests)")
    parser.add_argument("--vision-layers", type=int, help="shrink the full-size vision model")
    args = parser.parse_args()

    import torch

    from models_svc.backends.hf_common import load_model, resolve_device
    from models_svc.training.config import training_config
    from models_svc.training.modelling import policies_for, with_lora
    from models_svc.training.packing import Scorer

    device = str(resolve_device(args.device))
    config = training_config("fft", {"lora_dropout": 0.0})
    if args.full_size:
        from models_decode import full_size_loaded

        loaded = full_size_loaded(device, args.layers, args.vision_layers)
        label = "random-weight IDEFICS2-8B shape, bf16"
    else:
        from models_svc.tiny_models import tiny_idefics2

        path = str(tiny_idefics2(Path(tempfile.mkdtemp()) / "tiny"))
        loaded = load_model(path, what="benchmark", device=device, need_images=True)
        label = "tiny random IDEFICS2-architecture model"
    loaded = with_lora(loaded, config, "", label)
    examples, paths = game_examples(args.games, args.turns, Path(tempfile.mkdtemp()))
    scorer = Scorer(policies_for(loaded, examples, config), paths)
    compare = args.compare or not device.startswith("cuda")
    one_pass(scorer, examples[: args.turns], config, True)  # warm-up: image processing, kernels
    packed_times, per_turn_times = [], []
    packed_losses = per_turn_losses = None
    for _ in range(args.repeats):
        seconds, packed_losses = one_pass(scorer, examples, config, True)
        packed_times.append(seconds)
        if compare:
            seconds, per_turn_losses = one_pass(scorer, examples, config, False)
            per_turn_times.append(seconds)
        loaded.model.zero_grad(set_to_none=True)
    trainable = sum(p.numel() for p in loaded.model.parameters() if p.requires_grad)
    print(
        f"{label} on {device}: {args.games} games × {len(examples) // args.games} turns "
        f"({len(examples)} turn-examples), LoRA r={config.lora_r} ({trainable / 1e6:.2f} M "
        "trainable parameters), forward + backward"
    )
    packed_rate = len(examples) / min(packed_times)
    print(f"  packed:   {packed_rate:8.1f} turn-examples/s (best of {args.repeats})")
    if device.startswith("cuda"):
        print(f"  peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")
    if compare and per_turn_losses is not None:
        per_turn_rate = len(examples) / min(per_turn_times)
        gap = max(abs(a - b) for a, b in zip(packed_losses, per_turn_losses, strict=True))
        print(f"  per turn: {per_turn_rate:8.1f} turn-examples/s (best of {args.repeats})")
        print(f"  largest per-example loss difference, packed vs per turn: {gap:.2e}")
        print(f"packing speed-up: {packed_rate / per_turn_rate:.1f}×")


if __name__ == "__main__":
    main()
