"""textclf_utils.attention against PyTorch's attention and against the packaged BERT's layer 0."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from hypothesis import given, settings, strategies as st
from torch import nn

from textclf_utils.attention import (
    MultiHeadAttention,
    causal_mask,
    copy_from_bert_attention,
    copy_from_torch_multihead,
    masked_softmax,
    merge_heads,
    padding_mask,
    scaled_dot_product_attention,
    split_heads,
)


@st.composite
def attention_inputs(draw):
    """Random (query, key, value, mask) in float32; the mask may be absent, 2-D, a padding mask or full."""
    batch, heads = draw(st.integers(1, 3)), draw(st.integers(1, 4))
    len_q, len_k = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    d_k, d_v = draw(st.integers(1, 16)), draw(st.integers(1, 16))
    gen = torch.Generator().manual_seed(draw(st.integers(0, 2**31 - 1)))
    query = torch.randn(batch, heads, len_q, d_k, generator=gen)
    key = torch.randn(batch, heads, len_k, d_k, generator=gen)
    value = torch.randn(batch, heads, len_k, d_v, generator=gen)
    mask_shape = draw(st.sampled_from([None, (len_q, len_k), (batch, 1, 1, len_k), (batch, heads, len_q, len_k)]))
    mask = None if mask_shape is None else torch.rand(mask_shape, generator=gen) < draw(st.floats(0.0, 1.0))
    return query, key, value, mask


@settings(max_examples=60, deadline=None)
@given(attention_inputs())
def test_matches_torch_scaled_dot_product_attention(inputs):
    query, key, value, mask = inputs
    ours, weights = scaled_dot_product_attention(query, key, value, mask=mask)
    reference = F.scaled_dot_product_attention(query, key, value, attn_mask=mask, dropout_p=0.0)
    assert ours.shape == reference.shape
    assert (ours - reference).abs().max().item() <= 1e-6
    row_sums = weights.sum(dim=-1)
    valid_rows = torch.ones_like(row_sums, dtype=torch.bool) if mask is None else mask.any(-1).expand_as(row_sums)
    assert torch.allclose(row_sums[valid_rows], torch.ones(()), atol=1e-6)
    assert torch.all(row_sums[~valid_rows] == 0)
    if mask is not None:
        assert torch.all(weights.masked_select(~mask.expand_as(weights)) == 0)


def test_hand_computed_example():
    # one query, two keys: scores (1·1 + 0·0) / √2 and (1·0 + 0·1) / √2, so weights ∝ (e^{1/√2}, 1)
    query, key, value = torch.tensor([[1.0, 0.0]]), torch.tensor([[1.0, 0.0], [0.0, 1.0]]), torch.tensor([[10.0], [20.0]])
    output, weights = scaled_dot_product_attention(query, key, value)
    first = torch.exp(torch.tensor(2 ** -0.5)) / (torch.exp(torch.tensor(2 ** -0.5)) + 1)
    assert torch.allclose(weights, torch.stack([first, 1 - first]).reshape(1, 2))
    assert torch.allclose(output, 10 * first + 20 * (1 - first))


def test_padded_keys_get_exactly_zero_weight():
    attention_mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]])
    x = torch.randn(2, 5, 8)
    _, weights = scaled_dot_product_attention(x[:, None], x[:, None], x[:, None], mask=padding_mask(attention_mask))
    assert torch.all(weights[0, ..., 3:] == 0)
    assert torch.all(weights[1] > 0)


def test_causal_mask_matches_is_causal():
    query, key, value = torch.randn(3, 2, 6, 4).unbind(0)
    ours, weights = scaled_dot_product_attention(query, key, value, mask=causal_mask(6))
    reference = F.scaled_dot_product_attention(query, key, value, is_causal=True)
    assert (ours - reference).abs().max() <= 1e-6
    assert torch.all(weights.triu(diagonal=1) == 0)


def test_fully_masked_row_gives_zeros_not_nan_and_finite_gradients():
    scores = torch.randn(2, 3, requires_grad=True)
    mask = torch.tensor([[True, False, True], [False, False, False]])
    naive = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    assert torch.isnan(naive[1]).all()  # the pitfall this function exists for
    weights = masked_softmax(scores, mask)
    assert torch.equal(weights[1], torch.zeros(3))
    assert torch.allclose(weights[0].sum(), torch.tensor(1.0))
    (weights * torch.randn(2, 3)).sum().backward()
    assert torch.isfinite(scores.grad).all()


def test_split_and_merge_heads_are_inverse():
    attention = MultiHeadAttention(12, 3)
    x = torch.randn(2, 5, 12)
    split = attention.split_heads(x)
    assert split.shape == (2, 3, 5, 4)
    assert torch.equal(split[:, 1], x[..., 4:8])  # head 1 holds features 4..7
    assert torch.equal(attention.merge_heads(split), x)
    with pytest.raises(ValueError, match=r"hidden divisible by num_heads=3, got \(1, 2, 10\)"):
        split_heads(torch.zeros(1, 2, 10), 3)
    with pytest.raises(ValueError, match=r"\(batch, length, hidden\).*got \(2, 12\)"):
        split_heads(torch.zeros(2, 12), 3)
    with pytest.raises(ValueError, match=r"\(batch, heads, length, head_dim\), got \(2, 5, 12\)"):
        merge_heads(x)


@pytest.mark.parametrize("length", [0, 2.5, True, "3"])
def test_causal_mask_needs_a_positive_integer_length(length):
    with pytest.raises(ValueError, match=rf"positive integer.*got {length!r}"):
        causal_mask(length)


@pytest.mark.parametrize("bias", [True, False])
def test_matches_torch_multihead_attention(bias):
    torch.manual_seed(0)
    reference = nn.MultiheadAttention(32, 4, bias=bias, batch_first=True).eval()
    ours = copy_from_torch_multihead(MultiHeadAttention(32, 4, bias=bias), reference).eval()
    x = torch.randn(3, 7, 32)
    attention_mask = torch.tensor([[1] * 7, [1] * 4 + [0] * 3, [1] * 2 + [0] * 5])
    expected, expected_weights = reference(x, x, x, key_padding_mask=~attention_mask.bool(),
                                           need_weights=True, average_attn_weights=False)
    output, weights = ours(x, padding_mask(attention_mask))
    assert (output - expected).abs().max() <= 1e-5
    assert (weights - expected_weights).abs().max() <= 1e-5
    n_params = sum(p.numel() for p in ours.parameters())
    assert n_params == sum(p.numel() for p in reference.parameters()) == 4 * 32 * 32 + (4 * 32 if bias else 0)


@pytest.fixture(scope="module")
def bert():
    from transformers import AutoTokenizer, BertModel

    from textclf_utils.models import packaged_model_path

    path = packaged_model_path()
    return AutoTokenizer.from_pretrained(path), BertModel.from_pretrained(path, attn_implementation="eager").eval()


def test_reproduces_bert_layer_0(bert):
    tokenizer, model = bert
    batch = tokenizer(["The student studies hard for the final exam.", "Short one."], padding=True, return_tensors="pt")
    layer = model.encoder.layer[0].attention
    captured = {}
    hooks = [layer.output.dense.register_forward_hook(lambda m, i, o: captured.update(dense=o)),
             layer.register_forward_hook(lambda m, i, o: captured.update(block=o[0]))]
    try:
        with torch.no_grad():
            out = model(**batch, output_hidden_states=True, output_attentions=True)
    finally:
        for hook in hooks:
            hook.remove()
    ours = copy_from_bert_attention(MultiHeadAttention(384, 12), layer).eval()
    x = out.hidden_states[0]  # the embeddings: layer 0's input
    with torch.no_grad():
        output, weights = ours(x, padding_mask(batch["attention_mask"]))
        after_norm = layer.output.LayerNorm(output + x)
    assert (output - captured["dense"]).abs().max() <= 1e-5  # attention.self + attention.output.dense
    assert (after_norm - captured["block"]).abs().max() <= 1e-5  # + residual and LayerNorm
    assert (weights - out.attentions[0]).abs().max() <= 1e-5


def test_copy_refuses_a_mismatched_layout(bert):
    _, model = bert
    with pytest.raises(ValueError, match=r"MultiHeadAttention\(384, 12\)"):
        copy_from_bert_attention(MultiHeadAttention(384, 6), model.encoder.layer[0].attention)
    with pytest.raises(ValueError, match="BERT attention module"):
        copy_from_bert_attention(MultiHeadAttention(384, 12), model.encoder.layer[0])
    with pytest.raises(ValueError, match="bias"):
        copy_from_torch_multihead(MultiHeadAttention(8, 2, bias=False), nn.MultiheadAttention(8, 2))
    with pytest.raises(ValueError, match="nn.MultiheadAttention"):
        copy_from_torch_multihead(MultiHeadAttention(8, 2), nn.Linear(8, 8))


def test_dropout_only_in_training():
    attention = MultiHeadAttention(16, 2, dropout=0.5)
    x = torch.randn(1, 6, 16)
    attention.eval()
    assert torch.equal(attention(x)[0], attention(x)[0])
    _, eval_weights = attention(x)
    attention.train()
    _, weights = attention(x)
    dropped = weights == 0
    assert dropped.any() and not dropped.all()
    # the weights kept are rescaled by 1 / (1 - p) = 2, so the expected sum stays the same
    assert torch.allclose(weights[~dropped], 2 * eval_weights[~dropped])


@pytest.mark.parametrize(
    "shapes, message",
    [
        (((2, 5, 4), (2, 5, 3), (2, 5, 3)), "d_k"),
        (((2, 5, 4), (2, 6, 4), (2, 5, 4)), "same length L_k"),
        (((2, 5, 4), (3, 5, 4), (3, 5, 4)), "leading"),
        (((2, 5, 4), (5, 4), (5, 4)), "same number"),
    ],
)
def test_mismatched_shapes_raise(shapes, message):
    query, key, value = (torch.randn(shape) for shape in shapes)
    with pytest.raises(ValueError, match=message):
        scaled_dot_product_attention(query, key, value)


def test_bad_masks_raise_saying_what_was_expected():
    query = key = value = torch.randn(2, 3, 5, 4)
    with pytest.raises(ValueError, match=r"\(5, 5\)"):
        scaled_dot_product_attention(query, key, value, mask=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match="does not broadcast"):  # broadcasting would grow the output
        scaled_dot_product_attention(query, key, value, mask=torch.ones(4, 2, 3, 5, 5, dtype=torch.bool))
    with pytest.raises(ValueError, match="boolean"):
        scaled_dot_product_attention(query, key, value, mask=torch.ones(5, 5))
    with pytest.raises(ValueError, match=r"\(batch, length\)"):
        padding_mask(torch.ones(2, 1, 5))
    with pytest.raises(ValueError, match="positive"):
        causal_mask(0)
    with pytest.raises(ValueError, match=r"\[0, 1\)"):
        scaled_dot_product_attention(query, key, value, dropout_p=1.0)


def test_bad_multihead_configuration_and_input_raise():
    with pytest.raises(ValueError, match="divisible"):
        MultiHeadAttention(384, 7)
    with pytest.raises(ValueError, match="positive"):
        MultiHeadAttention(0, 1)
    with pytest.raises(ValueError, match=r"\(batch, length, 16\)"):
        MultiHeadAttention(16, 2)(torch.randn(1, 4, 12))
    with pytest.raises(ValueError, match="does not broadcast"):
        MultiHeadAttention(16, 2)(torch.randn(3, 4, 16), torch.ones(2, 1, 1, 4, dtype=torch.bool))


# --- cost: the memory helper ---------------------------------------------------------------------

from torch.nn.attention import SDPBackend, sdpa_kernel  # noqa: E402

from textclf_utils.attention import (  # noqa: E402
    check_matches_torch_multihead,
    check_memory_growth,
    check_permutation_equivariance,
    check_shapes,
    growth_exponent,
    peak_allocated_bytes,
    run_attention_checks,
)

LENGTHS = [1024, 2048, 4096]   # above the fused kernel's block-size thresholds


def _peaks(fn, lengths=LENGTHS):
    peaks = []
    with torch.no_grad():
        for length in lengths:
            q, k, v = torch.randn(3, 1, 1, length, 16)
            peaks.append(peak_allocated_bytes(lambda: fn(q, k, v)))
    return peaks


def math_backend(q, k, v):
    with sdpa_kernel(SDPBackend.MATH):
        return F.scaled_dot_product_attention(q, k, v)


def test_peak_sees_the_scores_matrix_built_inside_one_operator():
    # the math backend is one call from Python, but it builds the (heads, L, L) scores inside it
    length, heads = 512, 4
    q, k, v = torch.randn(3, 1, heads, length, 16)
    with torch.no_grad():
        peak = peak_allocated_bytes(lambda: math_backend(q, k, v))
    assert peak >= heads * length * length * 4          # at least one float32 L×L matrix per head


def test_memory_check_tells_the_math_backend_from_the_fused_kernel():
    math_peaks, fused_peaks = _peaks(math_backend), _peaks(F.scaled_dot_product_attention)
    assert check_memory_growth(LENGTHS, math_peaks, "quadratic") > 1.7
    # fed the math backend's measurement under the claim "linear", the check fails
    with pytest.raises(AssertionError, match="not linear"):
        check_memory_growth(LENGTHS, math_peaks, "linear")
    assert check_memory_growth(LENGTHS, fused_peaks, "linear") < 1.3
    with pytest.raises(AssertionError, match="not quadratic"):
        check_memory_growth(LENGTHS, fused_peaks, "quadratic")


def test_a_measurement_blind_inside_operators_would_fail_the_quadratic_check():
    # what a top-level-only measurement reports for the math backend: the output alone, linear in L
    output_only = [16 * n * 4 for n in LENGTHS]
    with pytest.raises(AssertionError):
        check_memory_growth(LENGTHS, output_only, "quadratic")


def test_growth_exponent_and_bad_input():
    lengths = [64, 128, 256, 512]
    assert growth_exponent(lengths, [3 * n**2 for n in lengths]) == pytest.approx(2.0)
    assert growth_exponent(lengths, [5 * n + 0 for n in lengths]) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="positive"):
        growth_exponent(lengths, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="equal length"):
        growth_exponent(lengths, [1, 2])
    with pytest.raises(ValueError, match="expected"):
        check_memory_growth(lengths, [1, 2, 3, 4], "cubic")
    with pytest.raises(ValueError, match="cpu"):
        peak_allocated_bytes(lambda: None, device="meta")


# --- property checks: each catches the bug it is meant for ----------------------------------------

H, HEADS = 16, 4


class NoTranspose(MultiHeadAttention):
    """(B, L, H) -> (B, L, h, d) and no transpose: the scores are between heads, not tokens."""

    def split_heads(self, x):
        batch, length, _ = x.shape
        return x.view(batch, length, self.num_heads, self.head_dim)

    def merge_heads(self, x):
        batch, length = x.shape[:2]
        return x.reshape(batch, length, self.hidden_size)


class ViewToHeads(MultiHeadAttention):
    """A view straight to (B, h, L, d): "heads" made of pieces of several tokens."""

    def split_heads(self, x):
        batch, length, _ = x.shape
        return x.view(batch, self.num_heads, length, self.head_dim)

    def merge_heads(self, x):
        batch, _, length, _ = x.shape
        return x.reshape(batch, length, self.hidden_size)


class ConcatInput(MultiHeadAttention):
    """Concatenates the input with the attention output (2H wide) into the H -> H output projection."""

    def forward(self, x, mask=None):
        q, k, v = (self.split_heads(proj(x)) for proj in (self.query, self.key, self.value))
        context, weights = scaled_dot_product_attention(q, k, v, mask)
        return self.output(torch.cat([x, self.merge_heads(context)], dim=-1)), weights


def test_the_correct_module_passes_every_check():
    results = run_attention_checks(MultiHeadAttention(H, HEADS), H, HEADS)
    assert list(results) == ["shapes", "permutation equivariance", "equals nn.MultiheadAttention"]
    assert all(r.passed for r in results.values()), results


def test_each_check_catches_its_bug():
    assert not check_shapes(ConcatInput(H, HEADS), H, HEADS).passed
    assert "RuntimeError" in check_shapes(ConcatInput(H, HEADS), H, HEADS).detail
    no_transpose = NoTranspose(H, HEADS)
    assert not check_shapes(no_transpose, H, HEADS).passed                 # weights (B, L, h, h)
    assert check_permutation_equivariance(no_transpose, H).passed          # each token alone: still a set map
    assert not check_matches_torch_multihead(no_transpose, H, HEADS).passed
    view = ViewToHeads(H, HEADS)
    assert check_shapes(view, H, HEADS).passed                             # the right shapes...
    assert not check_permutation_equivariance(view, H).passed              # ...but tokens and features mixed
    assert not check_matches_torch_multihead(view, H, HEADS).passed


def test_reference_check_reports_modules_whose_weights_do_not_fit():
    result = check_matches_torch_multihead(nn.Linear(H, H), H, HEADS)
    assert not result.passed and "cannot load" in result.detail


# --- limits found by the sampled mutation run (scripts/mutation_sample.py, tests/MUTATION.md) -------


def test_one_head_is_allowed_and_no_head_is_refused():
    assert MultiHeadAttention(16, 1)(torch.randn(1, 3, 16))[1].shape == (1, 1, 3, 3)
    with pytest.raises(ValueError, match="positive"):
        MultiHeadAttention(16, 0)


def test_silencing_stderr_gives_the_same_stderr_back():
    import os

    from textclf_utils.attention import _stderr_silenced

    before = os.fstat(2)
    with _stderr_silenced():
        os.write(2, b"a profiler's log line\n")
    assert (os.fstat(2).st_dev, os.fstat(2).st_ino) == (before.st_dev, before.st_ino)


def test_linear_growth_limit_is_inclusive(monkeypatch):
    from textclf_utils import attention

    monkeypatch.setattr(attention, "growth_exponent", lambda *args: 1.3)
    assert check_memory_growth([1, 2], [1, 2], "linear", tolerance=0.3) == 1.3
    with pytest.raises(AssertionError, match="L\\^1.30, not linear"):
        check_memory_growth([1, 2], [1, 2], "linear", tolerance=0.2)


class UnnormalisedWeights(MultiHeadAttention):
    """Returns the attention weights doubled: right shapes, rows summing to 2."""

    def forward(self, x, mask=None):
        output, weights = super().forward(x, mask)
        return output, 2 * weights


def test_shape_check_catches_weights_that_do_not_sum_to_one():
    result = check_shapes(UnnormalisedWeights(H, HEADS), H, HEADS)
    assert not result.passed and result.detail == "attention weights' rows do not sum to 1"


def test_an_exactly_equivariant_module_passes_with_no_tolerance():
    assert check_permutation_equivariance(nn.Identity(), H, atol=0.0).passed
