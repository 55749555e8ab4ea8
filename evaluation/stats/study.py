"""All metrics of a study, with bootstrap intervals, from plain arrays (no ORM).

``evaluation.selectors`` turns the database into a ``StudyInput`` (``evaluation.stats.inputs``);
this module computes everything from it. Per group (round × system) every metric is written as
sums over games (``evaluation.stats.columns``), the games are resampled once (one count matrix per
group, seeded from the run's seed and the group's name, so the result does not depend on which
other groups exist or in what order they come), and every interval comes from one matrix product.
``finish_group`` puts the estimates of the registry's metrics (``evaluation.stats.metrics``), of
the decoder and of agreement into the rows.

``MetricParameters.conventions`` chooses the metric definitions (``conventions.PLATFORM``, the
default, or ``conventions.PAPER``: the study's published figures); one code path computes both.
"""

from __future__ import annotations

import contextlib
import os
import zlib
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor, as_completed

import numpy as np

from .bootstrap import Estimate, counts_from_indices, interval_estimates, resample_indices
from .columns import GroupColumns, group_columns, json_number
from .decoder import CLASS_MEASURES
from .inputs import GroupInput, MetricParameters, StudyInput, system_sort_key
from .metrics import AGREEMENT_MEASURES, AGREEMENT_VARIABLES, ESTIMATED
from .sums import SumColumns

MAX_COUNT_CELLS = 4_000_000  # resample-count entries held at once (memory bound per chunk)

ProgressCallback = Callable[[float, str], None]


def group_rng(seed: int, round_index: int, system: str) -> np.random.Generator:
    """The generator of one group: depends only on the seed and the group's name."""
    key = zlib.crc32(f"{round_index}/{system}".encode())
    return np.random.default_rng([int(seed), key])


def bootstrap_columns(
    columns: SumColumns, rng: np.random.Generator, params: MetricParameters
) -> dict[str, Estimate]:
    """Bootstrap every statistic of ``columns`` with one set of resampled games."""
    n = columns.n_games
    chunk = max(1, min(params.resamples, MAX_COUNT_CELLS // max(n, 1)))

    def chunks():
        done = 0
        while done < params.resamples:
            size = min(chunk, params.resamples - done)
            indices = resample_indices(n, size, rng, scipy_compatible=params.sampler == "scipy")
            yield counts_from_indices(indices, n, np.float32)
            done += size

    total, jackknife, resampled = columns.sums(chunks())
    estimates = interval_estimates(
        columns.statistic(), total, jackknife, resampled, params.confidence
    )
    return dict(zip(columns.names(), estimates, strict=True))


def _estimate(estimate: Estimate | None, method: str) -> dict | None:
    if estimate is None:
        return None
    lo, hi = estimate.interval(method)
    return {"value": json_number(estimate.value), "ci": [json_number(lo), json_number(hi)]}


def compute_group(
    group: GroupInput, study: StudyInput, params: MetricParameters
) -> tuple[dict, dict | None]:
    """The metric row of one group, and its agreement row (None without multi-annotated turns)."""
    built = group_columns(group, study, params)
    estimates = bootstrap_columns(
        built.columns, group_rng(params.seed, group.round_index, group.system), params
    )
    return finish_group(built, estimates, params.interval_method)


def finish_group(
    built: GroupColumns, estimates: Mapping[str, Estimate], method: str
) -> tuple[dict, dict | None]:
    """Put the estimates into the group's metric row and agreement row."""
    row, agreement_row, decoder_blocks = built.row, built.agreement, built.decoder
    for name in ESTIMATED:
        if name in estimates:
            row[name] = _estimate(estimates[name], method)
    if decoder_blocks:
        row["decoder"] = {}
        for kind, block in decoder_blocks.items():
            prefix = f"decoder:{kind}:"
            block["accuracy"] = _estimate(estimates[prefix + "accuracy"], method)
            for measure in CLASS_MEASURES:
                block[measure] = {
                    c: _estimate(estimates[f"{prefix}{measure}:{c}"], method)
                    for c in block["classes"]
                }
            row["decoder"][kind] = block
    if agreement_row is not None:
        for variable in AGREEMENT_VARIABLES:
            part = agreement_row[variable]
            for measure in AGREEMENT_MEASURES:
                key = f"agreement:{variable}:{measure}"
                part[measure] = _estimate(estimates.get(key), method)
    return row, agreement_row


def _single_threaded_blas():
    """BLAS threads busy-wait; for these many small products one thread is faster."""
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # pragma: no cover - threadpoolctl is a dependency
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def available_cpus() -> int:
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def compute_study(
    study: StudyInput,
    params: MetricParameters | None = None,
    progress: ProgressCallback | None = None,
    workers: int | None = None,
) -> dict:
    """Every metric of every group: keys study, parameters, similarity, rows, agreement.

    Groups are computed on ``workers`` threads (default: the CPUs available, at most 4); each
    group has its own seeded generator, so the numbers do not depend on the number of threads.
    """
    params = (params or MetricParameters()).validated()
    groups = [
        g
        for g in sorted(study.groups, key=lambda g: (g.round_index, system_sort_key(g.system)))
        if g.n_games > 0
    ]
    workers = max(1, min(4, available_cpus())) if workers is None else max(1, workers)

    def report(done: int, group: GroupInput) -> None:
        if progress is not None:
            message = f"round {group.round_index} · {group.system}: {group.n_games} games"
            progress(done / len(groups), message)

    outcomes: list[tuple[dict, dict | None] | None] = [None] * len(groups)
    with _single_threaded_blas():
        if workers > 1 and len(groups) > 1:
            # Progress is reported from this thread only (callers may write to a database).
            with ThreadPoolExecutor(max_workers=workers) as pool:
                futures = {
                    pool.submit(compute_group, group, study, params): i
                    for i, group in enumerate(groups)
                }
                for done, future in enumerate(as_completed(futures), start=1):
                    index = futures[future]
                    outcomes[index] = future.result()
                    report(done, groups[index])
        else:
            for index, group in enumerate(groups):
                outcomes[index] = compute_group(group, study, params)
                report(index + 1, group)
    return {
        "study": study.name,
        "parameters": params.as_dict(),
        "similarity": study.similarity_label,
        "rows": [outcome[0] for outcome in outcomes if outcome is not None],
        "agreement": [
            outcome[1] for outcome in outcomes if outcome is not None and outcome[1] is not None
        ],
    }
