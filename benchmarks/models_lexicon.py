"""Benchmark: the lexicon feedback decoder on 55,000 turns (a paper-sized study), CPU.

    .venv/bin/python benchmarks/models_lexicon.py [--turns 55000] [--kind binary]

Times ``LexiconDecoder.decode`` on synthetic turns (utterances of ~8.5 words, 60% with a cue).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from models_common import feedback_contexts  # noqa: E402

from models_svc.lexicon import LexiconDecoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=55_000)
    parser.add_argument("--kind", choices=["binary", "ternary"], default="binary")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    contexts = feedback_contexts(args.turns)
    decoder = LexiconDecoder()
    times = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        results = decoder.decode(contexts, args.kind)
        times.append(time.perf_counter() - start)
    best = min(times)
    print(
        f"lexicon decoder, {args.kind}: {args.turns} turns in {best:.2f} s "
        f"(best of {args.repeats}), {args.turns / best:,.0f} turns/s"
    )
    print("labels:", dict(Counter(r.label for r in results)))


if __name__ == "__main__":
    main()
