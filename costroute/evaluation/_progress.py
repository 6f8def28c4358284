"""The progress of a cross-validation: a tqdm bar over the fits and a ``verbose`` log."""

from __future__ import annotations

import sys
from typing import Any


class _Progress:
    """A tqdm bar over the router fits (stderr) and the ``verbose`` one-line-per-fold log (stdout).

    Use as a context manager: the bar is closed even when a fit fails.
    """

    def __init__(self, progress: bool, verbose: int, total: int, desc: str) -> None:
        from tqdm.auto import tqdm

        self.verbose = verbose
        self.bar = tqdm(total=total, desc=desc, unit="fit", disable=not progress, file=sys.stderr)

    def __enter__(self) -> _Progress:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.bar.close()

    def fitting(self, what: str) -> None:
        """Name the fit in progress next to the bar."""
        if not self.bar.disable:
            self.bar.set_postfix_str(what)  # shown while the fit runs

    def fitted(self) -> None:
        self.bar.update(1)

    def log(self, msg: str) -> None:
        """Print one line to stdout when ``verbose``, above the bar if one is shown."""
        if self.verbose:
            self.bar.write(msg, file=sys.stdout)
            sys.stdout.flush()
