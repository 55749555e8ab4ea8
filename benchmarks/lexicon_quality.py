"""Quality of the lexicon decoder's binary positive labels against the outcome-based proxy truth.

    .venv/bin/python benchmarks/lexicon_quality.py                    # old and new, seeds 7 8 9
    .venv/bin/python benchmarks/lexicon_quality.py --games 2000 --seeds 100
    .venv/bin/python benchmarks/lexicon_quality.py --baseline-ref ''   # the new decoder only
    .venv/bin/python benchmarks/lexicon_quality.py --errors 20         # show some mistakes

A turn is good (the proxy truth) when its action changed something, every newly selected image
is a target and every newly deselected image a non-target. Precision is the share of turns
labelled positive that are good, recall the share of good turns labelled positive (binary).
Measured on seeded synthetic games (``tests.feedback_games``, written independently of the
decoder's cue lists; the rules were developed on seeds 1-5, so the default seeds are held out),
pooled over the seeds, and on the 24 sample games of ``tests/data/samples``. The old decoder is
``models_svc/lexicon.py`` as it was at git revision ``--baseline-ref`` (``4e0b62f`` is
``lexicon-1``), loaded from git.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
import time
from pathlib import Path

from harness import ROOT  # noqa: E402  (puts the repository on sys.path)

from games.original_export import records_from_study_export  # noqa: E402
from models_svc.interfaces import LABEL_POSITIVE, FeedbackDecoder  # noqa: E402
from models_svc.lexicon import LexiconDecoder  # noqa: E402
from tests.feedback_games import Window, game_windows, generated_windows, quality  # noqa: E402

SAMPLES = ROOT / "tests" / "data" / "samples" / "respect_games_sample.json"
LEXICON_1 = "4e0b62f"


def baseline_decoder(ref: str) -> FeedbackDecoder | None:
    """The lexicon decoder of ``models_svc/lexicon.py`` at git revision ``ref`` (None, with a
    note, when git cannot show it)."""
    shown = subprocess.run(
        ["git", "show", f"{ref}:models_svc/lexicon.py"], cwd=ROOT, capture_output=True, text=True
    )
    if shown.returncode != 0:
        print(f"(no baseline: git show {ref} failed: {shown.stderr.strip()})")
        return None
    path = Path(tempfile.mkdtemp()) / "lexicon_baseline.py"
    path.write_text(shown.stdout)
    spec = importlib.util.spec_from_file_location("models_svc._lexicon_baseline", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.LexiconDecoder()


def sample_windows() -> list[Window]:
    return game_windows(records_from_study_export(json.loads(SAMPLES.read_text())))


def row(name: str, decoder: FeedbackDecoder, windows: list[Window]) -> str:
    start = time.perf_counter()
    q = quality(decoder, windows)
    seconds = time.perf_counter() - start
    return (
        f"{name:<34} {decoder.version:<10} {q.windows:>7} {q.good:>6} {q.labelled_positive:>6} "
        f"{q.precision:>9.3f} {q.recall:>7.3f} {seconds:>6.2f}"
    )


def show_errors(decoder: FeedbackDecoder, windows: list[Window], limit: int) -> None:
    """Print up to ``limit`` false positives and as many false negatives of ``decoder``."""
    results = decoder.decode([w.context for w in windows], "binary")
    for title, wanted in (("false positives", False), ("false negatives", True)):
        print(f"\n{title} of {decoder.version}:")
        mistakes = [
            w.context
            for w, r in zip(windows, results, strict=True)
            if w.good == wanted and (r.label == LABEL_POSITIVE) != wanted
        ]
        for c in mistakes[:limit]:
            print(f"  [{c.previous_action}] {c.utterance!r} [{c.action}] -> {c.follow_up!r}")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--games", type=int, default=600, help="generated games per seed")
    parser.add_argument("--seeds", type=int, nargs="+", default=[7, 8, 9])
    parser.add_argument("--baseline-ref", default=LEXICON_1, help="git revision; '' for none")
    parser.add_argument("--errors", type=int, default=0, help="show this many mistakes")
    args = parser.parse_args()
    decoders: list[FeedbackDecoder] = [LexiconDecoder()]
    old = baseline_decoder(args.baseline_ref) if args.baseline_ref else None
    if old is not None:
        decoders.insert(0, old)
    sets = [
        (f"generated, seed {s} ({args.games} games)", generated_windows(args.games, s))
        for s in args.seeds
    ]
    if len(sets) > 1:
        pooled = [w for _, windows in sets for w in windows]
        sets.append((f"generated, pooled ({args.games * len(sets)} games)", pooled))
    sets.append(("samples (24 games)", sample_windows()))
    print(
        f"{'set':<34} {'decoder':<10} {'windows':>7} {'good':>6} {'pos':>6} "
        f"{'precision':>9} {'recall':>7} {'secs':>6}"
    )
    for name, windows in sets:
        for decoder in decoders:
            print(row(name, decoder, windows))
    if args.errors:
        show_errors(decoders[-1], sets[0][1], args.errors)


if __name__ == "__main__":
    main()
