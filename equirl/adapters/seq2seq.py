"""A small GRU seq2seq with attention for SCAN, and its exactly equivariant version.

The pretrained model ``M`` is an ordinary encoder-decoder (:class:`Seq2Seq`). What ``M``
computes at one decoding step is a *next-token function* of the command and the prefix::

    f(src, prefix) = log p(next action | src, prefix)          [V_out]

A symmetry of SCAN (swap ``jump``/``run`` in commands together with ``I_JUMP``/``I_RUN`` in
actions; or ``left``/``right`` with ``I_TURN_LEFT``/``I_TURN_RIGHT``) acts on both arguments
and on the output distribution. Group averaging is applied to this function, with the core's
actions and reducers (one batched forward over the orbit ``[|G|·B, ...]``)::

    f_G(src, prefix) = Σ_g w_g ρ(g)⁻¹ f(g·src, g·prefix)

so *every view is fed the group-transformed prefix* (the tokens decoded so far, in the original
frame, mapped by ``g``). ``f_G(g·src, g·prefix) = ρ(g) f_G(src, prefix)`` for every ``g``, and by
induction over the decoding steps greedy decoding is equivariant as a whole: the prefix decoded
for ``g·src`` is ``g`` applied to the prefix decoded for ``src`` (up to exact ties in the argmax,
which only an input fixed by ``g`` can produce). The weights ``w_g`` are chosen per decoding
step (one per sample and position): equitune ``1/|G|``; equizero the view of lowest proxy loss
(default ``neg_max_prob``: the most confident next-token prediction); λ-equitune
``softmax_g λ(h_t(g·src, g·prefix))`` where ``h_t`` is the decoder's attentional state at step ``t``.
Teacher-forced training computes exactly the same function at every position, so training and
decoding agree.

The joint input: the core's :class:`~equirl.Symmetry` acts on one integer tensor, so a command
``src [B, S]`` and a prefix ``prefix [B, T]`` are concatenated into ``[B, S + T]`` over a joint
vocabulary (input words, then output actions offset by ``V_in``), on which one
:class:`~equirl.ValuePermutationAction` acts. The output action is a
:class:`~equirl.PermutationAction` of the last dim of log-probabilities ``[B, T, V_out]``.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from equirl.actions import PermutationAction, ValuePermutationAction
from equirl.averaging import Reducer, make_reducer, reduce_orbit
from equirl.groups import Group, cyclic, permutation_group
from equirl.symmetry import Symmetry

__all__ = [
    "PAD",
    "SOS",
    "EOS",
    "INPUT_TOKENS",
    "OUTPUT_TOKENS",
    "SYMMETRIES",
    "Vocab",
    "input_vocab",
    "output_vocab",
    "encode_pairs",
    "decode_actions",
    "scan_symmetry",
    "Seq2Seq",
    "EquivariantSeq2Seq",
]

PAD, SOS, EOS = 0, 1, 2
"""Special ids, shared by both vocabularies (the input vocabulary uses PAD only)."""

INPUT_TOKENS = (
    "<pad>",
    "<sos>",
    "<eos>",
    "walk",
    "look",
    "run",
    "jump",
    "turn",
    "left",
    "right",
    "opposite",
    "around",
    "twice",
    "thrice",
    "and",
    "after",
)
OUTPUT_TOKENS = ("<pad>", "<sos>", "<eos>", "I_WALK", "I_LOOK", "I_RUN", "I_JUMP", "I_TURN_LEFT", "I_TURN_RIGHT")

SYMMETRIES: dict[str, list[tuple[tuple[str, ...], tuple[str, ...]]]] = {
    # name: list of generators, each a list of (input-word cycle, output-token cycle)
    "verb": [(("jump", "run"), ("I_JUMP", "I_RUN"))],
    "direction": [(("left", "right"), ("I_TURN_LEFT", "I_TURN_RIGHT"))],
    "verb4": [(("jump", "run", "walk", "look"), ("I_JUMP", "I_RUN", "I_WALK", "I_LOOK"))],
}
"""SCAN symmetries by name. ``verb``: C2 swapping jump/run (Add-Jump); ``direction``: C2 swapping
left/right (Around-Right); ``verb4``: C4 cycling jump -> run -> walk -> look -> jump."""


class Vocab:
    """A fixed token list with ``encode``/``decode``. ``tokens[0]`` is the padding token."""

    def __init__(self, tokens: Sequence[str]) -> None:
        self.tokens = list(tokens)
        self.index = {t: i for i, t in enumerate(self.tokens)}
        if len(self.index) != len(self.tokens):
            raise ValueError(f"Vocab: repeated tokens in {self.tokens}.")

    def __len__(self) -> int:
        return len(self.tokens)

    def encode(self, words: Sequence[str]) -> list[int]:
        """Token ids of ``words`` (a KeyError names an unknown word)."""
        try:
            return [self.index[w] for w in words]
        except KeyError as err:
            raise KeyError(f"unknown token {err.args[0]!r}; the vocabulary is {self.tokens}") from None

    def cycle_permutation(self, cycle: Sequence[str]) -> list[int]:
        """The permutation of ``range(len(self))`` sending ``cycle[i]`` to ``cycle[i+1]`` (values ``p[v]``)."""
        p = list(range(len(self)))
        ids = self.encode(cycle)
        for a, b in zip(ids, ids[1:] + ids[:1], strict=True):
            p[a] = b
        return p


def input_vocab() -> Vocab:
    """The 13 SCAN command words after ``<pad>``, ``<sos>``, ``<eos>``."""
    return Vocab(INPUT_TOKENS)


def output_vocab() -> Vocab:
    """The 6 SCAN actions after ``<pad>``, ``<sos>``, ``<eos>``."""
    return Vocab(OUTPUT_TOKENS)


def encode_pairs(
    pairs: Sequence[tuple[str, str]], in_vocab: Vocab | None = None, out_vocab: Vocab | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(command, actions)`` strings -> ``src [N, S]`` and ``tgt [N, T+2]`` (``<sos> a_1 .. a_T <eos>``), PAD-padded."""
    in_vocab = in_vocab or input_vocab()
    out_vocab = out_vocab or output_vocab()
    srcs = [in_vocab.encode(c.split()) for c, _ in pairs]
    tgts = [[SOS, *out_vocab.encode(a.split()), EOS] for _, a in pairs]
    src = torch.full((len(pairs), max(map(len, srcs))), PAD, dtype=torch.long)
    tgt = torch.full((len(pairs), max(map(len, tgts))), PAD, dtype=torch.long)
    for i, (s, t) in enumerate(zip(srcs, tgts, strict=True)):
        src[i, : len(s)] = torch.tensor(s)
        tgt[i, : len(t)] = torch.tensor(t)
    return src, tgt


def decode_actions(tokens: torch.Tensor, out_vocab: Vocab | None = None) -> list[str]:
    """Decoded ids ``[N, L]`` (no ``<sos>``) -> action strings, cut at the first ``<eos>``/``<pad>``."""
    out_vocab = out_vocab or output_vocab()
    out = []
    for row in tokens.tolist():
        words = []
        for t in row:
            if t in (EOS, PAD):
                break
            words.append(out_vocab.tokens[t])
        out.append(" ".join(words))
    return out


def scan_symmetry(name: str = "verb", in_vocab: Vocab | None = None, out_vocab: Vocab | None = None) -> Symmetry:
    """The symmetry ``name`` (a key of :data:`SYMMETRIES`) of the next-token function.

    ``input_action`` maps joint token ids ``[B, S + T]`` (command ids, then prefix ids offset by
    ``len(in_vocab)``); ``output_action`` permutes the last dim of ``[B, T, V_out]``, so that
    ``argmax ρ(g) z = g·argmax z`` for the ids of the prefix.
    """
    if name not in SYMMETRIES:
        raise ValueError(f"Unknown SCAN symmetry {name!r}; expected one of {sorted(SYMMETRIES)}.")
    in_vocab = in_vocab or input_vocab()
    out_vocab = out_vocab or output_vocab()
    n_in = len(in_vocab)
    joint_gens: list[list[int]] = []
    out_gens: list[list[int]] = []
    for in_cycle, out_cycle in SYMMETRIES[name]:
        p_in = in_vocab.cycle_permutation(in_cycle)
        p_out = out_vocab.cycle_permutation(out_cycle)
        joint_gens.append(p_in + [n_in + v for v in p_out])
        out_gens.append(p_out)
    group: Group
    if len(joint_gens) == 1:
        order = len(SYMMETRIES[name][0][0])
        group = cyclic(order)
    else:  # pragma: no cover - no shipped symmetry has several generators
        group = permutation_group(joint_gens, name=name)
    # PermutationAction's convention is (g·z)[i] = z[q[i]]; with q = p⁻¹ the logit of token v moves to p[v].
    inverse_out = [np.argsort(p).tolist() for p in out_gens]
    return Symmetry(
        group,
        ValuePermutationAction(group, joint_gens),
        PermutationAction(group, inverse_out, dim=-1),
        name=f"SCAN {name}",
        description=" ; ".join(f"{'->'.join(a)} with {'->'.join(b)}" for a, b in SYMMETRIES[name]),
    )


class Seq2Seq(nn.Module):
    """GRU encoder (bidirectional) and GRU decoder with Luong attention.

    :param n_in: input vocabulary size; :param n_out: output vocabulary size.
    :param emb: embedding size; :param hidden: GRU width (the feature size ``F`` for λ);
    :param dropout: dropout on embeddings and on the attentional state.

    ``forward(src [N, S], prefix [N, T]) -> (log_probs [N, T, V_out], features [N, T, hidden])``:
    position ``t`` is the distribution of the token after ``prefix[:, :t+1]``.
    """

    def __init__(self, n_in: int, n_out: int, emb: int = 64, hidden: int = 128, dropout: float = 0.1) -> None:
        super().__init__()
        self.n_in, self.n_out, self.hidden = n_in, n_out, hidden
        self.src_emb = nn.Embedding(n_in, emb, padding_idx=PAD)
        self.encoder = nn.GRU(emb, hidden, batch_first=True, bidirectional=True)
        self.enc_proj = nn.Linear(2 * hidden, hidden)
        self.init_proj = nn.Linear(2 * hidden, hidden)
        self.tgt_emb = nn.Embedding(n_out, emb, padding_idx=PAD)
        self.decoder = nn.GRU(emb, hidden, batch_first=True)
        self.attn = nn.Linear(hidden, hidden, bias=False)
        self.combine = nn.Linear(2 * hidden, hidden)
        self.out = nn.Linear(hidden, n_out)
        self.drop = nn.Dropout(dropout)

    @property
    def feature_dim(self) -> int:
        """Size of the per-step features (the attentional state) read by a λ-net."""
        return self.hidden

    def encode(self, src: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``src [N, S]`` -> ``memory [N, S, H]``, ``mask [N, S]`` (True on tokens), ``h0 [1, N, H]``."""
        mask = src != PAD
        lengths = mask.sum(1).clamp_min(1).cpu()
        packed = pack_padded_sequence(self.drop(self.src_emb(src)), lengths, batch_first=True, enforce_sorted=False)
        out, h = self.encoder(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=src.shape[1])
        memory = self.enc_proj(out)
        h0 = torch.tanh(self.init_proj(torch.cat([h[0], h[1]], -1))).unsqueeze(0)
        return memory, mask, h0

    def decode(
        self, prefix: torch.Tensor, memory: torch.Tensor, mask: torch.Tensor, h: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``prefix [N, T]`` from state ``h [1, N, H]`` -> ``log_probs [N, T, V]``, ``features [N, T, H]``, ``h``."""
        dec, h = self.decoder(self.drop(self.tgt_emb(prefix)), h)
        scores = torch.bmm(self.attn(dec), memory.transpose(1, 2))  # [N, T, S]
        scores = scores.masked_fill(~mask.unsqueeze(1), float("-inf"))
        context = torch.bmm(torch.softmax(scores, -1), memory)
        feats = torch.tanh(self.combine(torch.cat([dec, context], -1)))
        return torch.log_softmax(self.out(self.drop(feats)), -1), feats, h

    def forward(self, src: torch.Tensor, prefix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        memory, mask, h = self.encode(src)
        logp, feats, _ = self.decode(prefix, memory, mask, h)
        return logp, feats


class EquivariantSeq2Seq(nn.Module):
    """A :class:`Seq2Seq` made exactly equivariant by the core's group averaging, per decoding step.

    :param model: the (pretrained) seq2seq; it is used, not copied.
    :param symmetry: from :func:`scan_symmetry`.
    :param method: ``"plain"`` (no averaging: the model itself), ``"equitune"``, ``"equizero"`` or ``"lambda"``.
    :param proxy_loss: equizero's proxy (a name in ``equirl.proxy.PROXY_LOSSES`` or a callable);
        default ``"neg_max_prob"``, the confidence of the next-token prediction.
    :param reducer_kwargs: passed to :func:`equirl.make_reducer` (``straight_through``, ``lambda_hidden``, ...).

    ``forward(src [B, S], prefix [B, T]) -> log-probabilities [B, T, V_out]`` (teacher forcing);
    ``greedy_decode(src [B, S], max_len) -> ids [B, max_len]``.
    """

    def __init__(
        self,
        model: Seq2Seq,
        symmetry: Symmetry,
        method: str = "equitune",
        proxy_loss: str = "neg_max_prob",
        **reducer_kwargs: object,
    ) -> None:
        super().__init__()
        self.model = model
        self.symmetry = symmetry
        self.method = method
        self.reducer: Reducer | None = None
        if method != "plain":
            self.reducer = make_reducer(
                method,
                feature_dim=model.feature_dim,
                proxy_loss=proxy_loss,
                **reducer_kwargs,  # type: ignore[arg-type]
            )
        act = symmetry.input_action
        if not isinstance(act, ValuePermutationAction) or act.num_values != model.n_in + model.n_out:
            raise ValueError(
                f"EquivariantSeq2Seq: the symmetry's input action must map joint ids of {model.n_in} + "
                f"{model.n_out} values; build it with scan_symmetry(name, in_vocab, out_vocab)."
            )

    @property
    def order(self) -> int:
        """``|G|`` used in the forward pass (1 for ``plain``)."""
        return 1 if self.reducer is None else self.symmetry.order

    def _orbit(self, src: torch.Tensor, prefix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``src [B, S]``, ``prefix [B, T]`` -> their orbits ``[G·B, S]``, ``[G·B, T]`` (one joint value map)."""
        G, B, S = self.order, src.shape[0], src.shape[1]
        joint = torch.cat([src, prefix + self.model.n_in], 1)
        orbit = joint.unsqueeze(0) if self.reducer is None else self.symmetry.input_action.orbit(joint)
        orbit = orbit.reshape(G * B, -1)
        return orbit[:, :S], orbit[:, S:] - self.model.n_in

    def _reduce(self, logp: torch.Tensor, feats: torch.Tensor, B: int) -> torch.Tensor:
        """Per-view ``logp [G·B, T, V]``, ``feats [G·B, T, F]`` -> ``[B, T, V]`` (one weight per sample and step)."""
        if self.reducer is None:
            return logp
        G = self.order
        # position_dims=1: the reducer weighs every (sample, step) on its own
        return reduce_orbit(
            logp.reshape(G, B, *logp.shape[1:]), self.symmetry, self.reducer, feats.reshape(G, B, *feats.shape[1:]), 1
        )

    def forward(self, src: torch.Tensor, prefix: torch.Tensor) -> torch.Tensor:
        o_src, o_prefix = self._orbit(src, prefix)
        logp, feats = self.model(o_src, o_prefix)
        return self._reduce(logp, feats, src.shape[0])

    @torch.no_grad()
    def greedy_decode(self, src: torch.Tensor, max_len: int = 50) -> torch.Tensor:
        """Greedy decoding ``src [B, S] -> ids [B, max_len]`` (PAD after ``<eos>``), one batched step per position.

        Each view keeps its own decoder state; at every step it is fed ``g`` applied to the token
        chosen (in the original frame) at the previous step.
        """
        B = src.shape[0]
        empty = src.new_zeros((B, 0))
        o_src, _ = self._orbit(src, empty)
        memory, mask, h = self.model.encode(o_src)
        prev = torch.full((B, 1), SOS, dtype=torch.long, device=src.device)
        done = torch.zeros(B, dtype=torch.bool, device=src.device)
        out = torch.full((B, max_len), PAD, dtype=torch.long, device=src.device)
        for t in range(max_len):
            _, o_prev = self._orbit(empty, prev)
            logp, feats, h = self.model.decode(o_prev, memory, mask, h)
            nxt = self._reduce(logp, feats, B)[:, -1].argmax(-1)
            nxt = torch.where(done, torch.full_like(nxt, PAD), nxt)
            out[:, t] = nxt
            done |= nxt == EOS
            if bool(done.all()):
                break
            prev = torch.where(done, torch.full_like(nxt, EOS), nxt).unsqueeze(1)
        return out
