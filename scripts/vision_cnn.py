"""Example 1: a CNN trained on upright images, evaluated and finetuned on a random rot90 test set.

The paper's ResNet/AlexNet experiment at laptop scale. A small CNN is trained on upright
Fashion-MNIST (Debian's ``dataset-fashion-mnist``; ``--dataset digits`` uses scikit-learn's digits).
The test set is moved by a random element of the group (C4 by default). Compared, zero-shot and
after a short finetuning budget (the same for every method):

- plain: the CNN as trained (finetuned with the same randomly rotated data);
- equitune, equizero (entropy and max-probability proxies): the core's group averaging;
- λ-equitune: λ-net over the CNN's 128 features, fitted on a small held-out set with the backbone
  frozen, then finetuned together with the backbone.

    python scripts/vision_cnn.py                 # about 5-6 minutes on 2 CPU cores
    python scripts/vision_cnn.py --seeds 0 1 2   # finetuning repeated over seeds

Prints a table and writes ``results/vision/cnn_table.md`` and ``results/vision/cnn.png``.
"""

from __future__ import annotations

import argparse
import copy
import json
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from equirl import rawresults
from equirl.adapters.vision import equivariant_classifier, image_symmetry
from equirl.adapters.vision.data import load_image_dataset, random_group_transform
from equirl.adapters.vision.results import LAMBDA_METHOD


class SmallCNN(nn.Module):
    """``[N, 1, H, W] -> [N, 128]`` features (the λ-net reads these); ``head``: ``[N, 128] -> [N, K]``."""

    def __init__(self, image_size: int, num_classes: int = 10, width: int = 16) -> None:
        super().__init__()
        pool = 2 if image_size >= 16 else 1
        s = image_size // pool // pool
        self.encoder = nn.Sequential(
            nn.Conv2d(1, width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(pool),
            nn.Conv2d(width, 2 * width, 3, padding=1),
            nn.ReLU(),
            nn.MaxPool2d(pool),
            nn.Flatten(),
            nn.Linear(2 * width * s * s, 128),
            nn.ReLU(),
        )
        self.head = nn.Linear(128, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.encoder(x))  # type: ignore[no-any-return]


def train(
    model: nn.Module,
    params: list[nn.Parameter],
    x: torch.Tensor,
    y: torch.Tensor,
    steps: int,
    lr: float,
    batch_size: int,
    seed: int,
    desc: str,
) -> None:
    """``steps`` Adam steps of cross-entropy on minibatches of ``(x [N, ...], y [N])``; other parameters frozen."""
    trained = {id(q) for q in params}
    saved = {id(q): q.requires_grad for q in model.parameters()}
    for q in model.parameters():
        q.requires_grad_(id(q) in trained)
    opt = torch.optim.Adam(params, lr=lr)
    gen = torch.Generator().manual_seed(seed)
    model.train()
    bar = tqdm(range(steps), desc=desc, leave=False, mininterval=2.0)
    for _ in bar:
        idx = torch.randint(x.shape[0], (batch_size,), generator=gen).to(x.device)
        loss = F.cross_entropy(model(x[idx]), y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
        bar.set_postfix(loss=f"{loss.item():.3f}", refresh=False)
    for q in model.parameters():
        q.requires_grad_(saved[id(q)])
    model.eval()


@torch.no_grad()
def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 1000) -> float:
    """Top-1 accuracy in percent."""
    model.eval()
    correct = 0
    for i in range(0, x.shape[0], batch_size):
        correct += int((model(x[i : i + batch_size]).argmax(-1) == y[i : i + batch_size]).sum())
    return 100.0 * correct / x.shape[0]


def plot(rows: dict[str, dict[str, list[float]]], upright: float, title: str, path: Path) -> None:
    """Bar chart of mean zero-shot and finetuned accuracy per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.6))
    names = list(rows)
    w = 0.38
    for j, phase in enumerate(("zero-shot", "finetuned")):
        xs = [i + (j - 0.5) * w for i, m in enumerate(names) if rows[m][phase]]
        vals = [sum(rows[m][phase]) / len(rows[m][phase]) for m in names if rows[m][phase]]
        bars = ax.bar(xs, vals, w, label=phase)
        ax.bar_label(bars, fmt="%.1f", fontsize=7)
    ax.axhline(upright, color="k", ls="--", lw=0.8, label="plain on the upright test set")
    ax.set_xticks(range(len(names)), names, rotation=15, fontsize=8)
    ax.set_ylabel("top-1 on the moved test set (%)")
    ax.set_title(title, fontsize=9)
    ax.set_ylim(0, 105)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--dataset", default="fashion-mnist", choices=["fashion-mnist", "digits"])
    p.add_argument("--group", default="c4", help="c4, d4, hflip or vflip")
    p.add_argument("--train-size", type=int, default=20000, help="upright images to pretrain on")
    p.add_argument("--heldout-size", type=int, default=1000, help="transformed images to fit λ on (backbone frozen)")
    p.add_argument("--finetune-size", type=int, default=5000, help="transformed images to finetune on")
    p.add_argument("--test-size", type=int, default=10000)
    p.add_argument("--pretrain-steps", type=int, default=800)
    p.add_argument("--lambda-steps", type=int, default=150)
    p.add_argument("--finetune-steps", type=int, default=150)
    p.add_argument("--finetune-lr", type=float, default=3e-4)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--seeds", type=int, nargs="+", default=[0], help="seeds for λ fitting and finetuning")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--device", default="cpu", help="cpu or cuda")
    p.add_argument("--out", default="results/vision")
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    started = rawresults.start_raw(p, args, rawresults.device_words(args.device))
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)

    data = load_image_dataset(args.dataset)
    sym = image_symmetry(args.group)
    size = data.x_train.shape[-1]
    n_all = data.x_train.shape[0]
    n_ho, n_ft = min(args.heldout_size, n_all // 5), min(args.finetune_size, n_all // 5)  # small data sets (digits)
    n_tr = min(args.train_size, n_all - n_ho - n_ft)
    x_tr, y_tr = data.x_train[:n_tr], data.y_train[:n_tr]
    x_ho, y_ho = data.x_train[n_tr : n_tr + n_ho], data.y_train[n_tr : n_tr + n_ho]
    x_ft, y_ft = data.x_train[n_tr + n_ho : n_tr + n_ho + n_ft], data.y_train[n_tr + n_ho : n_tr + n_ho + n_ft]
    x_ho, _ = random_group_transform(x_ho, sym, seed=1)
    x_ft, _ = random_group_transform(x_ft, sym, seed=2)
    x_te, y_te = data.x_test[: args.test_size], data.y_test[: args.test_size]
    x_te_rot, _ = random_group_transform(x_te, sym, seed=3)
    dev = torch.device(args.device)
    x_tr, y_tr, x_ho, y_ho, x_ft, y_ft = (t.to(dev) for t in (x_tr, y_tr, x_ho, y_ho, x_ft, y_ft))
    x_te, y_te, x_te_rot = x_te.to(dev), y_te.to(dev), x_te_rot.to(dev)
    print(
        f"{data.name}: pretrain on {n_tr} upright, λ on {n_ho}, finetune on {n_ft}, test on {x_te.shape[0]} "
        f"images moved by random elements of {sym.group.name} {sym.group.element_names}"
    )

    # -- pretrain on upright images ------------------------------------------------------------
    base = SmallCNN(size, len(data.classes)).to(dev)
    train(base, list(base.parameters()), x_tr, y_tr, args.pretrain_steps, 1e-3, 128, 0, "pretrain (upright)")
    upright = accuracy(base, x_te, y_te)
    print(f"pretrained CNN: upright test accuracy {upright:.2f}%  ({time.time() - t0:.0f}s)")

    methods = {
        "plain": {},
        "equitune": {"method": "equitune"},
        "equizero (entropy)": {"method": "equizero", "proxy_loss": "entropy"},
        "equizero (max prob)": {"method": "equizero", "proxy_loss": "neg_max_prob"},
        LAMBDA_METHOD: {"method": "lambda", "feature_dim": 128, "lambda_hidden": 64},
    }
    finetuned = ["plain", "equitune", "equizero (entropy)", LAMBDA_METHOD]
    rows: dict[str, dict[str, list[float]]] = {m: {"zero-shot": [], "finetuned": []} for m in methods}
    raw_rows: list[dict[str, object]] = [{"seed": 0, "method": "plain", "stage": "upright", "value": upright}]
    for seed in args.seeds:
        torch.manual_seed(seed)
        for name, kw in methods.items():
            cnn = copy.deepcopy(base)
            model: nn.Module = (
                cnn if name == "plain" else equivariant_classifier(encoder=cnn.encoder, head=cnn.head, group=sym, **kw)
            )  # type: ignore[arg-type]
            if name == LAMBDA_METHOD:
                lam = list(model.reducer.parameters())  # type: ignore[union-attr]
                train(model, lam, x_ho, y_ho, args.lambda_steps, 1e-3, args.batch_size, seed, "fit λ (frozen backbone)")
            rows[name]["zero-shot"].append(accuracy(model, x_te_rot, y_te))
            raw_rows.append({"seed": seed, "method": name, "stage": "zero-shot", "value": rows[name]["zero-shot"][-1]})
            if name in finetuned:
                train(
                    model,
                    list(model.parameters()),
                    x_ft,
                    y_ft,
                    args.finetune_steps,
                    args.finetune_lr,
                    args.batch_size,
                    100 + seed,
                    f"finetune {name}",
                )
                rows[name]["finetuned"].append(accuracy(model, x_te_rot, y_te))
                raw_rows.append(
                    {"seed": seed, "method": name, "stage": "finetuned", "value": rows[name]["finetuned"][-1]}
                )
            print(f"  seed {seed} {name:22s} " + "  ".join(f"{k} {v[-1]:.2f}" for k, v in rows[name].items() if v))

    def fmt(v: list[float]) -> str:
        if not v:
            return "-"
        m = sum(v) / len(v)
        if len(v) == 1:
            return f"{m:.2f}"
        sd = (sum((a - m) ** 2 for a in v) / (len(v) - 1)) ** 0.5
        return f"{m:.2f} ± {sd:.2f}"

    elapsed = time.time() - t0
    title = (
        f"{data.name}, test set moved by random {sym.group.name} elements ({x_te.shape[0]} images); "
        f"top-1 % (upright plain: {upright:.2f}); seeds {args.seeds}; finetune {args.finetune_steps} steps"
    )
    table = [f"**{title}**", "", "| method | zero-shot | finetuned |", "|---|---|---|"]
    table += [f"| {m} | {fmt(r['zero-shot'])} | {fmt(r['finetuned'])} |" for m, r in rows.items()]
    text = "\n".join(table)
    print()
    print(text)
    print(f"\ntotal time {elapsed:.0f}s")
    (out / "cnn_table.md").write_text(text + "\n")
    (out / "cnn_results.json").write_text(json.dumps({"args": vars(args), "upright": upright, "rows": rows}, indent=1))

    plot(
        rows,
        upright,
        f"{data.name}: CNN trained upright, test moved by random {sym.group.name} elements",
        out / "cnn.png",
    )
    print(f"wrote {out / 'cnn_table.md'} and {out / 'cnn.png'}")
    if args.raw:
        settings = {k: v for k, v in vars(args).items() if k not in ("raw", "overwrite", "out")}
        settings |= {"dataset_name": data.name, "n_pretrain": n_tr, "n_lambda": n_ho, "n_finetune": n_ft}
        settings |= {"n_test": int(x_te.shape[0]), "group_elements": list(sym.group.element_names)}
        rawresults.write_raw(args.raw, raw_rows, settings, seconds=elapsed, started=started, overwrite=args.overwrite)
        print(f"wrote the raw results to {args.raw}")


if __name__ == "__main__":
    main()
