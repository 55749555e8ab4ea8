"""Benchmark: serving a round's systems from one base model on one GPU host.

    # CPU, tiny random IDEFICS2-architecture model, 6 adapters, 16 games asking at once:
    .venv/bin/python benchmarks/models_serving.py [--games 16 --rounds 5] [--smoke]

    # GPU, random weights in the full IDEFICS2-8B shape, bf16, 6 random adapters (the goal:
    # p95 < 1 s for 20 games asking at once on one H100):
    python benchmarks/models_serving.py --full-size --games 20 --rounds 10

Six LoRA adapters are served through the live worker's path (``models_svc.registry``'s policy
server: one base copy, adapters by name, one micro-batcher per base). Their specs write the base
path six ways (``/x/tiny``, ``/x/tiny/``, ``/x//tiny``, ``/x/./tiny``, a link, ``/x/../x/tiny``).
Each of ``--games`` threads plays one game (adapter = game mod 6) and asks for one action per
round with a 10-turn history, all at once. The same rounds run batched (turns of every adapter in
one forward pass) and one at a time (``max_batch=1``), and batched again while another process
trains a LoRA adapter on the same base (what the ``gpu-batch`` worker does during a round).
Both processes use one torch thread each and the training one runs at the lowest CPU priority,
as a CPU host's batch worker should (``nice -n 19``); the machine may still be shared by other
work, so the figures are noisy.

The last lines read ``base copies loaded: N``, ``batched speed-up: N.N×`` and ``live p95 during
training: N.N× idle``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import harness  # noqa: E402, F401  (puts the repository on sys.path)
from harness import percentile  # noqa: E402
from models_policy import game_inputs  # noqa: E402

FORMAT = "respect-2024"


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


def play_rounds(views, games: int, rounds: int, image_dir: Path, first_round: int):
    """Latencies (s) of every turn and the wall time of ``rounds`` rounds of ``games`` games."""
    latencies: list[float] = []
    start = time.perf_counter()
    for round_index in range(first_round, first_round + rounds):
        items = game_inputs(games, 10, image_dir, round_index)
        round_latencies = [0.0] * games
        barrier = threading.Barrier(games)

        def ask(game: int, items=items, out=round_latencies, barrier=barrier) -> None:
            barrier.wait()
            began = time.perf_counter()
            views[game % len(views)].act([items[game]])
            out[game] = time.perf_counter() - began

        threads = [threading.Thread(target=ask, args=(g,)) for g in range(games)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        latencies += round_latencies
    return latencies, time.perf_counter() - start


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

    def views(server):
        return [
            server.policy(path, adapter, FORMAT, f"hf:{path}+lora:{adapter}")
            for path, adapter in zip(spellings(base, scratch), adapters, strict=True)
        ]

    batched = PolicyServer(ServingOptions(device="cpu", max_batch=32, max_wait=0.005))
    served = views(batched)
    single = views(PolicyServer(ServingOptions(device="cpu", max_batch=1, max_wait=0.0)))
    play_rounds(served, args.games, 1, image_dir, 0)  # encodes each game's images
    play_rounds(single, args.games, 1, image_dir, 0)
    idle, batched_wall = play_rounds(served, args.games, args.rounds, image_dir, 1)
    _, single_wall = play_rounds(single, args.games, args.rounds, image_dir, 1)
    trainer = start_training(str(base))
    try:
        busy, _ = play_rounds(served, args.games, args.rounds, image_dir, 1)
    finally:
        trainer.kill()
        trainer.wait()
    turns = args.games * args.rounds
    sizes = batched.batcher(str(base), FORMAT).batch_sizes
    print(f"tiny random IDEFICS2 on cpu: {args.games} games, {args.rounds} rounds, 6 adapters")
    print(
        f"  batched: {turns / batched_wall:.1f} turns/s, mean batch {sum(sizes) / len(sizes):.1f}"
    )
    print(f"  one at a time: {turns / single_wall:.1f} turns/s")
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
    batcher = MicroBatcher(
        lambda items, routes: policy.act(items, adapters=[str(r) for r in routes]),
        name="full-size",
        max_batch=32,
        max_wait=0.005,
    )

    class View:
        def __init__(self, name: str) -> None:
            self.route = name

        def act(self, items):
            return batcher.submit(items, self.route)

    image_dir = Path(tempfile.mkdtemp())
    views = [View(name) for name in names]
    play_rounds(views, args.games, 1, image_dir, 0)
    latencies, wall = play_rounds(views, args.games, args.rounds, image_dir, 1)
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
