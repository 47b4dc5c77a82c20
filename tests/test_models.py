import time
from pathlib import Path

import pytest
import torch

from textclf_utils import models


def test_default_is_the_packaged_bert():
    path = Path(models.resolve_model(None))
    assert (path / "config.json").is_file() and (path / "model.safetensors").is_file()
    assert models.resolve_model("all-MiniLM-L6-v2") == str(path)


def test_a_name_that_is_no_hub_id_lists_the_known_ones():
    with pytest.raises(ValueError, match="bert-base-uncased") as err:
        models.resolve_model("not a model!")
    assert models.PACKAGED_MODEL in str(err.value)


def test_hub_model_offline_fails_at_once_naming_the_default(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    started = time.perf_counter()
    with pytest.raises(models.OfflineModelError, match="all-MiniLM-L6-v2"):
        models.resolve_model("bert-base-uncased")
    assert time.perf_counter() - started < 5


def test_hub_model_offline_can_fall_back(monkeypatch, capsys):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert models.resolve_model("bert-base-uncased", fallback_to_packaged=True) == str(models.packaged_model_path())
    assert "instead of bert-base-uncased" in capsys.readouterr().out


def test_folder_without_config_is_refused(tmp_path):
    with pytest.raises(ValueError, match="config.json"):
        models.resolve_model(str(tmp_path))


def test_classifier_takes_its_labels_from_the_dataset():
    tokenizer, model = models.load_classifier(None, ["sadness", "joy", "love"])
    assert model.config.num_labels == 3
    assert model.config.id2label == {0: "sadness", 1: "joy", 2: "love"}
    assert model.config.label2id["love"] == 2
    assert tokenizer("hello world")["input_ids"][0] == tokenizer.cls_token_id


@pytest.mark.parametrize("labels, message", [(["only"], "at least two"), (["a", "a"], "unique")])
def test_bad_label_sets_are_refused(labels, message):
    with pytest.raises(ValueError, match=message):
        models.load_classifier(None, labels)


def test_model_folder_without_tokenizer_files_is_refused(tmp_path):
    from transformers import BertConfig, BertForSequenceClassification

    BertForSequenceClassification(BertConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                                             intermediate_size=8)).save_pretrained(tmp_path)
    for load in (lambda: models.load_classifier(str(tmp_path), ["a", "b"]), lambda: models.load_tokenizer(str(tmp_path))):
        with pytest.raises(ValueError, match="holds a model but no tokenizer.*save_pretrained"):
            load()
    (tmp_path / "vocab.txt").write_text("[PAD]\n[UNK]\n[CLS]\n[SEP]\n[MASK]\nhello\n")
    models.check_tokenizer_files(tmp_path)  # any vocabulary file will do here


def _tiny_saved_classifier(folder: Path, with_tokenizer: bool = True) -> Path:
    from transformers import BertConfig, BertForSequenceClassification, BertTokenizer

    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "a", "fine", "film"]
    BertForSequenceClassification(BertConfig(vocab_size=len(words), hidden_size=8, num_hidden_layers=1,
                                             num_attention_heads=2, intermediate_size=8)).save_pretrained(folder)
    if with_tokenizer:
        BertTokenizer(vocab={word: i for i, word in enumerate(words)}).save_pretrained(folder)
    return folder


def test_saved_classifier_without_tokenizer_files_is_refused(tmp_path):
    folder = _tiny_saved_classifier(tmp_path, with_tokenizer=False)
    with pytest.raises(ValueError, match="holds a model but no tokenizer"):
        models.load_saved_classifier(folder)  # transformers would build a 5-token stand-in vocabulary
    tokenizer, model = models.load_saved_classifier(_tiny_saved_classifier(tmp_path))
    assert len(tokenizer) == 8 and not model.training


def test_saved_classifier_without_config_names_config_json(tmp_path):
    (tmp_path / "notes.txt").write_text("not a model")
    with pytest.raises(ValueError, match=r"holds no config\.json.*save_pretrained"):
        models.load_saved_classifier(tmp_path)


def test_damaged_weights_name_the_file_and_what_to_do(tmp_path):
    folder = _tiny_saved_classifier(tmp_path)
    (folder / "model.safetensors").write_bytes(b"\x00garbage, not a safetensors file" * 4)
    for load in (lambda: models.load_saved_classifier(folder), lambda: models.load_classifier(str(folder), ["a", "b"])):
        with pytest.raises(ValueError, match=r"model\.safetensors is damaged.*Delete it"):
            load()


def test_label_names_given_as_one_string_are_refused():
    with pytest.raises(ValueError, match="list of class names"):
        models.load_classifier(None, "posneg")


@pytest.mark.parametrize("name, expected", [
    (None, "packaged offline; BERT architecture, 6 layers"), ("all-MiniLM-L6-v2", "packaged offline"),
    ("bert-base-uncased", "BERT-base, English, uncased (110 M parameters)"), ("/data/my-bert", "local model at /data/my-bert")])
def test_describe_model_per_kind_of_name(name, expected):
    assert expected in models.describe_model(name)


def test_the_packaged_tokenizer_and_the_one_saved_with_a_model_are_the_same(tokenizer):
    loaded = models.load_tokenizer(None)
    assert loaded.name_or_path == str(models.packaged_model_path()) and len(loaded) == 30522
    assert loaded("a fine film")["input_ids"] == tokenizer("a fine film")["input_ids"]
    _, model = models.load_classifier(None, ["n", "p"])
    assert models.tokenizer_for(model)("a fine film")["input_ids"] == tokenizer("a fine film")["input_ids"]
    with pytest.raises(ValueError, match="does not say where it was loaded from"):
        models.tokenizer_for(torch.nn.Linear(2, 2))


def test_a_tokenizer_one_token_past_the_models_vocabulary_is_refused(tokenizer):
    import copy

    from transformers import BertConfig, BertForSequenceClassification

    def model_of(vocab_size):
        model = BertForSequenceClassification(BertConfig(vocab_size=vocab_size, hidden_size=8, num_hidden_layers=1,
                                                         num_attention_heads=2, intermediate_size=8))
        model.name_or_path = tokenizer.name_or_path  # the same place: only the size can differ
        return model

    models.check_tokenizer_matches(model_of(len(tokenizer)), tokenizer)  # exactly as many: fine
    grown = copy.deepcopy(tokenizer)
    grown.add_tokens(["<new-token>"])
    with pytest.raises(ValueError, match="The tokenizer has 30,523 tokens but the model's vocabulary only 30,522"):
        models.check_tokenizer_matches(model_of(len(tokenizer)), grown)
    elsewhere = model_of(len(tokenizer))
    elsewhere.name_or_path = "/somewhere/else"
    with pytest.raises(ValueError, match="loaded from /somewhere/else but the tokenizer from"):
        models.check_tokenizer_matches(elsewhere, tokenizer)
