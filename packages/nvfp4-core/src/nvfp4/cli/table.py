"""Plain-text tables (rich renders them when it is installed)."""

from __future__ import annotations

from collections.abc import Sequence


def render(headers: Sequence[str], rows: Sequence[Sequence[object]], title: str | None = None) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = [title] if title else []
    lines.append("  ".join(c.ljust(w) for c, w in zip(cells[0], widths)).rstrip())
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in cells[1:]]
    return "\n".join(lines)


def show(headers, rows, title=None) -> None:
    """Print a table: rich on a terminal, plain aligned text in logs and pipes (never truncated)."""
    import sys

    if not sys.stdout.isatty():
        print(render(headers, rows, title))
        return
    try:
        from rich.console import Console
        from rich.table import Table
    except ImportError:
        print(render(headers, rows, title))
        return
    t = Table(title=title)
    for h in headers:
        t.add_column(str(h))
    for r in rows:
        t.add_row(*[str(c) for c in r])
    Console().print(t)
