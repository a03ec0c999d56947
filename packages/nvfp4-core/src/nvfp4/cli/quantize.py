"""``nvfp4 quantize IN_DIR OUT_DIR``: a dense safetensors checkpoint to a ModelOpt NVFP4 one."""

from __future__ import annotations

from ..checkpoint.convert import DEFAULT_EXCLUDE, quantize_checkpoint
from ..nn.linear import ACTIVATIONS


def add_parser(sub):
    p = sub.add_parser(
        "quantize", help="convert a bf16/fp16 safetensors checkpoint to ModelOpt NVFP4",
        description="Convert a dense (bf16/fp16/fp32) safetensors checkpoint, single-file or sharded, to a "
                    "ModelOpt NVFP4 checkpoint, one tensor at a time. Every 2-D '<module>.weight' whose K is a "
                    "multiple of 16 is quantized unless its module name matches an exclude pattern. Other files "
                    "(config, tokenizer) are copied.")
    p.add_argument("in_dir", metavar="IN_DIR", help="directory with model.safetensors or model.safetensors.index.json")
    p.add_argument("out_dir", metavar="OUT_DIR", help="directory to write the NVFP4 checkpoint into")
    p.add_argument("--exclude", nargs="+", default=[], metavar="PATTERN",
                   help="glob patterns over module names to keep dense, e.g. 'lm_head' '*.mlp.gate' "
                        f"(added to the defaults {' '.join(DEFAULT_EXCLUDE)})")
    p.add_argument("--no-default-exclude", action="store_true",
                   help="do not keep embeddings and lm_head dense by default")
    p.add_argument("--activation", choices=tuple(ACTIVATIONS), default="nvfp4",
                   help="nvfp4: W4A4 (default); bf16/fp16: record the layers as weight-only")
    p.add_argument("--device", default="cpu", help="device to quantize on (default cpu; cuda is faster)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar or progress lines")
    return p


def run(args) -> int:
    try:
        report = quantize_checkpoint(args.in_dir, args.out_dir, exclude=args.exclude,
                                     default_exclude=not args.no_default_exclude, activation=args.activation,
                                     device=args.device, progress=not args.no_progress)
    except (OSError, ImportError) as exc:  # missing files, no safetensors: a message, not a traceback
        raise RuntimeError(str(exc)) from exc
    print(report)
    if args.activation == "nvfp4" and report.quantized:
        print("note: no input_scale was written (no calibration data); layers run with dynamic activation scales. "
              "ModelOpt consumers that need static scales: calibrate with nvfp4.nn.calibrate and save_modelopt.")
    print(f"wrote {args.out_dir}")
    return 0
