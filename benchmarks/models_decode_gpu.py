"""The GPU decoding figure: 2,400 turns with a random-weight IDEFICS2-8B-shaped model, bf16.

    python benchmarks/models_decode_gpu.py            # needs a CUDA GPU (an H100 for the target)

Same as ``benchmarks/models_decode.py --full-size --turns 2400 --batch-size 128``; the issue's
target is at least 200 turns/s on one H100 (the original study: about 13 turns/s on an A6000).
"""

from __future__ import annotations

import sys

import models_decode  # noqa: E402

if __name__ == "__main__":
    sys.argv = [sys.argv[0], "--full-size", "--turns", "2400", "--batch-size", "128", *sys.argv[1:]]
    models_decode.main()
