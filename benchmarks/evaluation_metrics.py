"""Benchmark: every study metric with 10,000-resample bootstrap intervals on a paper-sized study.

    .venv/bin/python benchmarks/evaluation_metrics.py [--resamples N] [--scipy-resamples N]

Generates its own data (no database): 7 rounds × 7 systems, 7,230 games, 55,004 turns,
7,000 annotated turns (5% of them by three annotators), binary and ternary decoder labels on
every turn with a follow-up. Times ``evaluation.stats.study.compute_study`` end to end
(preparing every per-game sum from the raw turns, then all intervals), and the baseline:
the same preparation, then ``scipy.stats.bootstrap`` (BCa, paired by game) called metric by
metric, with the same number of resamples by default (about a minute). ``--scipy-resamples``
runs the baseline with fewer and extrapolates linearly (the output says so); that flatters the
engine, since scipy's fixed costs per call get multiplied too. Wall and CPU times are printed:
on a shared machine the wall time depends on what else runs.
"""

from __future__ import annotations

import argparse
import os
import time

import harness  # noqa: E402, F401  (puts the repository on sys.path)
import numpy as np

from evaluation.stats import columns, inputs  # noqa: E402
from evaluation.stats import study as engine  # noqa: E402
from evaluation.stats.bootstrap import DEFAULT_RESAMPLES  # noqa: E402

ROUNDS = 7
SYSTEMS = ("B-FFT", "T-FFT", "B-RL", "T-RL", "B-KTO", "T-KTO", "CONTROL")
GAMES = 7_230
TURNS = 55_004
ANNOTATED_TURNS = 7_000
TRIPLE_SHARE = 0.05
CONTEXT = 10
TANGRAMS = 912
WORDS = [f"w{i}" for i in range(2_500)] + ["the", "a", "select", "left", "one", "no", "yes"]
EXTRAS = ["try again", "deselect all", "start over", "the other one", "good", "reset"]
SATISFACTION = np.array(["yes", "yes_incomplete", "yes_wrong", "no"], dtype=object)


def split_total(total: int, parts: int, rng: np.random.Generator, low: int, high: int):
    """``parts`` integers in [low, high] summing to ``total``."""
    values = rng.integers(low, high + 1, parts)
    while values.sum() != total:
        i = rng.integers(parts)
        if values.sum() < total and values[i] < high:
            values[i] += 1
        elif values.sum() > total and values[i] > low:
            values[i] -= 1
    return values


def random_masks(rng: np.random.Generator, n: int, k: int, max_true: int) -> np.ndarray:
    masks = np.zeros((n, k), dtype=bool)
    sizes = rng.integers(1, max_true + 1, n)
    order = np.argsort(rng.random((n, k)), axis=1)
    masks[np.arange(k)[None, :] < sizes[:, None]] = True
    return np.take_along_axis(masks, np.argsort(order, axis=1), axis=1)


def make_study(seed: int = 7) -> inputs.StudyInput:
    rng = np.random.default_rng(seed)
    groups_spec = [(r, s) for r in range(ROUNDS) for s in SYSTEMS]
    games_per_group = split_total(GAMES, len(groups_spec), rng, 140, 155)
    turns_per_game = split_total(TURNS, GAMES, rng, 1, 10)
    bfft = [i for i, (_, s) in enumerate(groups_spec) if s == "B-FFT"]
    annotated_per_group = {i: ANNOTATED_TURNS // len(bfft) for i in bfft}
    raters = np.array([f"{h:064x}" for h in rng.integers(0, 2**62, 60)], dtype=object)
    vocabulary = np.array(WORDS, dtype=object)
    groups = []
    game_start = 0
    for g, (round_index, system) in enumerate(groups_spec):
        n = int(games_per_group[g])
        counts = turns_per_game[game_start : game_start + n]
        game_start += n
        m = int(counts.sum())
        turn_game = np.repeat(np.arange(n), counts)
        first = np.r_[0, np.cumsum(counts)[:-1]]
        last = np.cumsum(counts) - 1
        targets = random_masks(rng, n, CONTEXT, 5)
        context = np.argsort(rng.random((n, TANGRAMS)), axis=1)[:, :CONTEXT]
        flips = rng.random((m, CONTEXT)) < 0.12
        after = np.zeros((m, CONTEXT), dtype=bool)
        before = np.zeros((m, CONTEXT), dtype=bool)
        state = np.zeros(CONTEXT, dtype=bool)
        for t in range(m):
            if first[turn_game[t]] == t:
                state = np.zeros(CONTEXT, dtype=bool)
            before[t] = state
            state = state ^ flips[t]
            after[t] = state
        successful = rng.random(n) < 0.3 + 0.08 * round_index
        lengths = rng.integers(1, 16, m)
        words = rng.choice(vocabulary, lengths.sum())
        cuts = np.r_[0, np.cumsum(lengths)]
        utterances = [" ".join(words[cuts[i] : cuts[i + 1]]) for i in range(m)]
        for i in np.flatnonzero(rng.random(m) < 0.02):
            utterances[i] += " " + EXTRAS[rng.integers(len(EXTRAS))]
        annotations = None
        if g in annotated_per_group:
            chosen = rng.choice(m, annotated_per_group[g], replace=False)
            triple = chosen[: int(round(TRIPLE_SHARE * chosen.size))]
            ann_turn = np.concatenate([chosen, triple, triple])
            a = ann_turn.size
            copy = rng.random(a) < 0.5
            select = np.where(
                copy[:, None], after[ann_turn] & ~before[ann_turn], random_masks(rng, a, CONTEXT, 2)
            )
            deselect = np.where(copy[:, None], before[ann_turn] & ~after[ann_turn], False)
            satisfaction = rng.choice(SATISFACTION, a)
            satisfaction[np.isin(ann_turn, last)] = ""
            rater = np.empty(a, dtype=object)
            rater[: chosen.size] = rng.choice(raters, chosen.size)
            k = triple.size
            three = np.stack([rng.choice(raters, 3, replace=False) for _ in range(k)])
            rater[:k] = three[:, 0]
            rater[chosen.size : chosen.size + k] = three[:, 1]
            rater[chosen.size + k :] = three[:, 2]
            annotations = inputs.AnnotationInput(ann_turn, rater, select, deselect, satisfaction)
        labelled = np.setdiff1d(np.arange(m), last)
        binary = rng.choice(
            np.array(["positive", "negative", "unparseable"], dtype=object),
            labelled.size,
            p=[0.55, 0.44, 0.01],
        )
        ternary = rng.choice(
            np.array(["positive", "neutral", "negative", "unparseable"], dtype=object),
            labelled.size,
            p=[0.45, 0.2, 0.34, 0.01],
        )
        groups.append(
            inputs.GroupInput(
                round_index=round_index,
                system=system,
                successful=successful,
                targets=targets,
                context=context,
                turn_game=turn_game,
                before=before,
                after=after,
                utterances=utterances,
                annotations=annotations,
                labels={
                    "binary": inputs.LabelInput(labelled, binary, "bench"),
                    "ternary": inputs.LabelInput(labelled, ternary, "bench"),
                },
            )
        )
    embeddings = rng.normal(size=(TANGRAMS, 64))
    embeddings /= np.linalg.norm(embeddings, axis=1, keepdims=True)
    return inputs.StudyInput(
        name="benchmark",
        groups=groups,
        tangrams=[f"page-{i}" for i in range(TANGRAMS)],
        similarity=embeddings @ embeddings.T,
        similarity_label=inputs.EMBEDDING_SIMILARITY,
    )


def scipy_baseline(study: inputs.StudyInput, params: inputs.MetricParameters, resamples: int):
    """Same preparation, then one scipy.stats.bootstrap call per metric and group."""
    from scipy.stats import bootstrap

    calls = 0
    start = time.perf_counter()
    cpu = time.process_time()
    for group in study.groups:
        built = columns.group_columns(group, study, params)
        rng = engine.group_rng(params.seed, group.round_index, group.system)
        for per_game, function in built.columns.metrics().values():
            data = tuple(per_game.T)

            def statistic(*arrays, axis=-1, f=function):
                return f(np.stack([a.sum(axis=axis) for a in arrays], axis=-1))

            bootstrap(
                data,
                statistic,
                paired=True,
                vectorized=True,
                n_resamples=resamples,
                method="BCa",
                rng=rng,
            )
            calls += 1
    return time.perf_counter() - start, time.process_time() - cpu, calls


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resamples", type=int, default=DEFAULT_RESAMPLES)
    parser.add_argument("--scipy-resamples", type=int, default=DEFAULT_RESAMPLES)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    study = make_study()
    groups = len(study.groups)
    games = sum(g.n_games for g in study.groups)
    turns = sum(len(g.turn_game) for g in study.groups)
    annotated = sum(
        np.unique(g.annotations.turn).size for g in study.groups if g.annotations is not None
    )
    triple = sum(
        int((np.bincount(g.annotations.turn) == 3).sum())
        for g in study.groups
        if g.annotations is not None
    )
    print(
        f"study: {groups} groups, {games} games, {turns} turns, {annotated} annotated turns "
        f"({triple} by three annotators)"
    )
    print(f"cores available: {len(os.sched_getaffinity(0))}, load average {os.getloadavg()[0]:.1f}")
    params = inputs.MetricParameters(resamples=args.resamples, seed=0)

    timings, cpu_times = [], []
    for _ in range(args.repeat):
        start, cpu = time.perf_counter(), time.process_time()
        result = engine.compute_study(study, params)
        timings.append(time.perf_counter() - start)
        cpu_times.append(time.process_time() - cpu)
    ours, ours_cpu = min(timings), min(cpu_times)
    metrics = sum(
        len(columns.group_columns(g, study, params).columns.names()) for g in study.groups
    )
    print(
        f"engine: {metrics} metric intervals (BCa and percentile), {args.resamples} resamples: "
        f"best {ours:.3f} s wall of {args.repeat} "
        f"({', '.join(f'{t:.3f}' for t in timings)}), best {ours_cpu:.3f} s CPU"
    )

    elapsed, elapsed_cpu, calls = scipy_baseline(study, params, args.scipy_resamples)
    factor = args.resamples / args.scipy_resamples
    baseline, baseline_cpu = elapsed * factor, elapsed_cpu * factor
    note = (
        ""
        if factor == 1
        else f" (measured {elapsed:.2f} s wall, {elapsed_cpu:.2f} s CPU with "
        f"{args.scipy_resamples} resamples; extrapolated linearly ×{factor:g})"
    )
    print(
        f"scipy.stats.bootstrap (BCa) metric by metric: {calls} calls, {baseline:.2f} s wall, "
        f"{baseline_cpu:.2f} s CPU for {args.resamples} resamples{note}"
    )
    print(f"speed-up: {baseline / ours:.1f}× wall, {baseline_cpu / ours_cpu:.1f}× CPU")
    row = next(r for r in result["rows"] if r["system"] == "B-FFT" and r["round"] == 6)
    print(
        "example row (round 6, B-FFT): success rate "
        f"{row['success_rate']['value']:.3f} {row['success_rate']['ci']}, "
        f"exact match {row['exact_match']['value']:.3f} {row['exact_match']['ci']}"
    )


if __name__ == "__main__":
    main()
