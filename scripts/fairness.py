"""Fairness in language generation: bias gap and perplexity cost of equitune / equizero / λ-equitune on
SmolLM2-135M-Instruct (the experiment is :mod:`equirl.adapters.fairness`; docs/fairness.md).

Usage::

    python scripts/fairness.py                       # all axes, all methods, log-prob averaging
    python scripts/fairness.py --spaces logprob prob --sample-axes gender
    python scripts/fairness.py --quick               # a smoke run (fewer templates, words, steps)

Writes ``OUT/table.md``, ``results.json`` and ``samples.txt`` (default ``results/fairness``), each to a temporary
name renamed into place; an ``OUT`` that already holds results is refused unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

import torch  # noqa: E402
from equirl.agents.io import write_atomic  # noqa: E402

from equirl import rawresults  # noqa: E402
from equirl.adapters.fairness import GROUPS, METHODS, SPACES, raw_rows, render_table, run_fairness  # noqa: E402

OUTPUTS = ("results.json", "samples.txt", "table.md")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--axes", nargs="+", default=list(GROUPS), choices=list(GROUPS))
    ap.add_argument("--methods", nargs="+", default=list(METHODS), choices=list(METHODS))
    ap.add_argument("--spaces", nargs="+", default=["logprob"], choices=list(SPACES))
    ap.add_argument("--lambda-steps", type=int, default=60)
    ap.add_argument("--lambda-lr", type=float, default=3e-3)
    ap.add_argument("--sample-axes", nargs="*", default=[], help="axes for the sampled generated-share measure")
    ap.add_argument("--samples", type=int, default=20, help="samples per template and group")
    ap.add_argument("--new-tokens", type=int, default=10)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--quick", action="store_true", help="smoke run: 2 templates, 8 words, 3 λ steps")
    ap.add_argument("--out", type=Path, default=Path("results/fairness"))
    rawresults.add_raw_arguments(ap, what="replace the results already in --out (and --raw)")
    args = ap.parse_args()
    existing = [name for name in OUTPUTS if (args.out / name).exists()]
    if existing and not args.overwrite:
        ap.error(f"{args.out} already holds {existing}; choose another --out or pass --overwrite.")
    started = rawresults.start_raw(ap, args)

    torch.set_num_threads(args.threads)
    t0 = time.time()
    rows, samples = run_fairness(
        args.axes, args.methods, args.spaces, args.lambda_steps, args.lambda_lr, args.sample_axes,
        args.samples, args.new_tokens, args.seed, args.quick,
    )  # fmt: skip
    table = render_table(rows, any(ax in args.sample_axes for ax in args.axes))
    args.out.mkdir(parents=True, exist_ok=True)
    write_atomic(args.out / "results.json", json.dumps(rows, indent=2))
    write_atomic(args.out / "samples.txt", "\n".join(samples) + "\n")
    write_atomic(args.out / "table.md", table)
    print(table)
    if args.raw is not None:
        settings = {
            k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items() if k not in ("raw", "overwrite")
        }
        rawresults.write_raw(
            args.raw, raw_rows(rows), settings, seconds=time.time() - t0, started=started, overwrite=args.overwrite
        )
        print(f"wrote the raw results to {args.raw}")
    print(f"total {time.time() - t0:.0f}s; wrote {args.out}/table.md, results.json, samples.txt")


if __name__ == "__main__":
    main()
