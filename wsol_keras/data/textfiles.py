"""Line-oriented metadata parsing with ``file:line`` error messages."""

from __future__ import annotations

import os
from typing import Iterator, List, Sequence, Tuple


def read_lines(path: str) -> Iterator[Tuple[int, str]]:
    """Yields (1-based line number, stripped line) for non-empty lines."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f"metadata file {path} does not exist")
    with open(path, encoding="utf-8") as f:
        for ln, line in enumerate(f, 1):
            line = line.strip()
            if line:
                yield ln, line


def split_fields(line: str, sep: str) -> List[str]:
    """Splits on ``sep`` (',' or None for whitespace), stripping each field."""
    if sep is None:
        return line.split()
    return [p.strip() for p in line.split(sep)]


def parse_number(text: str, path: str, ln: int, what: str, kind=float):
    try:
        v = kind(text)
    except ValueError:
        raise ValueError(
            f"{path}:{ln}: {what} must be a{'n integer' if kind is int else ' number'}, "
            f"got {text!r}"
        ) from None
    if kind is float and (v != v or v in (float("inf"), float("-inf"))):
        raise ValueError(f"{path}:{ln}: {what} must be finite, got {text!r}")
    return v


def expect_fields(
    fields: Sequence[str], counts: Sequence[int], path: str, ln: int, fmt: str
) -> None:
    if len(fields) not in counts:
        raise ValueError(
            f"{path}:{ln}: expected {fmt}, got {len(fields)} field(s): "
            f"{','.join(fields)!r}"
        )


def check_box(box, path: str, ln: int) -> None:
    x0, y0, x1, y1 = box
    if x1 < x0 or y1 < y0 or min(box) < 0:
        raise ValueError(
            f"{path}:{ln}: invalid box x0,y0,x1,y1={box} "
            f"(need 0 <= x0 <= x1 and 0 <= y0 <= y1)"
        )
