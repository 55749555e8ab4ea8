"""Benchmark: feedback decoding throughput of the transformers decoder (turns per second).

    # CPU, tiny random IDEFICS2-architecture model (what CI-sized machines can run):
    .venv/bin/python benchmarks/models_decode.py --tiny --turns 2400

    # GPU, random weights in the full IDEFICS2-8B shape (Mistral-7B text model), bf16:
    python benchmarks/models_decode.py --full-size --turns 2400 --batch-size 128

    # GPU, a real checkpoint directory:
    python benchmarks/models_decode.py --model /models/idefics2-8b --turns 2400

Scores the binary label words of the paper's prompt (one batched forward pass per batch of
turns on top of the cached shared instruction, see ``models_svc.backends.hf_decoder``) on
synthetic turns, after one warm-up batch. The full-size model gets a byte-level BPE tokenizer
trained here on English-like text (nothing can be downloaded), so token counts are close to,
not equal to, Mistral's; the output prints the mean prompt length in tokens.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import harness  # noqa: E402, F401  (puts the repository on sys.path)
from models_common import feedback_contexts  # noqa: E402


def full_size_loaded(device: str, layers: int | None = None, vision_layers: int | None = None):
    """A randomly initialised model of IDEFICS2-8B's shape, built directly on ``device``."""
    import torch
    from transformers import Idefics2ForConditionalGeneration

    from models_svc.backends.hf_common import LoadedModel
    from models_svc.tiny_models import benchmark_processor, full_size_idefics2_config

    processor = benchmark_processor()
    tokenizer = processor.tokenizer
    config = full_size_idefics2_config(
        vocab_size=32003, image_token_id=tokenizer.convert_tokens_to_ids("<image>")
    )
    if layers:
        config.text_config.num_hidden_layers = layers
    if vision_layers:
        config.vision_config.num_hidden_layers = vision_layers
    dtype = torch.bfloat16 if device.startswith("cuda") else torch.float32
    previous = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = Idefics2ForConditionalGeneration(config)
    finally:
        torch.set_default_dtype(previous)
    model.eval()
    params = sum(p.numel() for p in model.parameters())
    print(f"full-size random model: {params / 1e9:.2f} B parameters on {device} ({dtype})")
    return LoadedModel(model, tokenizer, processor, torch.device(device), True)


def main() -> None:
    parser = argparse.ArgumentParser()
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--tiny", action="store_true", help="tiny random model (default)")
    source.add_argument("--full-size", action="store_true", help="random IDEFICS2-8B-shaped model")
    source.add_argument("--model", help="a checkpoint directory")
    parser.add_argument("--turns", type=int, default=2400)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--kind", choices=["binary", "ternary"], default="binary")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--layers", type=int, help="shrink the full-size text model (smoke tests)")
    parser.add_argument("--vision-layers", type=int, help="shrink the full-size vision model")
    args = parser.parse_args()

    import torch

    from models_svc.backends.hf_common import resolve_device
    from models_svc.backends.hf_decoder import HFDecoder

    device = str(resolve_device(args.device))
    if args.full_size:
        decoder = HFDecoder.from_loaded(
            full_size_loaded(device, args.layers, args.vision_layers),
            "hf:random-idefics2-8b",
            "random",
            batch_size=args.batch_size,
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
        decoder = HFDecoder(path, device=device, batch_size=args.batch_size)
    contexts = feedback_contexts(args.turns)
    tokenizer = decoder.loaded.tokenizer
    lengths = [
        len(tokenizer(decoder.prompt_text(c, args.kind))["input_ids"]) for c in contexts[:200]
    ]
    prefix = len(decoder._shared_prefix(args.kind)[0])
    decoder.decode(contexts[: args.batch_size], args.kind)  # warm-up
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    start = time.perf_counter()
    results = decoder.decode(contexts, args.kind)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
    elapsed = time.perf_counter() - start
    assert len(results) == len(contexts)
    print(
        f"{label} on {device}: {args.turns} turns ({args.kind}) in {elapsed:.2f} s = "
        f"{args.turns / elapsed:,.1f} turns/s; batch {args.batch_size}; prompt "
        f"{sum(lengths) / len(lengths):.0f} tokens on average, {prefix} of them shared and cached"
    )
    if device.startswith("cuda"):
        print(f"peak GPU memory: {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB")


if __name__ == "__main__":
    main()
