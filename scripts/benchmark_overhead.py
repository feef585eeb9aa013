"""What symmetrisation costs, against plain DQN and against the same arithmetic (library: equirl.agents.overhead).

    # measure (one torch thread), raw rows into a CSV; refuses to overwrite without --overwrite
    python scripts/benchmark_overhead.py run --label after --out docs/overhead/raw/after-1.csv
    # the tables and the plot from raw CSVs (no timing; process CPU time where the rows have it); with --compare,
    # compact before -> after tables first. The committed ones (docs/overhead/) are rebuilt by `make tables`.
    python scripts/benchmark_overhead.py report docs/overhead/raw/*.csv --compare before after \
        --md /tmp/tables.md --plot /tmp/step.png
    # issue 13's targets per label: each median with its 95% bootstrap interval and a verdict
    python scripts/benchmark_overhead.py report docs/overhead/raw/sample-major/*.csv --targets
    # the inference forward in eager / torch.compile / CUDA-graph modes (see benchmark_overhead_gpu.sh)
    python scripts/benchmark_overhead.py forward --device cuda --out $OUT/forward.csv

Why one thread: these networks are small, and on a machine whose cores are busy torch's default
thread pool spends more time waiting for cores than computing (on the project's 2-core machine,
shared with other jobs, one thread was 20 times faster than the default in the README's quick start).
"""

from __future__ import annotations

import argparse
import sys

import torch
from equirl.agents import overhead

from equirl.files import write_atomic


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="time every case and method; write the raw CSV")
    run.add_argument("--label", required=True, help="stored in every row, e.g. before / after / gpu")
    run.add_argument("--out", required=True, help="raw CSV to write")
    run.add_argument("--cases", nargs="*", choices=list(overhead.CASES), default=None)
    run.add_argument("--measures", nargs="*", choices=overhead.MEASURES, default=list(overhead.MEASURES))
    run.add_argument("--repeats", type=int, default=5, help="rounds of the step / predict measures")
    run.add_argument("--learn-repeats", type=int, default=3)
    run.add_argument("--learn-scale", type=float, default=1.0, help="multiplies each case's learn steps")
    run.add_argument("--n-envs", type=int, nargs="*", default=[1, 4], help="vectorised envs for learn")
    run.add_argument("--batch-sizes", type=int, nargs="*", default=None, help="default: the entry's batch size")
    run.add_argument("--block-seconds", type=float, default=0.1, help="length of one timed block")
    run.add_argument("--device", default="cpu")
    run.add_argument("--threads", type=int, default=1, help="torch threads (default 1, see above)")
    run.add_argument("--overwrite", action="store_true")
    run.add_argument("--pass-id", default="", help="prefix of the rep column (pool several passes in one report)")
    fwd = sub.add_parser("forward", help="inference forward in eager / compile / CUDA-graph modes")
    fwd.add_argument("--label", default="forward")
    fwd.add_argument("--out", required=True)
    fwd.add_argument("--cases", nargs="*", choices=list(overhead.CASES), default=None)
    fwd.add_argument("--batch-sizes", type=int, nargs="*", default=[64, 256])
    fwd.add_argument("--device", default="cuda")
    fwd.add_argument(
        "--modes", nargs="*", default=["eager", "compile", "cudagraph"], choices=["eager", "compile", "cudagraph"]
    )
    fwd.add_argument("--repeats", type=int, default=5)
    fwd.add_argument("--block-seconds", type=float, default=0.1)
    fwd.add_argument("--threads", type=int, default=1)
    fwd.add_argument("--overwrite", action="store_true")
    rep = sub.add_parser("report", help="tables and plot from raw CSVs")
    rep.add_argument("raw", nargs="+", help="raw CSVs written by run / forward")
    rep.add_argument("--md", default=None, help="write the tables here (default: print only)")
    rep.add_argument("--plot", default=None, help="write the gradient-step plot here")
    rep.add_argument(
        "--clock",
        choices=["cpu", "wall"],
        default="cpu",
        help="cpu (default): the process's CPU time where the raw rows have it; wall: wall clock",
    )
    rep.add_argument(
        "--compare",
        nargs=2,
        metavar=("LABEL1", "LABEL2"),
        default=None,
        help="also print compact LABEL1 -> LABEL2 tables (e.g. before after)",
    )
    rep.add_argument(
        "--targets",
        action="store_true",
        help="also print issue 13's targets for each label: medians, 95%% bootstrap intervals and verdicts",
    )
    args = parser.parse_args(argv)

    if args.cmd == "report":
        summaries = overhead.summarise(overhead.read_raw(args.raw), clock=args.clock)
        text = overhead.report_markdown(summaries, args.compare)
        if args.targets:
            for label in sorted({s.label for s in summaries}):
                text += f"\n### {label}: targets\n\n" + overhead.targets_table(summaries, label=label)
        print(text, end="")
        if args.md:
            write_atomic(args.md, text)
        if args.plot:
            overhead.plot_report(summaries, args.plot)
        return 0
    torch.set_num_threads(args.threads)
    if args.cmd == "forward":
        path = overhead.run_forward_modes(
            args.out, args.label, args.device, args.cases, args.batch_sizes, args.repeats, args.block_seconds,
            args.modes, overwrite=args.overwrite,
        )  # fmt: skip
    else:
        path = overhead.run_benchmark(
            args.out, args.label, cases=args.cases, measures=args.measures, repeats=args.repeats,
            learn_repeats=args.learn_repeats, target_s=args.block_seconds,
            batch_sizes=args.batch_sizes or [None], n_envs=args.n_envs, learn_scale=args.learn_scale,
            device=args.device, overwrite=args.overwrite, pass_id=args.pass_id,
        )  # fmt: skip
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
