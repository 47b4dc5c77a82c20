import pytest
import torch

from textclf_utils import models
from textclf_utils.pooling import MeanPoolingBertForSequenceClassification, classifier_class, mean_pool


def test_mean_pool_averages_only_the_real_tokens():
    hidden = torch.arange(36, dtype=torch.float32).reshape(3, 3, 4)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1], [1, 0, 0]])
    pooled = mean_pool(hidden, mask)
    assert torch.equal(pooled[0], (hidden[0, 0] + hidden[0, 1]) / 2)
    assert torch.equal(pooled[1], hidden[1].mean(dim=0))
    assert torch.equal(pooled[2], hidden[2, 0])  # one real token: the mean is that token
    hidden[0, 2] = 1e6  # what sits under padding does not count
    assert torch.equal(mean_pool(hidden, mask), pooled)


def test_mean_pool_of_an_all_padding_row_is_zero_not_nan():
    pooled = mean_pool(torch.ones(1, 3, 2), torch.zeros(1, 3))
    assert torch.equal(pooled, torch.zeros(1, 2))


def test_classifier_class_per_pooling():
    assert classifier_class("mean") is MeanPoolingBertForSequenceClassification
    assert classifier_class("cls").__name__ == "AutoModelForSequenceClassification"
    with pytest.raises(ValueError, match=r"pooling must be one of \('cls', 'mean'\), got 'max'"):
        classifier_class("max")


@pytest.fixture(scope="module")
def mean_classifier(tokenizer):
    """A 2-layer, 32-wide mean-pooling BERT with random weights and the packaged tokenizer: fast on a CPU."""
    from transformers import BertConfig

    torch.manual_seed(0)
    config = BertConfig(vocab_size=tokenizer.vocab_size, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
                        intermediate_size=64, num_labels=2)
    return tokenizer, MeanPoolingBertForSequenceClassification(config).eval()


def test_load_classifier_builds_the_mean_pooling_class_from_the_packaged_bert():
    _, model = models.load_classifier(None, ["negative", "positive"], pooling="mean")
    assert type(model) is MeanPoolingBertForSequenceClassification and model.config.num_labels == 2


def test_the_mean_classifier_reads_the_mean_of_the_last_layer_not_the_pooler(mean_classifier):
    tokenizer, model = mean_classifier
    assert model.bert.pooler is None and model.config.classifier_pooling == "mean"
    batch = tokenizer(["a fine film", "a dull, overlong and tiresome film"], padding=True, return_tensors="pt")
    labels = torch.tensor([1, 0])
    with torch.no_grad():
        out = model(**batch, labels=labels)
        last = model.bert(**batch).last_hidden_state
    expected = model.classifier(mean_pool(last, batch["attention_mask"]))
    torch.testing.assert_close(out.logits, expected)
    torch.testing.assert_close(out.loss, torch.nn.functional.cross_entropy(expected, labels))
    with torch.no_grad():  # the padded shorter sentence scores as it does alone
        alone = model(**tokenizer(["a fine film"], return_tensors="pt")).logits
    torch.testing.assert_close(alone[0], out.logits[0], atol=1e-5, rtol=1e-5)


def test_without_an_attention_mask_every_token_counts(mean_classifier):
    tokenizer, model = mean_classifier
    batch = tokenizer(["one two three"], return_tensors="pt")
    with torch.no_grad():
        with_mask = model(**batch).logits
        without = model(input_ids=batch["input_ids"]).logits
    torch.testing.assert_close(without, with_mask)
    assert model(input_ids=batch["input_ids"]).loss is None
    embeds = model.bert.embeddings.word_embeddings(batch["input_ids"])
    with torch.no_grad():  # token vectors given directly, without a mask, count every position too
        torch.testing.assert_close(model(inputs_embeds=embeds).logits, with_mask)


def test_a_saved_mean_classifier_comes_back_as_one(mean_classifier, tmp_path):
    tokenizer, model = mean_classifier
    model.save_pretrained(tmp_path)
    tokenizer.save_pretrained(tmp_path)
    _, loaded = models.load_saved_classifier(tmp_path)
    assert type(loaded) is MeanPoolingBertForSequenceClassification
    batch = tokenizer(["a fine film"], return_tensors="pt")
    with torch.no_grad():
        torch.testing.assert_close(loaded(**batch).logits, model(**batch).logits)


def test_mean_pooling_is_refused_for_a_model_that_is_not_bert(tmp_path):
    from transformers import DistilBertConfig

    DistilBertConfig(vocab_size=100, dim=8, n_layers=1, n_heads=2, hidden_dim=8).save_pretrained(tmp_path)
    with pytest.raises(ValueError, match="pooling='mean' is written for BERT-architecture models.*Use pooling='cls'"):
        models.load_classifier(str(tmp_path), ["a", "b"], pooling="mean")
