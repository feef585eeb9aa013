"""SCAN: published split sizes and rules; exact equivariance of the wrapped seq2seq (teacher forcing and decoding)."""

from __future__ import annotations

import pytest
import torch

from equirl import equivariance_error
from equirl.adapters.scan import ADDPRIM_JUMP_REPEATS, all_commands, interpret, load_split, split_sizes
from equirl.adapters.seq2seq import (
    EquivariantSeq2Seq,
    Seq2Seq,
    decode_actions,
    encode_pairs,
    input_vocab,
    output_vocab,
    scan_symmetry,
)

# -- data -----------------------------------------------------------------------------------


def test_published_sizes() -> None:
    assert split_sizes() == {
        "simple": 20910,
        "addprim_jump_train": 14670,
        "addprim_jump_test": 7706,
        "template_around_right_train": 15225,
        "template_around_right_test": 4476,
    }
    assert len(set(all_commands())) == 20910


def test_interpretation_examples() -> None:
    assert interpret("jump") == "I_JUMP"
    assert interpret("turn left twice") == "I_TURN_LEFT I_TURN_LEFT"
    assert interpret("walk opposite right") == "I_TURN_RIGHT I_TURN_RIGHT I_WALK"
    assert interpret("look around left") == " ".join(["I_TURN_LEFT I_LOOK"] * 4)
    assert interpret("turn around right") == " ".join(["I_TURN_RIGHT"] * 4)
    assert interpret("run after walk left thrice") == "I_TURN_LEFT I_WALK " * 3 + "I_RUN"
    assert interpret("jump twice and turn right") == "I_JUMP I_JUMP I_TURN_RIGHT"
    lengths = [len(a.split()) for _, a in load_split("simple")]
    assert max(lengths) == 48 and min(lengths) == 1


def test_addprim_jump_rules() -> None:
    train, test = load_split("addprim_jump_train"), load_split("addprim_jump_test")
    with_jump = [c for c, _ in train if "jump" in c.split()]
    assert with_jump == ["jump"] * ADDPRIM_JUMP_REPEATS  # jump only alone, 1,467 times
    assert all("jump" in c.split() and c != "jump" for c, _ in test)
    assert not {c for c, _ in train} & {c for c, _ in test}
    assert len({c for c, _ in train}) + len(test) == 20910


def test_around_right_rules() -> None:
    train, test = load_split("template_around_right_train"), load_split("template_around_right_test")
    assert not any("around right" in c for c, _ in train)
    assert all("around right" in c and "turn around right" not in c for c, _ in test)
    assert len(train) + len(test) + sum("turn around right" in c for c in all_commands()) == 20910


def test_unknown_split() -> None:
    with pytest.raises(ValueError, match="addprim_jump_train"):
        load_split("addjump")


# -- equivariant seq2seq ----------------------------------------------------------------------


def _tiny(seed: int = 0) -> Seq2Seq:
    torch.manual_seed(seed)
    return Seq2Seq(len(input_vocab()), len(output_vocab()), emb=8, hidden=16, dropout=0.0).eval()


def _batch(n: int = 24) -> tuple[torch.Tensor, torch.Tensor]:
    pairs = load_split("addprim_jump_test")[::300][:n]
    return encode_pairs(pairs)


def _wrap(model: Seq2Seq, sym_name: str, method: str) -> EquivariantSeq2Seq:
    net = EquivariantSeq2Seq(model, scan_symmetry(sym_name), method).eval()
    if method == "lambda" and net.reducer is not None:  # a λ-net that is not constant
        torch.manual_seed(1)
        torch.nn.init.normal_(net.reducer.lambda_net[-1].weight)  # type: ignore[index,union-attr]
    return net


def _teacher_forced_error(net: EquivariantSeq2Seq, src: torch.Tensor, tgt: torch.Tensor) -> float:
    n_in, S = net.model.n_in, src.shape[1]
    joint = torch.cat([src, tgt[:, :-1] + n_in], 1)
    return equivariance_error(lambda j: net(j[:, :S], j[:, S:] - n_in), net.symmetry, joint)


def _decode_equivariant(net: EquivariantSeq2Seq, src: torch.Tensor) -> list[bool]:
    n_in, S = net.model.n_in, src.shape[1]
    dec = net.greedy_decode(src, 50)
    orbit = net.symmetry.input_action.orbit(torch.cat([src, dec + n_in], 1))
    return [bool((net.greedy_decode(orbit[g, :, :S], 50) == orbit[g, :, S:] - n_in).all()) for g in range(len(orbit))]


@pytest.mark.parametrize("method", ["equitune", "equizero", "lambda"])
@pytest.mark.parametrize("sym_name", ["verb", "direction", "verb4"])
def test_wrapped_seq2seq_is_equivariant(method: str, sym_name: str) -> None:
    src, tgt = _batch()
    net = _wrap(_tiny(), sym_name, method)
    assert _teacher_forced_error(net, src, tgt) < 1e-5
    assert all(_decode_equivariant(net, src))


def test_plain_seq2seq_is_not_equivariant() -> None:
    src, tgt = _batch()
    net = _wrap(_tiny(), "verb", "plain")
    assert _teacher_forced_error(net, src, tgt) > 1e-2


def test_verb_group_maps_jump_to_run() -> None:
    sym = scan_symmetry("verb")
    src, tgt = encode_pairs([("jump twice", "I_JUMP I_JUMP")])
    n_in = len(input_vocab())
    swapped = sym.input_action.orbit(torch.cat([src, tgt + n_in], 1))[1]
    words = [input_vocab().tokens[i] for i in swapped[0, : src.shape[1]].tolist()]
    assert words == ["run", "twice"]
    assert decode_actions(swapped[:, src.shape[1] + 1 :] - n_in) == ["I_RUN I_RUN"]


def test_wrapped_gradients_reach_model_and_lambda() -> None:
    src, tgt = _batch(8)
    net = _wrap(_tiny(), "verb", "lambda").train()
    logp = net(src, tgt[:, :-1])
    torch.nn.functional.nll_loss(logp.reshape(-1, logp.shape[-1]), tgt[:, 1:].reshape(-1), ignore_index=0).backward()
    assert net.model.out.weight.grad is not None and net.model.out.weight.grad.abs().sum() > 0
    assert net.reducer is not None
    assert all(p.grad is not None for p in net.reducer.parameters())
