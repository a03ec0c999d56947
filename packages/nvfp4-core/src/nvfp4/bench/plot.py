"""The PNG: speedup over torch BF16 against M, one panel per shape and mode (matplotlib, optional)."""

from __future__ import annotations

from pathlib import Path

from .report import AUTO, contenders


def write_plot(results: dict, path: Path) -> None:
    """One line per backend and auto, the floor dashed, the read ceiling dash-dotted, BF16 at 1; raises ImportError
    without matplotlib."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on the GPU box or in CI
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FuncFormatter, NullLocator

    modes = list(results["meta"]["config"]["modes"])
    shapes = list(dict.fromkeys((p["n"], p["k"]) for p in results["points"]))
    if not shapes:
        raise ValueError("no points to plot")
    names = contenders(results)
    fig, axes = plt.subplots(len(shapes), len(modes), figsize=(5.2 * len(modes), 3.4 * len(shapes)),
                             squeeze=False)
    handles = {}
    for i, (n, k) in enumerate(shapes):
        for j, mode in enumerate(modes):
            ax = axes[i][j]
            pts = sorted((p for p in results["points"] if (p["n"], p["k"]) == (n, k) and p["mode"] == mode),
                         key=lambda p: p["m"])
            for name in names:
                xy = [(p["m"], p["results"].get(name, {}).get("speedup")) for p in pts]
                xy = [(x, y) for x, y in xy if y]
                if xy:
                    style = dict(lw=2.2, color="black", marker="o") if name == AUTO else dict(lw=1.4, marker=".")
                    (h,) = ax.plot(*zip(*xy), label=name, **style)
                    handles.setdefault(name, h)
            for key, label, ls in (("floor_speedup", "floor", "--"), ("read_speedup", "read", "-.")):
                xy = [(p["m"], p.get(key)) for p in pts if p.get(key)]
                if xy:
                    (h,) = ax.plot(*zip(*xy), ls=ls, color="gray", lw=1.4, label=label)
                    handles.setdefault(label, h)
            h = ax.axhline(1.0, color="tab:red", lw=0.8, ls=":", label="torch bf16")
            handles.setdefault("torch bf16", h)
            ax.set_xscale("log", base=2)
            ax.set_yscale("log", base=2)
            ax.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}x"))
            ax.set_xticks([p["m"] for p in pts] or [1])
            ax.xaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
            ax.xaxis.set_minor_locator(NullLocator())
            ax.set_title(f"{n} x {k}, {mode}", fontsize=10)
            ax.grid(True, which="major", alpha=0.3)
            if i == len(shapes) - 1:
                ax.set_xlabel("M")
            if j == 0:
                ax.set_ylabel("speedup over BF16")
    meta = results["meta"]
    height = fig.get_figheight()
    top, bottom = 1 - 0.45 / height, 0.45 / height  # inches kept for the title and the legend
    fig.suptitle(f"NVFP4 GEMM vs torch BF16: {meta['card']}, {meta['date']}", fontsize=12, y=1 - 0.12 / height)
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(7, len(handles)),
               bbox_to_anchor=(0.5, 0.0), fontsize=9, frameon=False)
    fig.tight_layout(rect=(0, bottom, 1, top))
    fig.savefig(path, dpi=100)
    plt.close(fig)
