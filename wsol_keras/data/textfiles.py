"""Line-oriented metadata parsing with ``file:line`` error messages."""

from __future__ import annotations

import os
from typing import Iterator, List, Sequence, Tuple


def read_lines(path: str) -> Iterator[Tuple[int, str]]:
    """Yields (1-based line number, stripped line) for non-empty lines.

    Text is UTF-8; a leading byte-order mark (Windows editors write one) is
    dropped, so it neither breaks the first id nor hides an invisible U+FEFF in a
    path. A byte that is not UTF-8 (e.g. Latin-1) raises naming file and line.
    """
    if not os.path.isfile(path):
        raise FileNotFoundError(f"metadata file {path} does not exist")
    with open(path, "rb") as f:
        for ln, raw in enumerate(f, 1):
            try:
                line = raw.decode("utf-8-sig" if ln == 1 else "utf-8")
            except UnicodeDecodeError as e:
                raise ValueError(
                    f"{path}:{ln}: not valid UTF-8 (byte 0x{raw[e.start]:02x} at "
                    f"column {e.start + 1}); save the file as UTF-8"
                ) from None
            line = line.strip()
            if line:
                yield ln, line


def safe_join(root: str, rel: str, where: str, allow_outside: bool) -> str:
    """``root``/``rel``, refusing a path that leaves ``root`` unless allowed.

    A metadata line with an absolute path or ``..`` would silently read files
    outside the data folder (a copied metadata set pointing at another data
    set, or a hostile one); ``data.allow_outside_root=True`` permits it.
    """
    norm = os.path.normpath(rel)
    if not allow_outside and (
        os.path.isabs(rel) or norm == os.pardir or norm.startswith(os.pardir + os.sep)
    ):
        raise ValueError(
            f"{where}: path {rel!r} points outside data.root ({root}); "
            "set data.allow_outside_root=True to allow it"
        )
    return rel if os.path.isabs(rel) else os.path.join(root, rel)


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
