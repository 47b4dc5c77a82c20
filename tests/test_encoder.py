"""textclf_utils.encoder: equal to transformers' BertModel with the packaged weights, trainable, saved safely."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file
from transformers import AutoTokenizer, BertModel
from transformers.models.distilbert.modeling_distilbert import create_sinusoidal_embeddings

from textclf_utils.encoder import (
    Encoder,
    EncoderConfig,
    EncoderForSequenceClassification,
    bert_name_mapping,
    sinusoidal_position_encoding,
)
from textclf_utils.models import packaged_model_path

SENTENCES = [
    "a gripping , funny and deeply moving film .",
    "dull .",
    "the plot is not as bad as the critics say , but the acting is wooden and it drags .",
    "an odd one , with a second segment",
]
TINY = EncoderConfig(vocab_size=100, hidden_size=32, num_layers=2, num_heads=4, intermediate_size=64,
                     max_position_embeddings=40)


@pytest.fixture(scope="module")
def bert_folder():
    return packaged_model_path()


@pytest.fixture(scope="module")
def padded_batch(bert_folder):
    tokenizer = AutoTokenizer.from_pretrained(bert_folder)
    batch = tokenizer(SENTENCES[:3], padding=True, return_tensors="pt")
    pair = tokenizer(SENTENCES[3], "and this is segment two .", padding="max_length",
                     max_length=batch["input_ids"].shape[1], return_tensors="pt")
    batch = {k: torch.cat([batch[k], pair[k]]) for k in batch}
    assert (batch["attention_mask"] == 0).any() and (batch["token_type_ids"] == 1).any()
    return batch


@pytest.fixture(scope="module")
def both_models(bert_folder):
    return BertModel.from_pretrained(bert_folder).eval(), Encoder.from_pretrained_bert(bert_folder).eval()


def _compare(reference, ours, batch):
    with torch.no_grad():
        expected = reference(**batch, output_hidden_states=True)
        got = ours(**batch)
    assert len(got.hidden_states) == len(expected.hidden_states) == ours.config.num_layers + 1
    return expected, got


def test_hidden_states_and_pooled_output_equal_bert(both_models, padded_batch):
    reference, ours = both_models
    expected, got = _compare(reference, ours, padded_batch)
    real = padded_batch["attention_mask"].bool()
    for layer, (a, b) in enumerate(zip(expected.hidden_states, got.hidden_states)):
        assert (a[real] - b[real]).abs().max() <= 1e-5, f"layer {layer}, real tokens"
        # Padded positions are never attended to; their float32 rounding differs more, but not their maths.
        assert (a[~real] - b[~real]).abs().max() <= 1e-4, f"layer {layer}, padded positions"
    assert (expected.pooler_output - got.pooler_output).abs().max() <= 1e-5


def test_equal_to_bert_in_float64_everywhere_padding_included(both_models, padded_batch):
    reference, ours = (model.double() for model in both_models)
    try:
        expected, got = _compare(reference, ours, padded_batch)
        for a, b in zip(expected.hidden_states, got.hidden_states):
            assert (a - b).abs().max() <= 1e-10
        assert (expected.pooler_output - got.pooler_output).abs().max() <= 1e-10
    finally:
        for model in both_models:
            model.float()


def test_classifier_from_bert_keeps_the_encoder_and_pools_as_asked(bert_folder, padded_batch, both_models):
    _, encoder = both_models
    for pooling in ("cls", "mean"):
        model = EncoderForSequenceClassification.from_pretrained_bert(bert_folder, num_labels=3, pooling=pooling).eval()
        for name, tensor in encoder.state_dict().items():
            assert torch.equal(model.encoder.state_dict()[name], tensor), name
        with torch.no_grad():
            logits = model(**padded_batch)
            output = encoder(padded_batch["input_ids"], padded_batch["attention_mask"], padded_batch["token_type_ids"])
            pooled = model.pool(output, padded_batch["attention_mask"])
        assert logits.shape == (len(SENTENCES), 3)
        torch.testing.assert_close(logits, model.classifier(pooled))
    mask = padded_batch["attention_mask"]
    manual = [output.last_hidden_state[i, mask[i].bool()].mean(dim=0) for i in range(len(SENTENCES))]
    torch.testing.assert_close(pooled, torch.stack(manual))


def test_gradients_reach_every_parameter():
    torch.manual_seed(0)
    model = EncoderForSequenceClassification(TINY, num_labels=2, pooling="cls")
    attention_mask = torch.tensor([[1] * 7, [1] * 5 + [0] * 2, [1] * 3 + [0] * 4])
    input_ids = torch.randint(1, TINY.vocab_size, (3, 7)) * attention_mask  # [PAD] (id 0) where masked
    token_type_ids = torch.tensor([[0] * 4 + [1] * 3, [0] * 7, [0] * 2 + [1] * 5])
    logits = model(input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids)
    torch.nn.functional.cross_entropy(logits, torch.tensor([0, 1, 1])).backward()
    norms = {name: p.grad.norm().item() for name, p in model.named_parameters() if p.grad is not None}
    assert set(norms) == {name for name, _ in model.named_parameters()}
    # The key bias adds q·b to every score of a query alike, and softmax ignores a shared shift: its
    # gradient is zero up to rounding. Every other parameter must get a real gradient.
    key_biases = {name for name in norms if name.endswith("attention.key.bias")}
    assert len(key_biases) == TINY.num_layers and all(norms[name] < 1e-6 for name in key_biases)
    assert min(norm for name, norm in norms.items() if name not in key_biases) > 1e-6
    # ...but the [PAD] row of the token embeddings must not learn (padding_idx).
    assert model.encoder.embeddings.token.weight.grad[TINY.pad_token_id].abs().sum() == 0


def test_mean_pooling_leaves_only_the_pooler_without_gradient():
    model = EncoderForSequenceClassification(TINY, num_labels=2, pooling="mean")
    model(torch.randint(1, TINY.vocab_size, (2, 5))).sum().backward()
    no_gradient = {name for name, p in model.named_parameters() if p.grad is None}
    assert no_gradient == {"encoder.pooler.weight", "encoder.pooler.bias"}


def test_save_load_round_trip(tmp_path):
    torch.manual_seed(0)
    model = EncoderForSequenceClassification(TINY, num_labels=3, pooling="mean").eval()
    folder = model.save(tmp_path / "runs" / "saved")  # parent folders are made as needed
    assert json.loads((folder / "config.json").read_text())["pooling"] == "mean"
    assert model.save(folder) == folder  # and saving again over it is fine
    loaded = EncoderForSequenceClassification.load(folder).eval()
    assert (loaded.config, loaded.num_labels, loaded.pooling) == (TINY, 3, "mean")
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[name], tensor), name
    input_ids = torch.randint(1, TINY.vocab_size, (2, 6))
    with torch.no_grad():
        assert torch.equal(model(input_ids), loaded(input_ids))


def test_load_refuses_a_folder_without_the_files(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"holds no config.json: expected a folder written by .*save\(\)"):
        EncoderForSequenceClassification.load(tmp_path)
    folder = EncoderForSequenceClassification(TINY, num_labels=2).save(tmp_path / "saved")
    (folder / "model.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"holds no model.safetensors: expected a folder written by"):
        EncoderForSequenceClassification.load(folder)


@pytest.mark.parametrize("change, message", [
    ({"hidden_size": 30, "num_heads": 4}, "divisible by num_heads"),
    ({"hidden_size": 0}, "hidden_size must be a positive integer"),
    ({"num_layers": -1}, "num_layers must be a positive integer"),
    ({"num_heads": 0}, "num_heads must be a positive integer"),
    ({"vocab_size": 2.5}, "vocab_size must be a positive integer"),
    ({"intermediate_size": 0}, "intermediate_size must be a positive integer"),
    ({"max_position_embeddings": 0}, "max_position_embeddings must be a positive integer"),
    ({"type_vocab_size": True}, "type_vocab_size must be a positive integer"),
    ({"dropout": 1.0}, "dropout is a probability"),
    ({"attention_dropout": -0.1}, "attention_dropout is a probability"),
    ({"layer_norm_eps": 0.0}, "layer_norm_eps must be positive"),
    ({"initializer_range": -1.0}, "initializer_range must be positive"),
    ({"pad_token_id": 100}, "pad_token_id must be a token id"),
])
def test_bad_config_raises_a_clear_value_error(change, message):
    values = {**TINY.__dict__, **change}
    with pytest.raises(ValueError, match=message):
        EncoderConfig(**values)


@pytest.mark.parametrize("num_labels, pooling, message", [
    (1, "cls", "num_labels must be an integer ≥ 2"),
    (2, "max", "pooling must be one of"),
])
def test_bad_classifier_arguments_raise(num_labels, pooling, message):
    with pytest.raises(ValueError, match=message):
        EncoderForSequenceClassification(TINY, num_labels=num_labels, pooling=pooling)


def test_bad_inputs_raise():
    model = Encoder(TINY)
    with pytest.raises(ValueError, match="position embeddings for at most 40"):
        model(torch.ones(1, 41, dtype=torch.long))
    with pytest.raises(ValueError, match="attention_mask must have the shape"):
        model(torch.ones(2, 5, dtype=torch.long), attention_mask=torch.ones(2, 4, dtype=torch.long))
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, length\)"):
        model(torch.ones(5, dtype=torch.long))


def _checkpoint_copy(bert_folder, tmp_path, edit):
    folder = tmp_path / "bert"
    folder.mkdir()
    shutil.copy(bert_folder / "config.json", folder / "config.json")
    state = load_file(bert_folder / "model.safetensors")
    edit(state)
    save_file(state, str(folder / "model.safetensors"))
    return folder


def test_missing_tensor_is_named(bert_folder, tmp_path):
    folder = _checkpoint_copy(bert_folder, tmp_path, lambda s: s.pop("encoder.layer.3.output.dense.weight"))
    with pytest.raises(ValueError, match=r"missing tensors \['encoder.layer.3.output.dense.weight'\]"):
        Encoder.from_pretrained_bert(folder)


def test_unexpected_tensor_is_named(bert_folder, tmp_path):
    folder = _checkpoint_copy(bert_folder, tmp_path,
                              lambda s: s.update({"cls.predictions.bias": torch.zeros(s["embeddings.word_embeddings.weight"].shape[0])}))
    with pytest.raises(ValueError, match=r"unexpected tensors \['cls.predictions.bias'\]"):
        Encoder.from_pretrained_bert(folder)


def test_mis_shaped_tensor_is_named(bert_folder, tmp_path):
    folder = _checkpoint_copy(bert_folder, tmp_path, lambda s: s.update({"pooler.dense.bias": torch.zeros(7)}))
    with pytest.raises(ValueError, match=r"pooler.dense.bias has shape \(7,\)"):
        Encoder.from_pretrained_bert(folder)


def test_folder_without_weights_is_refused(tmp_path):
    with pytest.raises(FileNotFoundError, match="model.safetensors"):
        Encoder.from_pretrained_bert(tmp_path)


def test_unsupported_bert_variant_is_refused():
    config = json.loads((packaged_model_path() / "config.json").read_text())
    with pytest.raises(ValueError, match="position_embedding_type='absolute'"):
        EncoderConfig.from_bert_config({**config, "position_embedding_type": "relative_key"})
    with pytest.raises(ValueError, match="lacks the key 'hidden_size'"):
        EncoderConfig.from_bert_config({k: v for k, v in config.items() if k != "hidden_size"})


def test_name_mapping_covers_every_parameter_once():
    mapping = bert_name_mapping(TINY.num_layers)
    ours = set(Encoder(TINY).state_dict())
    assert sorted(mapping.values()) == sorted(ours)


def test_sinusoidal_encoding_matches_distilbert():
    expected = torch.empty(50, 16)
    create_sinusoidal_embeddings(50, 16, expected)
    torch.testing.assert_close(sinusoidal_position_encoding(50, 16), expected)
    with pytest.raises(ValueError, match="even"):
        sinusoidal_position_encoding(10, 15)


def test_load_names_a_damaged_weights_file(tmp_path):
    folder = EncoderForSequenceClassification(TINY, num_labels=2).save(tmp_path / "saved")
    (folder / "model.safetensors").write_bytes(b"junk" * 10)
    with pytest.raises(ValueError, match=r"model\.safetensors is damaged.*Delete it"):
        EncoderForSequenceClassification.load(folder)


def test_a_config_that_is_not_json_is_named_in_both_loaders(tmp_path):
    folder = EncoderForSequenceClassification(TINY, num_labels=2).save(tmp_path / "saved")
    (folder / "config.json").write_text("{hidden_size: 8", encoding="utf-8")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON .*save or copy the model again"):
        EncoderForSequenceClassification.load(folder)
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        Encoder.from_pretrained_bert(folder)


def test_token_ids_beyond_the_vocabulary_are_refused():
    encoder = Encoder(TINY).eval()
    with pytest.raises(ValueError, match=rf"ids from 1 to {TINY.vocab_size}, but this encoder has {TINY.vocab_size} tokens"):
        encoder(torch.tensor([[1, TINY.vocab_size]]))
    with pytest.raises(ValueError, match=r"ids from -1 to 2"):
        encoder(torch.tensor([[-1, 2]]))
    assert encoder(torch.tensor([[0, TINY.vocab_size - 1]])).last_hidden_state.shape == (1, 2, TINY.hidden_size)


def test_the_embeddings_alone_refuse_a_flat_batch():
    with pytest.raises(ValueError, match=r"input_ids must have shape \(batch, length\), got \(5,\)"):
        Encoder(TINY).embeddings(torch.ones(5, dtype=torch.long))


def test_a_bert_config_without_the_optional_keys_gets_berts_defaults():
    config = EncoderConfig.from_bert_config({"vocab_size": 100, "hidden_size": 8, "num_hidden_layers": 1,
                                             "num_attention_heads": 2, "intermediate_size": 16,
                                             "max_position_embeddings": 16, "type_vocab_size": 2})
    assert (config.dropout, config.attention_dropout, config.layer_norm_eps, config.initializer_range,
            config.pad_token_id) == (0.1, 0.1, 1e-12, 0.02, 0)
