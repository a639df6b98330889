"""A worker's running statistics over every file it completed (the brief's printed line).

For the n-th file with time t_n: Total Time A_n = sum of t_i, and Sum of Squares
S_n = sum over i <= n of (t_i - t_n)^2 = Q_n - 2 t_n A_n + n t_n^2, with Q_n = sum of t_i^2,
so each update is O(1) whatever the history. Files 5, 6, 7, 8 then 9 give S = 30.
"""

from __future__ import annotations

from dataclasses import dataclass

#: A line is printed after every this many completed files.
PRINT_EVERY = 5


@dataclass(frozen=True)
class Stats:
    """Counts and sums over a worker's completed files."""

    files: int = 0
    total: float = 0.0
    squares: float = 0.0  # Q: sum of t^2
    last: float = 0.0

    def add(self, minutes: float) -> Stats:
        """The statistics with one more completed file of ``minutes``."""
        return Stats(
            self.files + 1, self.total + minutes, self.squares + minutes * minutes, minutes
        )

    @property
    def sum_of_squares(self) -> float:
        """S_n: squared distances of every file's time from the latest one's."""
        n, a, q, t = self.files, self.total, self.squares, self.last
        return max(0.0, q - 2 * t * a + n * t * t)

    def line(self) -> str:
        """``Files processed: 5, Total Time: 35, Sum of Squares: 30`` (at most 2 decimals)."""
        return (
            f"Files processed: {self.files}, Total Time: {_number(self.total)}, "
            f"Sum of Squares: {_number(self.sum_of_squares)}"
        )

    @property
    def due(self) -> bool:
        """True when the brief's line must be printed now."""
        return self.files > 0 and self.files % PRINT_EVERY == 0


def _number(value: float) -> str:
    text = f"{value:.2f}".rstrip("0").rstrip(".")
    return "0" if text in ("", "-0") else text
