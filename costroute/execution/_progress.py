"""The progress bar of a run: one tqdm bar over images, on stderr, whose last line is drawn once."""

from __future__ import annotations

import sys

__all__ = ["ProgressBar"]


class ProgressBar:
    """A tqdm bar counting images (``tqdm.auto``: a widget in notebooks), switchable off.

    tqdm redraws the bar when an update reaches the total and again when it is closed;
    on a terminal the second drawing overwrites the first, but in a log (or any stream
    that is not a terminal) the final line would appear twice. Here the step that
    reaches the total is drawn only by :meth:`close`.

    Parameters
    ----------
    total : int
        Number of images expected.
    enabled : bool
        ``False`` shows nothing.
    desc : str, default="generating"
        The bar's label.
    """

    def __init__(self, total: int, enabled: bool, desc: str = "generating"):
        from tqdm.auto import tqdm

        self.total = total
        self._bar = tqdm(total=total, disable=not enabled, unit="img", desc=desc, file=sys.stderr)

    @property
    def n(self) -> int:
        """Images counted so far."""
        return self._bar.n

    def advance(self, k: int = 1) -> None:
        """Count ``k`` more images."""
        if self._bar.n + k >= self.total:
            self._bar.n += k  # drawn once, by close()
        else:
            self._bar.update(k)

    def close(self) -> None:
        """Draw the final state once and end the line (idempotent)."""
        self._bar.close()

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
