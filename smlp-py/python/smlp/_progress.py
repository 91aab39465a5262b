"""Progress reporting: a callback, a tqdm bar when tqdm is installed, or nothing."""

from __future__ import annotations

from typing import Any, Callable, Optional, Union

#: What ``progress=`` accepts: ``True`` (a tqdm bar if tqdm is installed), ``False``/``None``
#: (nothing) or a callable ``f(done, total)``.
ProgressArg = Union[bool, None, Callable[[int, int], Any]]


class Progress:
    """Reports ``(done, total)`` to a callback or a tqdm bar; use as a context manager."""

    def __init__(self, progress: ProgressArg, description: str) -> None:
        self._callback: Optional[Callable[[int, int], Any]] = None
        self._bar: Any = None
        self._description = description
        if callable(progress):
            self._callback = progress
        elif progress:
            try:
                from tqdm.auto import tqdm  # type: ignore[import-not-found]
            except ImportError:
                tqdm = None
            if tqdm is not None:
                self._bar = tqdm(total=0, desc=description, unit="sample", leave=False)

    def __call__(self, done: int, total: int, description: Optional[str] = None) -> None:
        if self._callback is not None:
            self._callback(done, total)
        if self._bar is not None:
            if self._bar.total != total:
                self._bar.total = total
            if description is not None and description != self._description:
                self._description = description
                self._bar.set_description(description)
            self._bar.n = done
            self._bar.refresh()

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
