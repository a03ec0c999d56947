"""What a run records (versions, card, command), the summary geomeans, and the JSON and markdown files."""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
import re
import sys
from pathlib import Path

import torch

from .. import __version__, registry
from ..cli.table import render
from . import shapes as S
from .check import BASELINE_RTOL

AUTO = "auto"
FLOOR = "floor"
#: The read ceiling: a plain read of the packed weight data, timed with each point's contenders.
READ = "read"
#: Rows of the summaries that are bounds, not contenders: a geomean without points counts.
CEILINGS = (FLOOR, READ)
_NUMBER = re.compile(r"[-+]?\d+(\.\d+)?([eE][-+]?\d+)?")


# -- metadata ---------------------------------------------------------------------------------------
def card_name(dev: torch.device) -> str:
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    return "cpu"


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "device"


def _triton_version() -> str | None:
    try:
        import triton
    except Exception:
        return None
    return getattr(triton, "__version__", "?")


def collect_meta(config, dev: torch.device, timer, ceilings, names: list[str], ref_max: int) -> dict:
    now = _dt.datetime.now(_dt.timezone.utc)
    card = card_name(dev)
    meta = {
        "card": card, "card_slug": slug(card), "device": str(dev),
        "date": now.strftime("%Y-%m-%d"), "datetime_utc": now.isoformat(timespec="seconds"),
        "torch": torch.__version__, "cuda": torch.version.cuda, "triton": _triton_version(),
        "nvfp4": __version__, "python": platform.python_version(), "platform": platform.platform(),
        "argv": list(sys.argv), "command": config.command or " ".join(sys.argv),
        "timing": timer.describe(), "timing_method": timer.method,
        "ceilings": ceilings.to_json(),
        "backends": [{"name": b.name, "available": b.available, "reason": b.reason, "distribution": b.distribution,
                      "version": b.version, "timed": b.name in names} for b in registry.backends()],
        "timed_backends": list(names),
        "plugin_errors": [f"{e.plugin}: {e.error}" for e in registry.plugin_errors()],
        "config": {"shapes": [f"{n}x{k}" for n, k in config.shapes], "ms": list(config.ms),
                   "modes": list(config.modes), "layout": config.layout, "warmup_ms": config.warmup_ms,
                   "rep_ms": config.rep_ms, "check_rows": config.check_rows, "seed": config.seed,
                   "tune_budget_s": config.tune_budget_s, "max_minutes": config.max_minutes,
                   "reference_max_macs": ref_max, "tiny": config.tiny, "bias": config.bias},
        "notes": [
            "baseline: torch.mm(x_bf16, w_bf16.t()) with w_bf16 the dequantized NVFP4 weight (what a BF16 model runs)",
            "backends and auto are timed through nvfp4.gemm(..., backend=name, out=preallocated) after the tuner "
            "picked each backend's best tactic (nvfp4.explain); auto chooses among all installed backends; the JSON "
            "keeps the tuner's fastest measurements behind each result (tuner_fastest): how close a choice was "
            "stays on record",
            "W4A4 times the GEMM on a pre-quantized activation; quantize_act_us is the activation's quantization",
            "floor = max(bytes moved / copy bandwidth, 2*M*N*K / bf16 matmul rate), both measured in this run; "
            "bytes count the NVFP4 weight (data + scales), the activation and the bf16 output once each",
            "read = a plain read of the packed weight data (K/2 bytes a row, not the scales; torch.any over it), "
            "timed with the point's contenders and flushed alike: every backend reads at least these bytes, so "
            "where the GEMM is memory-bound (decode M) BF16 us / read us is about what a backend can reach at that "
            "size (a hand-written read loop can be faster than torch's reduction, so a kernel may beat it a little); "
            "the summary gives it only for buckets whose points are all memory-bound",
            "every output was checked before timing: sampled rows within the float64 reference's error bound, "
            f"every row within {BASELINE_RTOL:g} relative L2 of the BF16 baseline, no unwritten (NaN-poisoned) "
            "element",
        ],
    }
    if dev.type == "cuda":
        props = torch.cuda.get_device_properties(dev)
        meta["capability"] = f"sm_{props.major}{props.minor}"
        meta["sm_count"] = props.multi_processor_count
        meta["memory_GiB"] = round(props.total_memory / 2 ** 30, 1)
        # Which physical card: two instances of one model measured the same kernel 28.8 and 36.8 us (H200,
        # 2026-12-01), so results compare within one instance.
        uuid = getattr(props, "uuid", None)
        if uuid is not None:
            meta["gpu_uuid"] = f"GPU-{uuid}"
    return meta


# -- summary ------------------------------------------------------------------------------------------
def contenders(results: dict) -> list[str]:
    """The timed backends in the sweep's order (fallback-only last), then auto."""
    meta = results["meta"]
    names = meta.get("timed_backends") or [b["name"] for b in meta["backends"] if b["timed"]]
    return list(names) + [AUTO]


def summarize(results: dict) -> dict:
    """{mode: {bucket: {contender: {"geomean": x or None, "ok": n, "points": n}}}} incl. the floor."""
    out: dict = {}
    for mode in results["meta"]["config"]["modes"]:
        per_mode = out[mode] = {}
        for label, lo, hi in S.M_BUCKETS:
            pts = [p for p in results["points"] if p["mode"] == mode and lo <= p["m"] <= hi]
            if not pts:
                continue
            row = per_mode[label] = {}
            for name in contenders(results):
                sp = [p["results"].get(name, {}).get("speedup") for p in pts]
                row[name] = _geo(sp, len(pts))
            row[FLOOR] = _geo([p.get("floor_speedup") for p in pts], len(pts))
            # The read is a ceiling only where the GEMM is memory-bound: a bucket with a compute-bound point
            # (M = 256 and up on Hopper) gets no read geomean (it read 27x at M >= 1024 on the H100, 2026-12-07).
            memory_bound = all(p.get("floor_bound") == "memory" for p in pts)
            row[READ] = _geo([p.get("read_speedup") if memory_bound else None for p in pts], len(pts))
    return out


def _geo(values, total: int) -> dict:
    ok = [v for v in values if v]
    g = math.exp(sum(math.log(v) for v in ok) / len(ok)) if ok else None
    return {"geomean": g, "ok": len(ok), "points": total}


def summary_lines(results: dict) -> list[str]:
    summary = results.get("summary") or summarize(results)
    lines = ["geomean speedup over torch BF16 (points measured / points):"]
    for mode, buckets in summary.items():
        labels = list(buckets)
        rows = []
        for name in _summary_rows(contenders(results), buckets, labels):
            rows.append((name, *_summary_cells(buckets, labels, name)))
        lines.append(render((mode, *labels), rows))
    return lines


# -- files ----------------------------------------------------------------------------------------------
def default_stem(results: dict) -> str:
    meta = results["meta"]
    return f"{meta['card_slug']}-{meta['date']}"


def write_json(results: dict, path: Path) -> None:
    path.write_text(json.dumps(results, indent=1, sort_keys=False) + "\n")


def _us(t) -> str:
    if t is None:
        return "-"
    return f"{t:.1f}" if t < 1000 else f"{t:.0f}"


def render_markdown(results: dict, plot_name: str | None = None) -> str:
    meta = results["meta"]
    names = contenders(results)
    ceil = meta["ceilings"]
    lines = [f"# NVFP4 GEMM benchmark: {meta['card']}, {meta['date']}", ""]
    backends = ", ".join(f"{b['name']} {b['version']} ("
                         + ("available" if b["available"] else f"unavailable: {b['reason']}") + ")"
                         for b in meta["backends"])
    lines += [
        f"- card: {meta['card']}" + (f" ({meta['capability']}, {meta['sm_count']} SMs, {meta['memory_GiB']} GiB"
                                     + (f"; {meta['gpu_uuid']}" if "gpu_uuid" in meta else "") + ")"
                                     if "capability" in meta else ""),
        f"- versions: torch {meta['torch']} (CUDA {meta['cuda']}), triton {meta['triton']}, nvfp4 {meta['nvfp4']}, "
        f"python {meta['python']}",
        f"- backends: {backends or 'none installed'}",
        f"- date: {meta['datetime_utc']}",
        f"- command: `{meta['command']}`",
        f"- timing: {meta['timing']}",
        f"- ceilings measured in this run: copy {ceil['copy_GB_per_s']:.0f} GB/s "
        f"({ceil['copy_size_bytes'] >> 20} MiB device-to-device, read + write), bf16 matmul "
        f"{ceil['bf16_matmul_TFLOP_per_s']:.1f} TFLOP/s ({ceil['matmul_size']}^3)",
        f"- scale layout: {meta['config']['layout']}; output bf16; "
        f"{'bias: bf16 [N] (baseline: torch.addmm)' if meta['config'].get('bias') else 'no bias'}",
    ]
    lines += [f"- {n}" for n in meta["notes"]]
    if meta["plugin_errors"]:
        lines += [f"- plugin failed to load: {e}" for e in meta["plugin_errors"]]
    if not results.get("complete", False):
        lines.append(f"- **incomplete run**: {results.get('incomplete_reason', 'stopped before the end')}")
    lines += ["", "## Summary: geomean speedup over torch BF16", ""]
    for mode, buckets in (results.get("summary") or summarize(results)).items():
        labels = list(buckets)
        lines += [f"**{mode}** (points measured / points)", "", "| contender | " + " | ".join(labels) + " |",
                  "|---|" + "---|" * len(labels)]
        for name in _summary_rows(names, buckets, labels):
            lines.append(f"| {name} | " + " | ".join(_summary_cells(buckets, labels, name)) + " |")
        lines.append("")
    if plot_name:
        lines += [f"![speedup over BF16]({plot_name})", ""]
    problems: dict[tuple, dict] = {}
    for mode in meta["config"]["modes"]:
        pts = [p for p in results["points"] if p["mode"] == mode]
        if not pts:
            continue
        w4a4 = mode == S.W4A4
        head = ["N x K", "M", "floor us (bound)", "read us", "bf16 us"] + (["act quant us"] if w4a4 else []) + names
        lines += [f"## {mode}: time in us (speedup over BF16)", "", "| " + " | ".join(head) + " |",
                  "|" + "---|" * len(head)]
        for p in pts:
            floor = _floor_cell(p)
            bf16 = _us(p["bf16_us"]) if p.get("bf16_error") is None else "failed"
            read = _us(p.get("read_us")) + (f" ({p['read_speedup']:.2f}x)" if p.get("read_speedup") else "")
            cells = [f"{p['n']} x {p['k']}", str(p["m"]), floor, read, bf16]
            if w4a4:
                cells.append(_us(p.get("quantize_act_us")))
            for name in names:
                r = p["results"].get(name, {"status": "missing", "detail": "not recorded"})
                cells.append(_cell(r, name, p, problems, meta["config"]["layout"]))
            lines.append("| " + " | ".join(cells) + " |")
        lines.append("")
    if problems:
        lines += ["## Not measured, and why", ""]
        for i, ((name, status, _), entry) in enumerate(problems.items(), 1):
            pts = entry["points"]
            eg = "" if entry["same"] else " (the first; the others differ only in numbers)"
            lines.append(f"{i}. **{name}** {status} at {_where(pts)}: {entry['detail']}{eg}")
        lines.append("")
    lines += _auto_section(results)
    lines += ["## Summary lines", "", "```", *summary_lines(results), "```", ""]
    return "\n".join(lines)


#: How much slower auto may time than the backend it chose, timed alone in the same run, before the report
#: lists the point: both ran the same tactic, so a larger gap is timing noise, not a wrong choice.
AUTO_TOLERANCE = 0.05


def auto_outliers(results: dict, tolerance: float = AUTO_TOLERANCE) -> tuple[int, list[tuple[dict, dict, dict]]]:
    """(points where auto and its chosen backend were both timed, [(point, auto, chosen) slower by > tolerance])."""
    compared, slow = 0, []
    for p in results["points"]:
        auto = p["results"].get(AUTO, {})
        chosen = p["results"].get(auto.get("chosen") or "", {})
        if auto.get("status") != "ok" or chosen.get("status") != "ok":
            continue
        compared += 1
        if auto["time_us"] > chosen["time_us"] * (1 + tolerance):
            slow.append((p, auto, chosen))
    return compared, slow


def _auto_section(results: dict) -> list[str]:
    compared, slow = auto_outliers(results)
    if not compared:
        return []
    text = (f"Auto timed within {AUTO_TOLERANCE:.0%} of the backend it chose, as that backend timed alone in this "
            f"run, at {compared - len(slow)} of {compared} points" + (". Slower at:" if slow else "."))
    lines = ["## Auto against the backend it chose", "", text]
    if slow:
        lines += ["", "| mode | N x K | M | chosen | auto us | chosen alone us | same tactic |",
                  "|---|---|---|---|---|---|---|"]
        lines += [f"| {p['mode']} | {p['n']} x {p['k']} | {p['m']} | {a['chosen']} | {_us(a['time_us'])} | "
                  f"{_us(c['time_us'])} | {'yes' if a.get('tactic') == c.get('tactic') else 'no'} |"
                  for p, a, c in slow]
    return lines + [""]


def _summary_rows(names: list[str], buckets: dict, labels: list[str]) -> list[str]:
    """The contenders, then the bounds the summary holds (files from before the read ceiling have no read row)."""
    return names + [c for c in CEILINGS if c in buckets[labels[0]]]


def _summary_cells(buckets: dict, labels: list[str], name: str) -> list[str]:
    """A summary row's cells: the geomean, and for contenders how many points it covers."""
    cells = []
    for label in labels:
        s = buckets[label][name]
        g = "-" if s["geomean"] is None else f"{s['geomean']:.2f}x"
        cells.append(g if name in CEILINGS else f"{g} ({s['ok']}/{s['points']})")
    return cells


def _floor_cell(p: dict) -> str:
    if p.get("floor_us") is None:
        return "-"
    sp = f", {p['floor_speedup']:.2f}x" if p.get("floor_speedup") else ""
    return f"{_us(p['floor_us'])} ({p['floor_bound']}{sp})"


def _cell(r: dict, name: str, p: dict, problems: dict, layout: str) -> str:
    if r.get("status") == "ok":
        sp = f", {r['speedup']:.2f}x" if r.get("speedup") else ""
        chosen = f" [{r['chosen']}]" if name == AUTO and r.get("chosen") else ""
        # A backend that declined the run's scale layout was timed in the other one: say so.
        other = f" ({r['layout']} scales)" if r.get("layout") not in (None, layout) else ""
        return f"{_us(r['time_us'])}{sp}{chosen}{other}"
    detail = r.get("detail", "")
    # Points that failed the same way differ only in numbers (shapes, errors): one note serves them all.
    key = (name, r.get("status", "?"), _NUMBER.sub("#", detail))
    entry = problems.setdefault(key, {"detail": detail, "points": [], "same": True})
    entry["points"].append(f"{p['mode']} {p['n']}x{p['k']} M={p['m']}")
    entry["same"] &= detail == entry["detail"]
    return f"{r.get('status', '?')} ({list(problems).index(key) + 1})"


def _where(points: list[str]) -> str:
    return ", ".join(points) if len(points) <= 4 else f"{len(points)} points ({points[0]} ... {points[-1]})"
