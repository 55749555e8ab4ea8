"""Benchmark: the lexicon feedback decoder on 55,000 turns (a paper-sized study), CPU.

    .venv/bin/python benchmarks/models_lexicon.py [--turns 55000] [--kind binary]
    .venv/bin/python benchmarks/models_lexicon.py --db      # also through the database

Times ``LexiconDecoder.decode`` on synthetic turns (utterances of ~8.5 words, 60% with a cue).
With ``--db`` it also stores the turns as 7,230-odd games of a study and times
``decode_study`` end to end (read turns, decode, store FeedbackLabels), then the re-run that
finds everything labelled. The database is ``DATABASE_URL`` (its benchmark study is deleted
afterwards), or a temporary SQLite file when that is unset.
"""

from __future__ import annotations

import argparse
import time
from collections import Counter

import harness  # noqa: E402, F401  (puts the repository on sys.path)
from models_common import feedback_contexts  # noqa: E402

from models_svc.lexicon import LexiconDecoder  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--turns", type=int, default=55_000)
    parser.add_argument("--kind", choices=["binary", "ternary"], default="binary")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--db", action="store_true", help="also time decode_study on a database")
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
    if args.db:
        through_database(contexts, args.kind)


def through_database(contexts, kind: str) -> None:
    import os
    import tempfile

    temporary = not os.environ.get("DATABASE_URL")
    if temporary:
        os.environ["DATABASE_URL"] = f"sqlite:///{tempfile.mkdtemp()}/bench.sqlite3"
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "config.settings")
    import django

    django.setup()
    from django.core.management import call_command

    from games.models import Game, GameConfig, Round, Study, System, Tangram, Turn
    from models_svc.services import decode_study

    if temporary:
        call_command("migrate", verbosity=0)
    names = [f"bench-lexicon-{i}" for i in range(10)]
    for name in names:
        Tangram.objects.get_or_create(name=name)
    study = Study.objects.create(name=f"bench-lexicon-{os.getpid()}")
    try:
        round_ = Round.objects.create(study=study, index=0)
        system = System.objects.create(round=round_, name="B-FFT", policy_checkpoint="random")
        config = GameConfig.objects.create(
            study=study, speaker_order=names, listener_order=names[::-1], targets=names[:3]
        )
        games, turns, index = [], [], 0
        while index < len(contexts):
            game = Game(
                study=study,
                round=round_,
                system=system,
                config=config,
                external_id=f"g{len(games)}",
                status="ended",
                outcome="unsuccessful",
            )
            games.append((game, contexts[index : index + 8]))
            index += 8
        Game.objects.bulk_create([g for g, _ in games], batch_size=2000)
        for game, chunk in games:
            for t, context in enumerate(chunk):
                turns.append(
                    Turn(
                        game=game,
                        index=t,
                        utterance=context.utterance,
                        action=context.action,
                        selection_before=[],
                        selection_after=[],
                    )
                )
        Turn.objects.bulk_create(turns, batch_size=2000)
        start = time.perf_counter()
        summary = decode_study(study, decoder_spec="lexicon", kind=kind)
        first = time.perf_counter() - start
        start = time.perf_counter()
        again = decode_study(study, decoder_spec="lexicon", kind=kind)
        second = time.perf_counter() - start
        engine = django.db.connection.vendor
        print(
            f"through {engine}: {len(turns)} turns in {len(games)} games, {summary.labelled} "
            f"labelled and stored in {first:.2f} s; re-run ({again.skipped} already labelled, "
            f"{again.labelled} new) in {second:.2f} s"
        )
    finally:
        Game.objects.filter(study=study).delete()
        GameConfig.objects.filter(study=study).delete()
        study.delete()


if __name__ == "__main__":
    main()
