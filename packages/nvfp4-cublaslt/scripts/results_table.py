"""Render a bench.py JSON as the Markdown tables of README.md (numbers copied, never typed)."""

import json
import sys


def main(path: str) -> None:
    r = json.load(open(path))
    print(f"{r['device']}, {r['date']}, torch {r['torch']}, cuBLASLt {r['cublaslt_version']}; "
          f"device-to-device copy {r['copy_TBps']:.2f} TB/s.\n")
    print("| dequantize | layout | out | us | TB/s | of copy |\n|---|---|---|---|---|---|")
    for d in r["dequant"]:
        print(f"| {d['rows']}x{d['k']} | {d['layout']} | {d['dtype'][6:]} | {d['us']:.1f} | {d['TBps']:.2f} | "
              f"{100 * d['of_copy']:.0f}% |")
    print("\nGEMM, median us (ratio to torch BF16 matmul on pre-dequantized weights); best tactic of those offered:\n")
    print("| N x K | M | torch bf16 | weight-only bf16 | W4A4 |\n|---|---|---|---|---|")
    for g in r["gemm"]:
        t = g["torch_bf16_us"]
        b, q = g["bf16"]["best_us"], g["nvfp4"]["best_us"]
        print(f"| {g['n']}x{g['k']} | {g['m']} | {t:.1f} | {b:.1f} ({b / t:.2f}) | {q:.1f} ({q / t:.2f}) |")
    if r.get("pointer_modes"):
        print("\nalpha pointer mode, best tactic, weight-only bf16 (us):\n")
        print("| N x K | M | device scalars | per-row vector, beta 0 |\n|---|---|---|---|")
        for p in r["pointer_modes"]:
            fmt = lambda v: "none offered" if v is None else f"{v:.1f}"  # noqa: E731
            print(f"| {p['n']}x{p['k']} | {p['m']} | {fmt(p['scalar'])} | {fmt(p['vector'])} |")


if __name__ == "__main__":
    main(sys.argv[1])
