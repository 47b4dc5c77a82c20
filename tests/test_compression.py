"""Tests of textclf_utils.compression: int8 linears (eager and torchao), vocabulary pruning, int8 embeddings,
size on disk, and the end-to-end benchmark."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets import Dataset
from transformers import BertConfig, BertForSequenceClassification

from textclf_utils import compression, distill

pytestmark = pytest.mark.usefixtures("one_thread")  # tiny models: one thread is fastest

TEXTS = ["a fine film", "dull and far too long", "it is what it is", "the cast carries a thin plot"]


def tiny_bert(layers: int = 2, seed: int = 0) -> BertForSequenceClassification:
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=30522, hidden_size=32, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=64, num_labels=2)
    return BertForSequenceClassification(config).eval()


def logits(model, tokenizer, texts=TEXTS):
    return distill.predict_logits(model, tokenizer, texts, 32)


def linear_weights(model) -> int:
    return sum(m.weight.numel() for m in model.modules() if isinstance(m, torch.nn.Linear))


def test_eager_int8_shrinks_the_linears_keeps_the_head_in_float_and_the_predictions():
    model = tiny_bert()
    quantized = compression.quantize_int8(model)
    assert len(compression._quantized_linears(quantized)) == 2 * 6 + 1  # q, k, v, out, in, out per layer; pooler
    assert type(quantized.classifier) is torch.nn.Linear  # kept in float32
    assert len(compression._quantized_linears(compression.quantize_int8(model, keep_float=()))) == 2 * 6 + 2
    assert compression.count_parameters(quantized) == compression.count_parameters(model)
    stored = compression._storable_state(quantized)
    int8 = sum(t.numel() for t in stored.values() if t.dtype == torch.int8)
    assert int8 == linear_weights(model) - model.classifier.weight.numel()
    payload = sum(t.numel() * t.element_size() for t in stored.values())
    size = compression.size_on_disk_mb(quantized) * 1e6
    assert payload <= size < payload + 200 * len(stored)  # the tensors plus a small JSON header
    assert compression.size_on_disk_mb(model) * 1e6 - size > 2.5 * int8  # 4 bytes -> 1 byte per weight
    assert type(model.bert.encoder.layer[0].attention.self.query) is torch.nn.Linear  # the input is untouched


def test_per_channel_scales_follow_each_row_and_err_less():
    model = tiny_bert()
    with torch.no_grad():  # one output row 100 times larger: one scale per tensor wastes the others' range
        model.bert.encoder.layer[0].intermediate.dense.weight[0] *= 100
    original = model.bert.encoder.layer[0].intermediate.dense.weight[1:]
    error = {}
    for per_channel in (False, True):
        weight = compression.quantize_int8(model, per_channel=per_channel).bert.encoder.layer[0].intermediate.dense.weight()
        assert (weight.qscheme() == torch.per_channel_affine) == per_channel
        error[per_channel] = (weight.dequantize()[1:] - original).abs().max()
    assert error[True] < error[False] / 20  # the ordinary rows keep their own fine scale
    stored = compression._storable_state(compression.quantize_int8(model, per_channel=True))
    assert stored["bert.encoder.layer.0.intermediate.dense._packed_params._packed_params.weight_scale"].shape == (64,)


def test_torchao_int8_keeps_predictions_and_stores_int8(tokenizer):
    pytest.importorskip("torchao")
    model = tiny_bert()
    quantized = compression.quantize_int8_torchao(model)
    assert type(quantized.classifier.weight) is torch.nn.Parameter  # the head stays float
    assert type(quantized.bert.encoder.layer[0].attention.self.query.weight).__name__ != "Parameter"
    assert (logits(quantized, tokenizer) - logits(model, tokenizer)).abs().max() < 0.05
    stored = compression._storable_state(quantized)
    int8 = sum(t.numel() for name, t in stored.items() if name.endswith(".qdata") and t.dtype == torch.int8)
    assert int8 == linear_weights(model) - model.classifier.weight.numel()
    assert compression.size_on_disk_mb(model) - compression.size_on_disk_mb(quantized) > 2.5 * int8 / 1e6


def test_a_pruned_vocabulary_gives_the_same_logits_for_kept_tokens_and_unk_for_the_rest(tokenizer):
    model = tiny_bert()
    keep = compression.used_token_ids(tokenizer, TEXTS[:2], 32)
    assert set(tokenizer.all_special_ids) <= set(keep) and keep == sorted(keep)
    pruned = compression.prune_vocabulary(model, keep, tokenizer.unk_token_id)
    assert pruned.model.get_input_embeddings().num_embeddings == len(keep) < 30
    assert torch.allclose(logits(pruned, tokenizer, TEXTS[:2]), logits(model, tokenizer, TEXTS[:2]), atol=1e-5)
    # a text with words the pruned model dropped reads them as [UNK]
    unknown = " ".join(tokenizer.unk_token if i not in keep else tokenizer.convert_ids_to_tokens(i)
                       for i in tokenizer(TEXTS[2], add_special_tokens=False)["input_ids"])
    assert torch.allclose(logits(pruned, tokenizer, [TEXTS[2]]), logits(model, tokenizer, [unknown]), atol=1e-5)
    saved = (compression.size_on_disk_mb(model) - compression.size_on_disk_mb(pruned)) * 1e6
    assert saved == pytest.approx((30522 - len(keep)) * 32 * 4 - 30522 * 4, rel=0.01)  # rows gone; a 4-byte lookup
    with pytest.raises(ValueError, match="must hold the \\[UNK\\] id"):
        compression.prune_vocabulary(model, [0, 101, 102], tokenizer.unk_token_id)
    with pytest.raises(ValueError, match="token ids in 0..30521"):
        compression.prune_vocabulary(model, [100, 40000], tokenizer.unk_token_id)
    with pytest.raises(ValueError, match="texts is empty"):
        compression.used_token_ids(tokenizer, [], 32)
    with pytest.raises(ValueError, match="max_length must be an integer of at least 2.*got 0"):
        compression.used_token_ids(tokenizer, ["a fine film"], max_length=0)
    cut = compression.used_token_ids(tokenizer, ["a fine film about zebras"], max_length=4)  # [CLS] a fine [SEP]
    assert set(tokenizer("zebras", add_special_tokens=False)["input_ids"]).isdisjoint(cut)


def test_int8_embeddings_are_a_quarter_of_the_bytes_and_close(tokenizer):
    model = tiny_bert()
    quantized = compression.quantize_embeddings(model)
    table = quantized.get_input_embeddings()
    assert isinstance(table, compression.Int8Embedding) and table.weight_int8.dtype == torch.int8
    weight = model.get_input_embeddings().weight
    restored = table(torch.arange(weight.shape[0]))
    assert ((restored - weight).abs() <= table.scale[:, None] / 2 + 1e-7).all()  # within half a step per row
    nonzero = weight.abs().amax(dim=1) > 0  # (the padding row is all zeros)
    assert (table.weight_int8[nonzero].abs().amax(dim=1) == 127).all()  # each row's largest weight: the whole range
    assert (logits(quantized, tokenizer) - logits(model, tokenizer)).abs().max() < 0.02
    saved = (compression.size_on_disk_mb(model) - compression.size_on_disk_mb(quantized)) * 1e6
    assert saved == pytest.approx(3 * weight.numel() - 4 * weight.shape[0], rel=0.01)  # 4 -> 1 byte, plus scales
    assert compression.count_parameters(quantized) == compression.count_parameters(model)
    pruned = compression.quantize_embeddings(compression.prune_vocabulary(
        model, compression.used_token_ids(tokenizer, TEXTS, 32), tokenizer.unk_token_id))
    assert isinstance(pruned.model.get_input_embeddings(), compression.Int8Embedding)  # inside the wrapper
    with pytest.raises(ValueError, match="quantized already"):
        compression.quantize_embeddings(quantized)


def test_end_to_end_speed_with_a_fake_clock_times_the_tokenizer_too(tokenizer, monkeypatch):
    ticks = iter(np.arange(0.0, 1000.0, 0.5))  # every call of the clock is 0.5 s after the last
    monkeypatch.setattr(compression.time, "perf_counter", lambda: float(next(ticks)))
    calls = []
    counting = lambda texts, **kwargs: calls.append(len(texts)) or tokenizer(texts, **kwargs)  # noqa: E731
    counting.model_max_length = tokenizer.model_max_length
    speed = compression.measure_speed(tiny_bert(), counting, ["a text"] * 8, 16, batch_size=4, latency_examples=4,
                                      repeats=3, warmup=1)
    # each timed pass takes 0.5 s: 8 texts in batches of 4 -> 16 texts/s; 4 texts one by one -> 125 ms each
    assert speed == {"throughput": pytest.approx(16.0), "latency_ms": pytest.approx(125.0)}
    assert calls == [4, 4] * 4 + [1] * 4 * 4  # the tokenizer ran inside every pass, warm-up included
    with pytest.raises(ValueError, match="warmup must be an integer >= 0"):
        compression.measure_speed(tiny_bert(), tokenizer, ["a text"] * 8, 16, batch_size=4, latency_examples=4,
                                  warmup=-1)
    with pytest.raises(ValueError, match="texts is empty"):
        compression.texts_per_second(len, [])
    with pytest.raises(ValueError, match="at least 64 texts"):
        compression.measure_speed(tiny_bert(), tokenizer, ["one"], 16)


def test_benchmark_gives_ratios_to_the_reference(tokenizer):
    data = Dataset.from_dict({"text": [f"example number {i} of the set" for i in range(8)], "label": [0, 1] * 4})
    threads = torch.get_num_threads()
    models = {"big": tiny_bert(layers=4), "small": distill.layer_dropped_copy(tiny_bert(layers=4))}
    table = compression.benchmark_classifiers(models, tokenizer, data, reference="big", max_length=16, repeats=2,
                                              latency_examples=4, batch_size=4, num_threads=1, progress=False)
    assert list(table.index) == ["big", "small"]
    assert table.loc["big", ["accuracy_kept", "smaller", "faster", "faster_latency"]].tolist() == [1, 1, 1, 1]
    assert table.loc["small", "parameters"] < table.loc["big", "parameters"]
    assert table.loc["small", "smaller"] > 1
    assert (table[["latency_ms", "throughput", "size_mb"]] > 0).all().all()
    with pytest.raises(ValueError, match="reference"):
        compression.benchmark_classifiers(models, tokenizer, data, reference="teacher", max_length=16)
    assert torch.get_num_threads() == threads  # restored
    with pytest.raises(ValueError, match="num_threads"):
        compression.benchmark_classifiers(models, tokenizer, data, reference="big", max_length=16, num_threads=0)


def test_pruning_needs_a_model_with_token_embeddings_and_the_benchmark_needs_labels(tokenizer):
    with pytest.raises(TypeError, match=r"get_input_embeddings\(\).*got a Linear"):
        compression.prune_vocabulary(torch.nn.Linear(2, 2), [0, 1], 0)
    unlabelled = Dataset.from_dict({"text": TEXTS, "y": [0, 1, 0, 1]})
    with pytest.raises(ValueError, match=r"benchmark dataset has no \['label'\] column.*rename_column"):
        compression.benchmark_classifiers({"a": tiny_bert()}, tokenizer, unlabelled, reference="a", max_length=16,
                                          progress=False)
