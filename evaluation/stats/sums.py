"""Per-game sum columns, and statistics defined on their sums, for one group's bootstrap.

Every metric of a group is written as a function of sums over its games; ``SumColumns`` holds
those per-game columns and statistics, so one matrix product per chunk of resampled games (count
matrices) gives every metric's resampled sums (``evaluation.stats.study.bootstrap_columns``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .bootstrap import SumStatistic, ratio_statistic, resampled_sums


class SumColumns:
    """Per-game sum columns and the statistics defined on them, built up metric by metric.

    Most columns are linear: a resample's value is ``counts @ column``. A quadratic column holds
    Σ_c (Σ_games count · N[game, c])² for a per-game category block N (what Fleiss' κ and
    Krippendorff's α need); for a resample it is ``c G cᵀ`` with the Gram matrix G = N Nᵀ over the
    few games that have such items, so category blocks never enter the big product.
    """

    def __init__(self, n_games: int) -> None:
        self.n_games = n_games
        self.blocks: list[np.ndarray] = []
        self.width = 0
        self.ratios: list[tuple[str, int, int, float]] = []
        self.customs: list[tuple[list[str], np.ndarray, SumStatistic]] = []
        self.quadratic: list[tuple[int, np.ndarray]] = []

    def add(self, block: np.ndarray) -> slice:
        block = np.asarray(block, dtype=float)
        if block.ndim == 1:
            block = block[:, None]
        start = self.width
        self.blocks.append(block)
        self.width += block.shape[1]
        return slice(start, self.width)

    def add_square_totals(self, categories: np.ndarray) -> np.ndarray:
        """Columns [Σ_c T_c, Σ_c T_c²] of a (games × C) category block with totals T."""
        categories = np.asarray(categories, dtype=float)
        linear = self.add(categories.sum(axis=1)).start
        square = self.add(np.zeros(self.n_games)).start
        self.quadratic.append((square, categories))
        return np.array([linear, square])

    def ratio(self, name: str, numerator: np.ndarray, denominator: np.ndarray, scale=1.0) -> None:
        num = self.add(numerator).start
        den = self.add(denominator).start
        self.ratios.append((name, num, den, float(scale)))

    def custom(self, names: list[str], columns: np.ndarray, statistic: SumStatistic) -> None:
        """Statistics reading the sums of ``columns`` (indices from ``add`` and friends)."""
        self.customs.append((names, np.asarray(columns, dtype=np.intp), statistic))

    def names(self) -> list[str]:
        return [r[0] for r in self.ratios] + [n for names, _, _ in self.customs for n in names]

    def matrix(self) -> np.ndarray:
        if not self.blocks:
            return np.zeros((self.n_games, 0))
        return np.concatenate(self.blocks, axis=1)

    def statistic(self) -> SumStatistic:
        ratios = ratio_statistic(
            [r[1] for r in self.ratios], [r[2] for r in self.ratios], [r[3] for r in self.ratios]
        )
        customs = list(self.customs)

        def evaluate(sums: np.ndarray) -> np.ndarray:
            parts = [ratios(sums)]
            parts.extend(statistic(sums[..., where]) for _, where, statistic in customs)
            return np.concatenate(parts, axis=-1)

        return evaluate

    def sums(self, counts_chunks) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(total, jackknife, resampled) sums; ``counts_chunks`` yields (b × n) count matrices."""
        per_game = self.matrix()
        total = per_game.sum(axis=0)
        jackknife = total - per_game
        resampled = []
        # Quadratic columns: games with items, and Gram matrices, shared where blocks agree.
        quadratic: dict[bytes, tuple[list[int], np.ndarray, np.ndarray]] = {}
        for column, block in self.quadratic:
            games = np.flatnonzero(block.any(axis=1))
            key = games.tobytes() + block[games].tobytes()
            if key not in quadratic:
                quadratic[key] = ([], games, block[games] @ block[games].T)
            quadratic[key][0].append(column)
        by_games: dict[bytes, list[tuple[list[int], np.ndarray]]] = {}
        for columns, games, gram in quadratic.values():
            by_games.setdefault(games.tobytes(), []).append((columns, gram))
        for counts in counts_chunks:
            chunk = resampled_sums(counts, per_game)
            for key, grams in by_games.items():
                games = np.frombuffer(key, dtype=np.intp)
                c = counts[:, games].astype(np.float64)
                for columns, gram in grams:
                    chunk[:, columns] = np.einsum("bi,bi->b", c @ gram, c)[:, None]
            resampled.append(chunk)
        for column, block in self.quadratic:
            totals = block.sum(axis=0)
            total[column] = totals @ totals
            jackknife[:, column] = totals @ totals - 2 * (block @ totals) + (block**2).sum(axis=1)
        return total, jackknife, np.concatenate(resampled, axis=0)

    def metrics(self) -> dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]]:
        """Per statistic name: per-game data (n × c) and the statistic as a function of its sums.

        For computing one metric at a time (the benchmark's scipy baseline does): quadratic
        columns are recomputed from the category blocks inside the function.
        """
        per_game = self.matrix()
        blocks = dict(self.quadratic)
        found: dict[str, tuple[np.ndarray, Callable[[np.ndarray], np.ndarray]]] = {}
        for name, num, den, scale in self.ratios:
            found[name] = (per_game[:, [num, den]], lambda s, k=scale: s[..., 0] / s[..., 1] * k)
        for names, where, statistic in self.customs:
            square = [j for j, column in enumerate(where) if column in blocks]
            data = [per_game[:, where]] + [blocks[where[j]] for j in square]
            widths = [blocks[where[j]].shape[1] for j in square]
            size = len(where)

            def function(s, f=statistic, square=square, widths=widths, k=size):
                base = s[..., :k].copy()
                offset = k
                for j, width in zip(square, widths, strict=True):
                    totals = s[..., offset : offset + width]
                    base[..., j] = (totals**2).sum(axis=-1)
                    offset += width
                return f(base)

            for j, name in enumerate(names):
                found[name] = (
                    np.concatenate(data, axis=1),
                    lambda s, g=function, j=j: g(s)[..., j],
                )
        return found
