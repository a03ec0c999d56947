"""The command line shared by ``nvfp4 bench`` and ``benchmarks/gemm.py``, and what a run writes."""

from __future__ import annotations

import argparse
import shlex
import sys
from pathlib import Path

from ..layouts import LAYOUTS, LINEAR
from . import shapes as S

DESCRIPTION = ("Time every installed NVFP4 backend (at its best tactic) and backend='auto' against torch's BF16 "
               "matmul on pre-dequantized weights and the card's floor, on Llama-3 linear layers; write "
               "<card>-<date>.json/.md/.png to --out-dir.")


def add_arguments(parser: argparse.ArgumentParser, default_out_dir: str | Path = "nvfp4-bench") -> None:
    g = parser.add_argument_group("what to sweep")
    g.add_argument("--shapes", type=S.parse_shapes, default=None, metavar="NxK,...",
                   help="weight shapes N x K (default: the six Llama-3 70B/8B layers; with --tiny: 256x128)")
    g.add_argument("--m", type=S.parse_ms, default=None, metavar="M,...",
                   help="activation rows (default: 1,16,64,256,1024,4096,8192; with --tiny: 1,16)")
    g.add_argument("--modes", type=S.parse_modes, default=S.MODES, metavar="MODE,...",
                   help="weight-only (bf16 activations) and/or w4a4 (default: both)")
    g.add_argument("--backends", type=S.parse_names, default=None, metavar="NAME,...",
                   help="backends to time (default: every installed one; auto still chooses among all)")
    g.add_argument("--tiny", action="store_true", help="the CPU smoke sizes: seconds, reference backend included")
    g.add_argument("--device", default=None, help="cpu or cuda[:i] (default: cuda when available)")
    g.add_argument("--layout", choices=LAYOUTS, default=LINEAR,
                   help="scale layout of the operands (a backend that declines it is tried with the other)")
    g.add_argument("--bias", action="store_true",
                   help="add a bf16 bias [N] (the baseline then runs torch.addmm, what a BF16 layer with a bias "
                        "runs); default: no bias")
    o = parser.add_argument_group("output")
    o.add_argument("--out-dir", type=Path, default=Path(default_out_dir), help=f"default: {default_out_dir}")
    o.add_argument("--name", default=None, help="file stem (default: <card-slug>-<date>, '-tiny' added by --tiny)")
    o.add_argument("--no-plot", action="store_true", help="skip the PNG (it is skipped anyway without matplotlib)")
    o.add_argument("--no-progress", action="store_true", help="no progress bar or per-point lines")
    o.add_argument("--strict", action="store_true", help="exit 1 when any contender failed or was wrong")
    b = parser.add_argument_group("budget")
    b.add_argument("--warmup-ms", type=float, default=10.0, help="warm-up per timed contender and round (default 10)")
    b.add_argument("--rep-ms", type=float, default=40.0,
                   help="timed repetitions per contender, split over the alternating rounds (default 40 ms)")
    b.add_argument("--max-minutes", type=float, default=None,
                   help="start no new point after this long; the files say the run is incomplete")
    b.add_argument("--tune-budget", type=float, default=None, metavar="SECONDS",
                   help="bound the tuner's profiling (nvfp4.autotune budget_s)")
    b.add_argument("--tuning-cache", default=None, help="tuning cache JSON read first and written at the end")
    b.add_argument("--reference-max-macs", type=int, default=None,
                   help="time fallback-only backends (the reference) only up to this M*N*K "
                        "(default 2^24 on a GPU, 2^32 on the CPU)")
    b.add_argument("--check-rows", type=int, default=256, help="rows checked against float64 (default 256)")
    b.add_argument("--seed", type=int, default=0)


def config_from_args(args: argparse.Namespace):
    from .sweep import BenchConfig

    shapes = args.shapes or (S.TINY_SHAPES if args.tiny else S.LLAMA3_SHAPES)
    ms = args.m or (S.TINY_MS if args.tiny else S.LLAMA3_MS)
    config = BenchConfig(shapes=shapes, ms=ms, modes=args.modes, backends=args.backends, device=args.device,
                         layout=args.layout, bias=args.bias, warmup_ms=args.warmup_ms, rep_ms=args.rep_ms,
                         max_minutes=args.max_minutes, tune_budget_s=args.tune_budget,
                         tuning_cache=args.tuning_cache, reference_max_macs=args.reference_max_macs,
                         check_rows=args.check_rows, seed=args.seed, progress=not args.no_progress, tiny=args.tiny)
    config.command = canonical_command(config)
    return config


def canonical_command(config) -> str:
    """The command that reruns this configuration, every default spelled out."""
    parts = ["nvfp4", "bench", "--shapes", ",".join(f"{n}x{k}" for n, k in config.shapes),
             "--m", ",".join(map(str, config.ms)), "--modes", ",".join(config.modes), "--layout", config.layout,
             "--warmup-ms", f"{config.warmup_ms:g}", "--rep-ms", f"{config.rep_ms:g}",
             "--check-rows", str(config.check_rows), "--seed", str(config.seed)]
    if config.backends is not None:
        parts += ["--backends", ",".join(config.backends)]
    for flag, value in (("--device", config.device), ("--max-minutes", config.max_minutes),
                        ("--tune-budget", config.tune_budget_s), ("--tuning-cache", config.tuning_cache),
                        ("--reference-max-macs", config.reference_max_macs)):
        if value is not None:
            parts += [flag, str(value)]
    if config.bias:
        parts.append("--bias")
    if config.tiny:
        parts.append("--tiny")
    return " ".join(shlex.quote(p) for p in parts)


def run_from_args(args: argparse.Namespace) -> int:
    """Run the sweep, write JSON + markdown (after every shape, then final) and the plot; print the summary."""
    from . import report
    from .plot import write_plot
    from .sweep import FAILED, WRONG, run_sweep

    config = config_from_args(args)
    out_dir: Path = args.out_dir
    paths: dict[str, Path] = {}

    def stem_paths(results: dict) -> dict[str, Path]:
        if not paths:
            stem = args.name or report.default_stem(results) + ("-tiny" if config.tiny else "")
            out_dir.mkdir(parents=True, exist_ok=True)  # here, not earlier: bad options leave nothing behind
            paths.update({ext: out_dir / f"{stem}.{ext}" for ext in ("json", "md", "png")})
        return paths

    def write(results: dict, plot_name: str | None = None) -> None:
        p = stem_paths(results)
        results["summary"] = report.summarize(results)
        report.write_json(results, p["json"])
        p["md"].write_text(report.render_markdown(results, plot_name))

    config.on_shape_done = write
    results = run_sweep(config)
    p = stem_paths(results)
    plot_note = None
    if args.no_plot:
        plot_note = "plot: skipped (--no-plot)"
    else:
        try:
            write_plot(results, p["png"])
        except ImportError:
            plot_note = "plot: skipped (matplotlib is not installed: pip install matplotlib)"
        except Exception as exc:  # the numbers matter more than the picture: keep them, say why
            plot_note = f"plot: failed ({type(exc).__name__}: {exc})"
    if plot_note:
        results["meta"]["notes"].append(plot_note)
    write(results, None if plot_note else p["png"].name)
    bad = [(pt["mode"], pt["n"], pt["k"], pt["m"], name, r["status"])
           for pt in results["points"] for name, r in pt["results"].items() if r["status"] in (FAILED, WRONG)]
    print(f"wrote {p['json']}, {p['md']}" + ("" if plot_note else f", {p['png']}"))
    if plot_note:
        print(plot_note)
    if not results["complete"]:
        print(f"INCOMPLETE: {results['incomplete_reason']}")
    print(f"{len(results['points'])} points in {results['elapsed_s']:.1f} s on {results['meta']['card']}; "
          f"{len(bad)} contender results failed or wrong" + (f" (first: {bad[0]})" if bad else ""))
    for line in report.summary_lines(results):
        print(line)
    return 1 if (args.strict and bad) else 0


def main(argv: list[str] | None = None, *, default_out_dir: str | Path = "nvfp4-bench",
         prog: str | None = None) -> int:
    parser = argparse.ArgumentParser(prog=prog, description=DESCRIPTION)
    add_arguments(parser, default_out_dir)
    args = parser.parse_args(argv)
    try:
        return run_from_args(args)
    except (ValueError, TypeError, RuntimeError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr)
        return 2
