"""SCAN compositional generalisation: equitune / equizero / λ-equitune from a pretrained seq2seq.

For each split (Add-Jump with the verb group jump<->run, Around-Right with the direction group
left<->right) and each seed:

1. pretrain a plain GRU seq2seq with attention on the split's train set ("the pretrained model");
2. zero-shot: wrap it with equitune and equizero as is; for λ-equitune fit only the λ-net on the
   train set with the backbone frozen (the paper's first stage);
3. finetune: the plain model and each wrapped model (λ-equitune from its fitted λ) for the same
   number of epochs on the train set;
4. exact-match accuracy (greedy decoding) on the full test split.

Prints a table (mean ± sample std, ddof 1, over seeds) and writes ``results/scan/<split>_seed<k>.json`` and
``results/scan/table.md``; ``--raw DIR`` also writes the raw results (:mod:`equirl.rawresults`: one row per split,
seed, method and stage) that ``equirl bench tables`` builds docs/scan.md's table from. Example::

    python scripts/scan.py --splits addjump aroundright --seeds 0 1 2 --raw docs/results/scan
    python scripts/scan.py --table-only            # aggregate the JSON files already written
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from tqdm import tqdm

from equirl import rawresults
from equirl.adapters.scan import TRAIN_ACCURACY, VIEW_RATE, load_split, results_table, split_notes
from equirl.adapters.seq2seq import (
    PAD,
    SYMMETRIES,
    EquivariantSeq2Seq,
    Seq2Seq,
    encode_pairs,
    input_vocab,
    output_vocab,
    scan_symmetry,
)

SPLITS = {
    "addjump": ("addprim_jump_train", "addprim_jump_test", "verb"),
    "aroundright": ("template_around_right_train", "template_around_right_test", "direction"),
}


def parse_args() -> tuple[argparse.ArgumentParser, argparse.Namespace]:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--splits", nargs="+", default=list(SPLITS), choices=list(SPLITS))
    p.add_argument("--symmetry", default=None, choices=sorted(SYMMETRIES), help="override the split's group")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--pretrain-epochs", type=int, default=10)
    p.add_argument("--lambda-epochs", type=int, default=1, help="epochs fitting λ with the backbone frozen")
    p.add_argument("--finetune-epochs", type=int, default=2)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--finetune-lr", type=float, default=5e-4)
    p.add_argument("--emb", type=int, default=64)
    p.add_argument("--hidden", type=int, default=128)
    p.add_argument("--dropout", type=float, default=0.1)
    p.add_argument("--eval-subset", type=int, default=0, help="evaluate on this many test commands (0: all)")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu")
    p.add_argument("--out", default="results/scan")
    p.add_argument("--table-only", action="store_true")
    rawresults.add_raw_arguments(p)
    return p, p.parse_args()


def train(
    net: EquivariantSeq2Seq,
    src: torch.Tensor,
    tgt: torch.Tensor,
    params: list[torch.nn.Parameter],
    epochs: int,
    lr: float,
    batch_size: int,
    seed: int,
    desc: str,
) -> None:
    """Teacher-forced NLL of the (symmetrised) next-token distribution; ``src [N, S]``, ``tgt [N, T]``."""
    if epochs <= 0 or not params:
        return
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    net.train()
    n = src.shape[0]
    for epoch in range(epochs):
        perm = torch.randperm(n, generator=gen)
        bar = tqdm(range(0, n, batch_size), desc=f"{desc} ep{epoch + 1}/{epochs}", leave=False, mininterval=2)
        for i in bar:
            idx = perm[i : i + batch_size]
            s, t = src[idx], tgt[idx]
            t = t[:, : int((t != PAD).sum(1).max())]
            s = s[:, : int((s != PAD).sum(1).max())]
            logp = net(s, t[:, :-1])
            loss = F.cross_entropy(logp.reshape(-1, logp.shape[-1]), t[:, 1:].reshape(-1), ignore_index=PAD)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, 5.0)
            opt.step()
            bar.set_postfix(loss=f"{loss.item():.4f}", refresh=False)
    net.eval()


@torch.no_grad()
def exact_match(net: EquivariantSeq2Seq, src: torch.Tensor, tgt: torch.Tensor, batch_size: int = 1024) -> float:
    """Fraction of commands whose greedy decoding equals the target exactly (``tgt [N, T]`` with ``<sos>``)."""
    net.eval()
    correct = 0
    for i in range(0, src.shape[0], batch_size):
        s, t = src[i : i + batch_size], tgt[i : i + batch_size, 1:]
        pred = net.greedy_decode(s, max_len=t.shape[1])
        correct += int((pred == t).all(1).sum())
    return correct / src.shape[0]


def in_distribution_view_rate(train: list[tuple[str, str]], test: list[tuple[str, str]], symmetry: str) -> float:
    """Fraction of test commands with a view ``g·x`` (``g ≠ e``) that is a train command: the zero-shot ceiling
    of a method that picks one good view."""
    train_cmds = {c for c, _ in train}
    cycle = SYMMETRIES[symmetry][0][0]
    order = len(cycle)
    hits = 0
    for c, _ in test:
        words = c.split()
        for k in range(1, order):
            view = " ".join(cycle[(cycle.index(w) + k) % order] if w in cycle else w for w in words)
            if view in train_cmds:
                hits += 1
                break
    return hits / len(test)


def run_split(split: str, seed: int, args: argparse.Namespace) -> dict[str, object]:
    train_name, test_name, sym_name = SPLITS[split]
    sym_name = args.symmetry or sym_name
    train_pairs, test_pairs = load_split(train_name), load_split(test_name)
    if args.eval_subset:
        rng = np.random.default_rng(1234)
        test_pairs = [test_pairs[i] for i in sorted(rng.choice(len(test_pairs), args.eval_subset, replace=False))]
    dev = torch.device(args.device)
    src, tgt = (x.to(dev) for x in encode_pairs(train_pairs))
    te_src, te_tgt = (x.to(dev) for x in encode_pairs(test_pairs))
    tr_sub = torch.randperm(src.shape[0], generator=torch.Generator().manual_seed(0))[:2000]
    iv, ov = input_vocab(), output_vocab()
    symmetry = scan_symmetry(sym_name, iv, ov)
    torch.manual_seed(seed)
    model = Seq2Seq(len(iv), len(ov), emb=args.emb, hidden=args.hidden, dropout=args.dropout).to(dev)
    res: dict[str, object] = {
        "split": split,
        "seed": seed,
        "symmetry": sym_name,
        "n_train": len(train_pairs),
        "n_test": len(test_pairs),
        "in_distribution_view_rate": in_distribution_view_rate(train_pairs, test_pairs, sym_name),
        "args": {k: v for k, v in vars(args).items() if k not in ("splits", "seeds")},
    }
    acc: dict[str, float] = {}
    times: dict[str, float] = {}

    t0 = time.time()
    plain = EquivariantSeq2Seq(model, symmetry, "plain")
    train(plain, src, tgt, list(model.parameters()), args.pretrain_epochs, args.lr, args.batch_size, seed, "pretrain")
    times["pretrain"] = time.time() - t0
    res["pretrained_train_acc"] = exact_match(plain, src[tr_sub], tgt[tr_sub])

    nets: dict[str, EquivariantSeq2Seq] = {}
    for method in ("plain", "equitune", "equizero", "lambda"):
        t0 = time.time()
        net = EquivariantSeq2Seq(copy.deepcopy(model), symmetry, method).to(dev)
        if method == "lambda":  # stage 1: λ only, backbone frozen
            assert net.reducer is not None
            train(
                net,
                src,
                tgt,
                list(net.reducer.parameters()),
                args.lambda_epochs,
                args.lr,
                args.batch_size,
                seed,
                "fit λ",
            )
        acc[f"{method}/zero-shot"] = exact_match(net, te_src, te_tgt)
        times[f"{method}/zero-shot"] = time.time() - t0
        nets[method] = net
        tqdm.write(f"[{split} seed {seed}] {method:9s} zero-shot {acc[f'{method}/zero-shot']:.4f}")
    for method, net in nets.items():
        t0 = time.time()
        train(
            net,
            src,
            tgt,
            list(net.parameters()),
            args.finetune_epochs,
            args.finetune_lr,
            args.batch_size,
            seed + 1000,
            f"finetune {method}",
        )
        acc[f"{method}/finetuned"] = exact_match(net, te_src, te_tgt)
        times[f"{method}/finetuned"] = time.time() - t0
        tqdm.write(f"[{split} seed {seed}] {method:9s} finetuned {acc[f'{method}/finetuned']:.4f}")
    res["accuracy"] = acc
    res["seconds"] = times
    return res


def raw_rows(results: list[dict[str, object]]) -> list[dict[str, object]]:
    """The results of :func:`run_split` in the long format of :mod:`equirl.rawresults` (values in %)."""
    rows: list[dict[str, object]] = []
    for r in results:
        key = {"split": r["split"], "seed": r["seed"]}
        rows.append({**key, "method": "-", "stage": VIEW_RATE, "value": 100 * float(r["in_distribution_view_rate"])})  # type: ignore[arg-type]
        rows.append(
            {**key, "method": "plain", "stage": TRAIN_ACCURACY, "value": 100 * float(r["pretrained_train_acc"])}
        )  # type: ignore[arg-type]
        for name, acc in r["accuracy"].items():  # type: ignore[attr-defined]
            method, stage = name.split("/")
            rows.append({**key, "method": method, "stage": stage, "value": 100 * float(acc)})
    return rows


def main() -> None:
    parser, args = parse_args()
    started = rawresults.start_raw(parser, args, rawresults.device_words(args.device))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    if not args.table_only:
        for split in args.splits:
            for seed in args.seeds:
                res = run_split(split, seed, args)
                (out / f"{split}_seed{seed}.json").write_text(json.dumps(res, indent=1))
    results = [json.loads(p.read_text()) for p in sorted(out.glob("*_seed*.json"))]
    results = [r for r in results if r["split"] in args.splits]
    if results:
        rows = raw_rows(results)
        text = results_table(rows) + "\n" + split_notes(rows) + "\n"
        (out / "table.md").write_text(text)
        print(text)
    if args.raw and not args.table_only:
        settings = {k: v for k, v in vars(args).items() if k not in ("raw", "overwrite", "out", "table_only")}
        fresh = [r for r in results if (r["split"], r["seed"]) in {(s, k) for s in args.splits for k in args.seeds}]
        rawresults.write_raw(args.raw, raw_rows(fresh), settings, seconds=time.time() - t0, started=started,
                             overwrite=args.overwrite)  # fmt: skip
        print(f"wrote the raw results to {args.raw}")


if __name__ == "__main__":
    main()
