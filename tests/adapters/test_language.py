"""Tests of the language adapter: a tiny random GPT-2 made equivariant to token swaps."""

from __future__ import annotations

import pytest
import torch

transformers = pytest.importorskip("transformers", reason="the language adapter needs transformers")

from equirl import equivariance_error  # noqa: E402
from equirl.adapters.language import (  # noqa: E402
    EquivariantLM,
    token_swap_symmetry,
    word_swap_symmetry,
)

V = 40
SWAPS = {"gender": [(3, 4), (5, 6)], "race": [(7, 8)]}  # order 4: two commuting swaps
CYCLE = {"cycle": [(10, 11, 12)]}  # C3: its elements are not involutions, so g vs g⁻¹ matters


@pytest.fixture(scope="module")
def gpt2() -> torch.nn.Module:
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(
        vocab_size=V,
        n_positions=64,
        n_embd=32,
        n_layer=2,
        n_head=2,
        initializer_range=0.3,
        bos_token_id=0,
        eos_token_id=1,
    )
    model = transformers.GPT2LMHeadModel(cfg).eval()
    return model


def _prompts(
    seed: int, B: int = 5, T: int = 7, tokens: tuple[int, ...] = (3, 4, 5, 6, 7, 8, 10, 11, 12)
) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    x = torch.randint(0, V, (B, T), generator=g)
    x[:, 1] = torch.tensor(tokens)[torch.randint(0, len(tokens), (B,), generator=g)]  # a swapped word in each
    return x


def test_symmetry_moves_mass_from_v_to_sigma_v() -> None:
    sym = token_swap_symmetry(V, CYCLE)
    assert sym.order == 3
    r = sym.group.generator_indices[0]
    x = torch.tensor([[10, 11, 12, 0]])
    assert sym.input_action.apply(r, x).tolist() == [[11, 12, 10, 0]]
    onehot = torch.zeros(1, V)
    onehot[0, 10] = 1.0
    moved = sym.output_action.apply(r, onehot)
    assert moved[0, 11] == 1.0 and moved.sum() == 1.0  # p(σ(v) | g·x) = p(v | x)


@pytest.mark.parametrize("method", ["equitune", "equizero", "lambda"])
@pytest.mark.parametrize("space", ["logprob", "prob"])
@pytest.mark.parametrize("cycles", [SWAPS, CYCLE], ids=["swaps", "cycle"])
def test_wrapper_is_equivariant(gpt2: torch.nn.Module, method: str, space: str, cycles: dict) -> None:
    sym = token_swap_symmetry(V, cycles)
    torch.manual_seed(1)
    lm = EquivariantLM(gpt2, sym, method=method, space=space).eval()
    if method == "lambda":  # a non-trivial λ-net (the default starts at zero, i.e. equitune)
        assert lm.reducer is not None
        for p in lm.reducer.parameters():
            torch.nn.init.normal_(p, std=1.0)
    x = _prompts(0)
    err = equivariance_error(lm.next_token_logprobs, sym, x)
    assert err <= 1e-5
    # every position, not only the last
    err_all = equivariance_error(lambda ids: lm(ids).logprobs, sym, x)
    assert err_all <= 1e-5


def test_plain_model_is_not_equivariant(gpt2: torch.nn.Module) -> None:
    for cycles in (SWAPS, CYCLE):
        sym = token_swap_symmetry(V, cycles)
        plain = EquivariantLM(gpt2, None, method="plain")
        assert equivariance_error(plain.next_token_logprobs, sym, _prompts(0)) > 1e-2


def test_output_action_must_be_the_inverse(gpt2: torch.nn.Module) -> None:
    """Averaging with ρ(g) in place of ρ(g)⁻¹ is not equivariant for C3 (it is for swaps)."""
    sym = token_swap_symmetry(V, CYCLE)
    lm = EquivariantLM(gpt2, sym, method="equitune")
    x = _prompts(2)
    G, B = sym.order, x.shape[0]
    with torch.no_grad():

        def wrong(ids: torch.Tensor) -> torch.Tensor:
            n = ids.shape[0]
            y = torch.log_softmax(gpt2(sym.input_action.orbit(ids).reshape(G * n, -1)).logits[:, -1], -1)
            return sym.output_action.apply_each(y.reshape(G, n, V)).mean(0)  # ρ(g) instead of ρ(g)⁻¹

        assert equivariance_error(wrong, sym, x) > 1e-2
        assert equivariance_error(lm.next_token_logprobs, sym, x) <= 1e-5
    assert B == 5


def test_untrained_lambda_equals_equitune_and_weights_are_convex(gpt2: torch.nn.Module) -> None:
    sym = token_swap_symmetry(V, SWAPS)
    x = _prompts(3)
    lam = EquivariantLM(gpt2, sym, method="lambda")
    eq = EquivariantLM(gpt2, sym, method="equitune")
    with torch.no_grad():
        out = lam(x)
        assert torch.allclose(out.logprobs, eq(x).logprobs, atol=1e-6)
        assert out.weights is not None and out.weights.shape == (sym.order, *x.shape)
        assert torch.allclose(out.weights.sum(0), torch.ones(x.shape))
        z = EquivariantLM(gpt2, sym, method="equizero")(x)
        assert z.weights is not None
        # equizero: uniform over the views of lowest proxy loss (identical views tie, e.g. before any swap)
        top = z.weights.max(0, keepdim=True).values
        assert torch.all((z.weights == 0) | torch.isclose(z.weights, top.expand_as(z.weights)))


def test_prompt_without_swapped_tokens(gpt2: torch.nn.Module) -> None:
    """All views are the same: a token no swap moves keeps its probability; a swapped pair shares its mass."""
    sym = token_swap_symmetry(V, SWAPS)
    x = torch.tensor([[0, 1, 2, 9, 13, 14]])
    plain = EquivariantLM(gpt2, None, method="plain")(x).logprobs.exp()
    fixed = [v for v in range(V) if v not in (3, 4, 5, 6, 7, 8)]
    for method in ("equitune", "equizero", "lambda"):
        p = EquivariantLM(gpt2, sym, method=method, space="prob")(x).logprobs.exp()
        assert torch.allclose(p[..., fixed], plain[..., fixed], atol=1e-6)
        for a, b in ((3, 4), (5, 6), (7, 8)):
            assert torch.allclose(p[..., a], (plain[..., a] + plain[..., b]) / 2, atol=1e-6)
            assert torch.allclose(p[..., a], p[..., b], atol=1e-7)
    assert not torch.allclose(p, plain, atol=1e-3)


def test_left_padding_and_cache_match_full_forward(gpt2: torch.nn.Module) -> None:
    sym = token_swap_symmetry(V, SWAPS)
    lm = EquivariantLM(gpt2, sym, method="equizero")
    x = _prompts(4, B=1, T=6)
    with torch.no_grad():
        seq = lm.generate(x, max_new_tokens=5)
        full = lm.next_token_logprobs(seq[:, :-1])
        assert int(full.argmax(-1)) == int(seq[0, -1])  # the cached last step agrees with one full pass
        padded = torch.cat([torch.zeros(1, 3, dtype=torch.long), x], 1)
        mask = torch.cat([torch.zeros(1, 3, dtype=torch.long), torch.ones_like(x)], 1)
        assert torch.allclose(lm.next_token_logprobs(padded, mask), lm.next_token_logprobs(x), atol=1e-5)
        assert torch.equal(lm.generate(padded, mask, max_new_tokens=5)[:, 3:], seq)


@pytest.mark.parametrize("method", ["equitune", "equizero"])
def test_greedy_generation_is_equivariant(gpt2: torch.nn.Module, method: str) -> None:
    sym = token_swap_symmetry(V, CYCLE)
    lm = EquivariantLM(gpt2, sym, method=method)
    x = _prompts(5, B=4, T=5)
    with torch.no_grad():
        base = lm.generate(x, max_new_tokens=8)
        for g in range(sym.order):
            swapped = lm.generate(sym.input_action.apply(g, x), max_new_tokens=8)
            assert torch.equal(swapped, sym.input_action.apply(g, base))


def test_sampling_runs_and_respects_top_k(gpt2: torch.nn.Module) -> None:
    sym = token_swap_symmetry(V, SWAPS)
    lm = EquivariantLM(gpt2, sym)
    x = _prompts(6, B=3, T=4)
    gen = torch.Generator().manual_seed(0)
    with torch.no_grad():
        out = lm.generate(x, max_new_tokens=4, do_sample=True, top_k=1, generator=gen)
        assert torch.equal(out, lm.generate(x, max_new_tokens=4))  # top_k=1 is greedy
        out = lm.generate(x, max_new_tokens=4, do_sample=True, temperature=2.0, generator=gen)
    assert out.shape == (3, 8)


def test_score_continuations_matches_token_logprobs(gpt2: torch.nn.Module) -> None:
    sym = token_swap_symmetry(V, SWAPS)
    lm = EquivariantLM(gpt2, sym, method="equizero", space="prob")
    prompts = [[1, 3, 2], [5, 9]]
    conts = [[13, 14], [15]]
    with torch.no_grad():
        s = lm.score_continuations(prompts, conts, batch_size=2)
        for i in range(2):
            ids = torch.tensor([prompts[i] + conts[i]])
            ref = lm.token_logprobs(ids)[0, -len(conts[i]) :].sum()
            assert torch.allclose(s[i], ref, atol=1e-5)


class StubTokenizer:
    """Splits on nothing: known strings are one token, anything else one token per character."""

    def __init__(self) -> None:
        self.vocab = {" man": 3, " woman": 4, " he": 5, " she": 6, " Black": 7, " White": 8, "He": 9, "She": 10}

    def encode(self, text: str, add_special_tokens: bool = False) -> list[int]:
        if text in self.vocab:
            return [self.vocab[text]]
        return [20 + (ord(c) % 20) for c in text]


def test_word_swaps_resolve_to_tokens() -> None:
    tok = StubTokenizer()
    swaps = word_swap_symmetry(
        tok, V, {"gender": [("man", "woman"), ("he", "she")], "race": [("Black", "White")]}, forms=(" {w}",)
    )
    assert swaps.cycles == {"gender": [(3, 4), (5, 6)], "race": [(7, 8)]}
    assert swaps.symmetry.order == 4
    # " {W}" of Black is the same token as " {w}": merged, not an error
    swaps = word_swap_symmetry(tok, V, {"race": [("Black", "White")]}, forms=(" {w}", " {W}"))
    assert swaps.cycles == {"race": [(7, 8)]}


def test_multi_token_words_are_refused_or_skipped() -> None:
    tok = StubTokenizer()
    axes = {"gender": [("man", "woman"), ("he", "she")]}
    with pytest.raises(ValueError, match="(?s)several tokens.*' Man'"):
        word_swap_symmetry(tok, V, axes, forms=(" {w}", " {W}"))
    with pytest.warns(UserWarning, match="multi-token"):
        swaps = word_swap_symmetry(tok, V, axes, forms=(" {w}", " {W}", "{W}"), on_multi_token="skip")
    assert swaps.cycles == {"gender": [(3, 4), (5, 6), (9, 10)]}
    assert len(swaps.skipped) == 3  # " Man", "Man", " He"


def test_bad_swaps_fail_at_construction(gpt2: torch.nn.Module) -> None:
    with pytest.raises(ValueError, match="one partner only"):
        token_swap_symmetry(V, {"a": [(3, 4)], "b": [(4, 5)]})
    with pytest.raises(ValueError, match="outside range"):
        token_swap_symmetry(V, {"a": [(3, V)]})
    with pytest.raises(ValueError, match="vocabulary has"):
        EquivariantLM(gpt2, token_swap_symmetry(V + 1, SWAPS))
    with pytest.raises(ValueError, match="unknown method"):
        EquivariantLM(gpt2, token_swap_symmetry(V, SWAPS), method="mean")


def test_lambda_fit_on_frozen_views_lowers_loss_and_stays_equivariant(gpt2: torch.nn.Module) -> None:
    """The λ-net fitted on cached views (frozen backbone) learns something, and the LM stays exact."""
    sym = token_swap_symmetry(V, SWAPS)
    lm = EquivariantLM(gpt2, sym, method="lambda")
    assert lm.reducer is not None
    ids = _prompts(7, B=8, T=10)
    with torch.no_grad():
        views = lm.views(ids)
    opt = torch.optim.Adam(lm.reducer.parameters(), lr=1e-2)
    losses = []
    for _ in range(30):
        loss = -lm.combine(views).logprobs[:, :-1].gather(-1, ids[:, 1:, None]).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0] - 1e-3
    with torch.no_grad():
        assert torch.allclose(lm.combine(views).logprobs, lm(ids).logprobs, atol=1e-5)
        assert equivariance_error(lm.next_token_logprobs, sym, _prompts(8)) <= 1e-5
