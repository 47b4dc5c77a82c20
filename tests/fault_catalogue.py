"""The fault cases of ``tests/test_faults.py``: bad inputs and faults, each tried on tiny inputs, with the answer
the package must give. Each case is one line of data: an area, a name, a description, the call, and what
must happen.

- ``expect_error(name, description, call, expect)``: bad input. It behaves well (``clear``) when package code
  (the innermost frame is in textclf_utils/ or scripts/; an argparse usage error of a script counts too)
  raises one of the package's own classes or ValueError, TypeError, KeyError, FileNotFoundError,
  FileExistsError, NotADirectoryError, PermissionError, RuntimeError, FloatingPointError, TimeoutError or
  AssertionError, whose message matches the regular expression ``expect`` (the argument's name, the value, the
  file ...). Otherwise it is ``vague`` (package code, another type or without ``expect`` in the message),
  ``raw`` (raised from inside a library with no package message) or ``silent`` (no error).
- ``expect_good(name, description, check, loss=False)``: a fault where carrying on (repairing, keeping,
  accepting) is right. ``check()`` returns ``None`` when it behaved well, else a sentence saying what went
  wrong: ``bad``, or ``data loss`` for cases (``loss=True``) where something existing was overwritten or deleted.

Tiny shared inputs: random BERTs 16 wide, a handful of rows, temporary folders; nothing is downloaded.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
import signal
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))
if str(ROOT / "scripts") not in sys.path:
    sys.path.insert(0, str(ROOT / "scripts"))  # the scripts' cases import them as modules

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402


import textclf_utils  # noqa: E402

# Where package code runs from: the imported textclf_utils (a copy of it, under mutation testing) and the scripts.
PACKAGE_DIRS = (str(Path(textclf_utils.__file__).resolve().parent) + os.sep, str(ROOT / "scripts") + os.sep)
CLEAR_TYPES = (ValueError, TypeError, KeyError, FileNotFoundError, FileExistsError, NotADirectoryError,
               PermissionError, RuntimeError, FloatingPointError, TimeoutError, AssertionError)
PROBE_LIMIT_S = 60


# ---------------------------------------------------------------------------------------------
# The catalogue


@dataclass
class Probe:
    area: str
    name: str
    description: str
    call: Callable[[], Any]
    expect: str | None = None  # regex the message must match (error probes)
    kind: str = "error"  # "error" or "good"
    loss: bool = False  # a "good" probe about data loss


@dataclass
class Result:
    area: str
    name: str
    description: str
    outcome: str
    well: bool
    detail: str
    seconds: float
    kind: str = field(default="error")


PROBES: list[Probe] = []
AREA = ""


def area(name: str) -> None:
    global AREA
    AREA = name


def expect_error(name: str, description: str, call: Callable[[], Any], expect: str) -> None:
    PROBES.append(Probe(AREA, name, description, call, expect, "error"))


def expect_good(name: str, description: str, check: Callable[[], str | None], loss: bool = False) -> None:
    PROBES.append(Probe(AREA, name, description, check, None, "good", loss))


# ---------------------------------------------------------------------------------------------
# Tiny shared inputs (built once, lazily)

_CACHE: dict[str, Any] = {}


def cached(fn):
    def wrapper():
        if fn.__name__ not in _CACHE:
            _CACHE[fn.__name__] = fn()
        return _CACHE[fn.__name__]
    wrapper.__name__ = fn.__name__
    return wrapper


@cached
def tok():
    from textclf_utils.models import load_tokenizer
    return load_tokenizer(None)


def bert(num_labels: int = 2, vocab: int | None = None, layers: int = 2, seed: int = 0, hidden: int = 16):
    """A tiny random BertForSequenceClassification (16 wide, 64 positions)."""
    from transformers import BertConfig, BertForSequenceClassification
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=vocab or tok().vocab_size, hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=32, max_position_embeddings=64,
                        num_labels=num_labels)
    return BertForSequenceClassification(config)


def nan_bert(num_labels: int = 2):
    """A tiny BERT whose classifier bias is NaN: every loss is NaN from the first step."""
    model = bert(num_labels)
    with torch.no_grad():
        model.classifier.bias.fill_(float("nan"))
    return model


TEXTS = ["a fine film", "dull and slow", "great acting", "boring plot", "loved it", "hated it", "superb", "awful"]
LABELS = [1, 0, 1, 0, 1, 0, 1, 0]


def ds(texts=None, labels=None, **columns):
    """A tiny datasets.Dataset with text/label columns (or the columns given)."""
    from datasets import Dataset
    if columns:
        return Dataset.from_dict(columns)
    return Dataset.from_dict({"text": list(TEXTS if texts is None else texts),
                              "label": list(LABELS if labels is None else labels)})


def tmpdir() -> Path:
    path = Path(tempfile.mkdtemp(prefix="probe-"))
    _TMP.append(path)
    return path


_TMP: list[Path] = []


def write(path: Path, content: str | bytes, encoding: str = "utf-8") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content, encoding=encoding)
    return path


def csv_file(content: str | bytes, name: str = "data.csv", encoding: str = "utf-8") -> Path:
    return write(tmpdir() / name, content, encoding)


@contextlib.contextmanager
def env(**values):
    """Set (str) or unset (None) environment variables for the duration."""
    old = {k: os.environ.get(k) for k in values}
    for k, v in values.items():
        if v is None:
            os.environ.pop(k, None)
        else:
            os.environ[k] = v
    try:
        yield
    finally:
        for k, v in old.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


@contextlib.contextmanager
def patched(obj, name, value):
    old = getattr(obj, name)
    setattr(obj, name, value)
    try:
        yield
    finally:
        setattr(obj, name, old)


def saved_model_dir(with_tokenizer: bool = True, model=None) -> Path:
    folder = tmpdir() / "model"
    (model or bert()).save_pretrained(folder)
    if with_tokenizer:
        tok().save_pretrained(folder)
    return folder


def corrupt_weights(folder: Path) -> Path:
    (folder / "model.safetensors").write_bytes(b"\x00garbage, not a safetensors file" * 4)
    return folder


def tiny_profile(max_length: int = 32):
    from textclf_utils.config import Profile
    return Profile(name="smoke", train_examples=16, eval_examples=8, epochs=1, max_length=max_length,
                   batch_size=4, model=None, description="probe")


def mirror_dir() -> Path:
    return Path(os.environ.get("TEXTCLF_DATA_DIR") or ROOT.parent / "shared" / "data")


# ---------------------------------------------------------------------------------------------
# data: the course's datasets and a user's CSV/TSV

def _data():
    from textclf_utils import data
    return data


def load_csv(path, *args, **kwargs):
    return _data().load_csv_dataset(path, *args, **kwargs)


area("data")
expect_error("csv_unquoted_comma", "a text with an unquoted comma shifts a field",
             lambda: load_csv(csv_file("text,label\nfine,pos\ngreat, really good,pos\n"), "text", "label"),
             r"line 3")
expect_error("csv_header_none_no_names", "header=None without column_names",
             lambda: load_csv(csv_file("fine,pos\nbad,neg\n"), "text", "label", header=None), r"column_names")
expect_good("csv_header_none_with_names", "a headerless file with header=None + column_names keeps its first row",
            lambda: None if len(load_csv(csv_file("fine,pos\nbad,neg\n"), "text", "label", header=None,
                                         column_names=["text", "label"])["train"]) == 2 else "first row lost")
expect_error("csv_header_1", "header=1 (only 0 or None are supported)",
             lambda: load_csv(csv_file("text,label\nfine,pos\n"), "text", "label", header=1), r"header")
expect_error("csv_names_with_header", "column_names given with header=0",
             lambda: load_csv(csv_file("text,label\nfine,pos\n"), "text", "label", column_names=["text", "label"]),
             r"column_names")
expect_error("csv_duplicate_names", "duplicate column_names",
             lambda: load_csv(csv_file("a,b\n"), "text", "label", header=None, column_names=["text", "text"]),
             r"column_names")
expect_error("csv_same_columns", "text_column == label_column",
             lambda: load_csv(csv_file("text,label\nfine,pos\n"), "text", "text"), r"text_column")
expect_error("csv_duplicate_label_names", "label_names with a duplicate",
             lambda: load_csv(csv_file("text,label\nfine,pos\n"), "text", "label", label_names=["pos", "pos"]),
             r"label_names")
expect_error("csv_latin1_default_encoding", "a Latin-1 file read as UTF-8",
             lambda: load_csv(csv_file("text,label\ncaf\xe9 cr\xe8me,pos\nbad,neg\n", encoding="latin-1"),
                              "text", "label"), r"encoding")
expect_good("csv_latin1_given", "a Latin-1 file with encoding='latin-1' reads its accents",
            lambda: None if load_csv(csv_file("text,label\ncaf\xe9,pos\n", encoding="latin-1"), "text", "label",
                                     encoding="latin-1")["train"][0]["text"] == "caf\xe9" else "accent garbled")
expect_error("csv_zero_bytes", "a 0-byte file", lambda: load_csv(csv_file(b""), "text", "label"), r"empty|0 bytes")
expect_error("csv_blank_lines", "a file of blank lines only",
             lambda: load_csv(csv_file("\n\n  \n"), "text", "label"), r"empty|blank|no rows|column")
expect_error("csv_header_only", "a file with its header row and no data rows",
             lambda: load_csv(csv_file("text,label\n", name="only_header.csv"), "text", "label"),
             r"only_header\.csv.*no data rows")
expect_error("csv_header_only_in_mapping", "one split of a {split: path} mapping with a header and no rows",
             lambda: load_csv({"train": csv_file("text,label\nfine,pos\n"),
                               "test": csv_file("text,label\r\n", name="test.csv")}, "text", "label"),
             r"test\.csv.*no data rows")
expect_error("csv_missing_file", "a path that does not exist",
             lambda: load_csv(tmpdir() / "nope.csv", "text", "label"), r"nope\.csv")
expect_error("csv_path_is_folder", "a folder passed as the file",
             lambda: load_csv(tmpdir(), "text", "label"), r"probe-")
expect_error("csv_no_text_column", "text_column not in the header",
             lambda: load_csv(csv_file("sentence,label\nfine,pos\n"), "text", "label"), r"text")
expect_error("csv_empty_text", "a row with an empty text",
             lambda: load_csv(csv_file("text,label\nfine,pos\n ,neg\n"), "text", "label"), r"empty text.*3")
expect_error("csv_missing_label", "a row without a label",
             lambda: load_csv(csv_file("text,label\nfine,pos\nbad,\n"), "text", "label"), r"missing label.*3")
expect_error("csv_label_not_in_names", "a label outside label_names",
             lambda: load_csv(csv_file("text,label\nfine,pos\nbad,meh\n"), "text", "label",
                              label_names=["neg", "pos"]), r"meh")
expect_error("csv_unclosed_quote", "an unclosed quote swallows the rest of the file",
             lambda: load_csv(csv_file('text,label\n"fine,pos\nbad,neg\nok,pos\n'), "text", "label"),
             r"data\.csv")
expect_error("csv_nul_byte", "a NUL byte inside the file",
             lambda: load_csv(csv_file(b"text,label\nfi\x00ne,pos\nbad,neg\n"), "text", "label"),
             r"NUL|\\x00|null|parsed")
expect_error("csv_wrong_sep", "sep=';' for a comma-separated file",
             lambda: load_csv(csv_file("text,label\nfine,pos\n"), "text", "label", sep=";"), r"column")
expect_error("csv_empty_sep", "sep='' (not one character)",
             lambda: load_csv(csv_file("text,label\nfine,pos\n"), "text", "label", sep=""), r"sep")
expect_error("csv_bad_encoding_name", "encoding='no-such-codec'",
             lambda: load_csv(csv_file("text,label\nfine,pos\n"), "text", "label", encoding="no-such-codec"),
             r"encoding|no-such-codec")
expect_error("csv_path_list", "a list of paths instead of a {split: path} mapping",
             lambda: load_csv([str(csv_file("text,label\nfine,pos\n"))], "text", "label"), r"path|mapping")
expect_error("csv_empty_mapping", "an empty {split: path} mapping",
             lambda: load_csv({}, "text", "label"), r"empty mapping")


def _evaluate_on_a_separately_loaded_file():
    from textclf_utils import training

    train = load_csv(csv_file("text,label\na,cat\nb,dog\nc,emu\n"), "text", "label")["train"]
    test = load_csv(csv_file("text,label\nd,dog\ne,emu\n"), "text", "label")["train"]
    model = bert(num_labels=3)
    model.config.id2label = dict(enumerate(train.features["label"].names))  # as load_classifier names them
    return training.evaluate_classifier(model, tok(), test, max_length=16)


expect_error("csv_ids_separate_files_evaluated", "a model trained on one file, evaluated on a file loaded alone",
             _evaluate_on_a_separately_loaded_file, r"label_names")


def _train_on_separately_loaded_files():
    from textclf_utils import training

    train = load_csv(csv_file("text,label\na,cat\nb,dog\nc,emu\n"), "text", "label")["train"]
    validation = load_csv(csv_file("text,label\nd,dog\ne,emu\n"), "text", "label")["train"]
    model = bert(num_labels=3)
    model.config.id2label = dict(enumerate(train.features["label"].names))
    return training.train_classifier(model, tok(), train, validation, epochs=1, batch_size=2, max_length=16, learning_rate=1e-3,
                                     progress=False)


expect_error("csv_ids_separate_files_trained", "training on one file, validating on a file loaded alone (where "
             "'dog' has another id)", _train_on_separately_loaded_files, r"label_names")


def _mapping_ids():
    folder = tmpdir()
    write(folder / "train.csv", "text,label\na,cat\nb,dog\nc,emu\n")
    write(folder / "test.csv", "text,label\nd,dog\ne,emu\n")
    d = load_csv({"train": folder / "train.csv", "test": folder / "test.csv"}, "text", "label")
    return None if d["train"].features["label"].names == d["test"].features["label"].names else "label maps differ"


expect_good("csv_ids_mapping", "a {split: path} mapping shares one label map", _mapping_ids)
expect_good("csv_bom", "a UTF-8 byte-order mark does not stick to the first column's name",
            lambda: None if load_csv(csv_file("\ufefftext,label\nfine,pos\n"), "text", "label") else "failed")
expect_good("tsv_by_suffix", "a .tsv file is split on tabs by default",
            lambda: None if load_csv(csv_file("text\tlabel\nfine, really\tpos\n", name="d.tsv"), "text",
                                     "label")["train"][0]["text"] == "fine, really" else "wrong split")
expect_good("csv_int_label_names", "integer label_names=[0, 1] match the file's 0/1 labels",
            lambda: None if load_csv(csv_file("text,label\na,1\nb,0\n"), "text", "label",
                                     label_names=[0, 1])["train"]["label"] == [1, 0] else "ids wrong")
expect_error("dataset_unknown", "load_course_dataset('imdb')",
             lambda: _data().load_course_dataset("imdb"), r"imdb")
expect_error("dataset_name_none", "load_course_dataset(None)",
             lambda: _data().load_course_dataset(None), r"name|None|dataset")
expect_error("split_bad_fraction", "split_dataset(validation_size=1.5)",
             lambda: _data().split_dataset(ds(), 1.5, 0.2), r"validation_size")
expect_error("subsample_negative", "stratified_subsample(n=-3)",
             lambda: _data().stratified_subsample(ds(), -3), r"\bn\b|-3")
expect_error("subsample_zero", "stratified_subsample(n=0)",
             lambda: _data().stratified_subsample(ds(), 0), r"\bn\b|0")
expect_error("stratified_rows_too_many", "stratified_rows(labels of 8, n=20)",
             lambda: _data().stratified_rows(LABELS, 20), r"20")
expect_error("leak_free_lengths", "leak_free_sst2_split with 3 texts and 2 labels",
             lambda: _data().leak_free_sst2_split(["a b", "c d", "e f"], [0, 1], validation_size=1), r"labels|length")
expect_error("verify_unknown_file", "verify_file for a file sst2 does not have",
             lambda: _data().verify_file(csv_file("x"), "sst2", "nope.tsv"), r"nope\.tsv")


def _corrupt_download_cache():
    data = _data()
    cache = tmpdir()
    good = (mirror_dir() / "sms_spam" / "SMSSpamCollection").read_bytes()
    cached_file = write(cache / "sms_spam" / "SMSSpamCollection", good[:-10])
    with env(TEXTCLF_DATA_DIR=None, TEXTCLF_CACHE_DIR=str(cache), TEXTCLF_OFFLINE="1"):
        try:
            data.locate_files("sms_spam")
        except data.DataUnavailableError as err:
            if "corrupt" not in str(err):
                return f"DataUnavailableError does not say the cached copy was corrupt: {err}"
            return None if not cached_file.exists() else "corrupt cached file kept"
    return "a truncated cached file was accepted"


expect_good("download_cache_corrupt", "a truncated cached download is refused, deleted and reported",
            _corrupt_download_cache)


def _corrupt_mirror_kept():
    data = _data()
    mirror = tmpdir()
    good = (mirror_dir() / "sms_spam" / "SMSSpamCollection").read_bytes()
    bad = write(mirror / "sms_spam" / "SMSSpamCollection", good[:-10])
    with env(TEXTCLF_DATA_DIR=str(mirror), TEXTCLF_CACHE_DIR=str(tmpdir()), TEXTCLF_OFFLINE="1"):
        try:
            data.locate_files("sms_spam")
            return "a corrupt mirror file was accepted"
        except data.ChecksumError:
            pass
    return None if bad.exists() and bad.read_bytes() == good[:-10] else "the teacher's mirror file was deleted"


expect_good("mirror_corrupt_not_deleted", "a corrupt file in the read-only mirror is refused but never deleted",
            _corrupt_mirror_kept, loss=True)


class _SlowResponse:
    headers = {"Content-Length": "400"}

    def __init__(self):
        self.body = io.BytesIO(b"x" * 400)

    def read(self, n):
        time.sleep(0.01)
        return self.body.read(4)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _stalled_download():
    import dataclasses
    data = _data()
    spec = data.DATASETS["emotion"]
    file = dataclasses.replace(spec.files[1], url="http://example.invalid/val.txt")
    started = time.perf_counter()
    with patched(data, "DOWNLOAD_DEADLINE_S", 0.05), \
            patched(data.urllib.request, "urlopen", lambda url, timeout: _SlowResponse()), \
            patched(data, "hub_is_reachable", lambda *a, **k: False):
        try:
            data._download(file, spec, tmpdir() / "val.txt")
        except data.DataUnavailableError as err:
            took = time.perf_counter() - started
            return None if took < 1.0 and "took more than" in str(err) else f"stopped after {took:.1f}s: {err}"
    return "a trickling download never stopped"


expect_good("download_stall_deadline", "a download trickling bytes stops at the overall deadline", _stalled_download)


def _unwritable_download_cache():
    data = _data()
    blocker = write(tmpdir() / "file", "a file where the cache folder should be")
    with env(TEXTCLF_DATA_DIR=None, TEXTCLF_CACHE_DIR=str(blocker), TEXTCLF_OFFLINE=None), \
            patched(data, "hub_is_reachable", lambda *a, **k: False):
        data.locate_files("sms_spam")


expect_error("download_cache_unwritable", "TEXTCLF_CACHE_DIR is a file (cache cannot be created)",
             _unwritable_download_cache, r"TEXTCLF_CACHE_DIR")


# ---------------------------------------------------------------------------------------------
# models/tokenizer

def _models():
    from textclf_utils import models
    return models


area("models/tokenizer")
expect_error("tokenizer_missing_load_tokenizer", "load_tokenizer on a folder with weights but no tokenizer",
             lambda: _models().load_tokenizer(str(saved_model_dir(with_tokenizer=False))), r"no tokenizer")
expect_error("tokenizer_missing_load_classifier", "load_classifier on a folder with weights but no tokenizer",
             lambda: _models().load_classifier(str(saved_model_dir(with_tokenizer=False)), ["neg", "pos"]),
             r"no tokenizer")
expect_error("tokenizer_missing_saved", "load_saved_classifier on a folder with weights but no tokenizer",
             lambda: _models().load_saved_classifier(saved_model_dir(with_tokenizer=False)), r"tokenizer")
expect_error("classifier_one_label", "load_classifier with one label",
             lambda: _models().load_classifier(None, ["only"]), r"two labels")
expect_error("classifier_duplicate_labels", "load_classifier with a duplicate label",
             lambda: _models().load_classifier(None, ["a", "a"]), r"unique")
expect_error("classifier_labels_string", "label_names='pos' (a string, not a list)",
             lambda: _models().load_classifier(None, "posneg"), r"label_names|string|list")
expect_error("classifier_pooling", "pooling='max'",
             lambda: _models().load_classifier(None, ["a", "b"], pooling="max"), r"pooling")
expect_error("model_unknown_offline", "an unknown Hub id offline",
             lambda: _models().load_tokenizer("nobody/no-such-model"), r"no-such-model")
expect_error("model_bad_name", "a name that is neither a folder nor a Hub id",
             lambda: _models().load_tokenizer("not a model!"), r"not a model")
expect_error("model_empty_folder", "an empty folder as the model",
             lambda: _models().load_classifier(str(tmpdir()), ["a", "b"]), r"config\.json")
expect_error("model_corrupt_weights", "load_classifier on a folder with corrupt model.safetensors",
             lambda: _models().load_classifier(str(corrupt_weights(saved_model_dir())), ["a", "b"]),
             r"model\.safetensors|corrupt|damaged")
expect_error("saved_corrupt_weights", "load_saved_classifier with corrupt model.safetensors",
             lambda: _models().load_saved_classifier(corrupt_weights(saved_model_dir())),
             r"model\.safetensors|corrupt|damaged")
expect_error("saved_no_config", "load_saved_classifier on a folder without config.json",
             lambda: _models().load_saved_classifier(write(tmpdir() / "x.txt", "x").parent), r"config\.json")
expect_error("tokenizer_for_plain_module", "tokenizer_for(nn.Linear)",
             lambda: _models().tokenizer_for(nn.Linear(2, 2)), r"name_or_path")
expect_error("tokenizer_matches_big_vocab", "check_tokenizer_matches: tokenizer bigger than the model's vocabulary",
             lambda: _models().check_tokenizer_matches(bert(vocab=100), tok()), r"tokens")


def _mean_on_distilbert():
    from transformers import DistilBertConfig, DistilBertForSequenceClassification
    model = DistilBertForSequenceClassification(DistilBertConfig(vocab_size=tok().vocab_size, dim=16, n_layers=1,
                                                                 n_heads=2, hidden_dim=32,
                                                                 max_position_embeddings=64))
    return _models().load_classifier(str(saved_model_dir(model=model)), ["a", "b"], pooling="mean")


expect_error("mean_pooling_non_bert", "pooling='mean' with a DistilBERT folder", _mean_on_distilbert, r"BERT")


# ---------------------------------------------------------------------------------------------
# training loop

def _tr():
    from textclf_utils import training
    return training


def train(model=None, dataset=None, eval_dataset=None, tokenizer=None, **kw):
    args = dict(epochs=1, learning_rate=1e-3, batch_size=4, max_length=16, progress=False, max_steps=2)
    args.update(kw)
    return _tr().train_classifier(model or bert(), tokenizer or tok(), ds() if dataset is None else dataset,
                                  eval_dataset, **args)


area("training loop")
expect_error("train_empty", "an empty training set", lambda: train(dataset=ds([], [])), r"empty")
expect_error("train_none", "train_dataset=None",
             lambda: _tr().train_classifier(bert(), tok(), None, epochs=1, learning_rate=1e-3, batch_size=4,
                                            max_length=16, progress=False), r"None")
expect_error("train_no_label_column", "no 'label' column",
             lambda: train(dataset=ds(text=TEXTS, target=LABELS)), r"label")
expect_error("train_label_out_of_range", "label id 5 for a 2-label model",
             lambda: train(dataset=ds(labels=[5] + LABELS[1:])), r"outside")
expect_error("train_negative_label", "label id -1", lambda: train(dataset=ds(labels=[-1] + LABELS[1:])), r"outside")
expect_error("train_string_labels", "labels as strings",
             lambda: train(dataset=ds(labels=["pos", "neg"] * 4)), r"integer")
expect_error("train_none_text", "a None text in the training set",
             lambda: train(dataset=ds(texts=[None] + TEXTS[1:])), r"text")
expect_error("train_max_length_0", "max_length=0", lambda: train(max_length=0), r"max_length")
expect_error("train_max_length_huge", "max_length above the position embeddings",
             lambda: train(max_length=10_000), r"max_length")
expect_error("train_epochs_0", "epochs=0", lambda: train(epochs=0, max_steps=None), r"epochs")
expect_error("train_lr_nan", "learning_rate=nan", lambda: train(learning_rate=float("nan")), r"learning_rate")
expect_error("train_lr_negative", "learning_rate=-1e-3", lambda: train(learning_rate=-1e-3), r"learning_rate")
expect_error("train_batch_0", "batch_size=0", lambda: train(batch_size=0), r"batch_size")
expect_error("train_batch_float", "batch_size=2.5", lambda: train(batch_size=2.5), r"batch_size")
expect_error("train_warmup", "warmup_ratio=1.5", lambda: train(warmup_ratio=1.5), r"warmup_ratio")
expect_error("train_weight_decay", "weight_decay=-1", lambda: train(weight_decay=-1), r"weight_decay")
expect_error("train_grad_norm", "max_grad_norm=0", lambda: train(max_grad_norm=0), r"max_grad_norm")
expect_error("train_max_steps_0", "max_steps=0", lambda: train(max_steps=0), r"max_steps")
expect_error("train_eval_bad_labels", "evaluation set with label 7",
             lambda: train(eval_dataset=ds(labels=[7] + LABELS[1:])), r"evaluation")
expect_error("train_tokenizer_too_big", "tokenizer vocabulary larger than the model's embeddings",
             lambda: train(model=bert(vocab=1000)), r"tokenizer")
expect_error("train_nan_loss_lr", "learning_rate=1e30 makes the loss NaN",
             lambda: train(learning_rate=1e30, max_steps=6, warmup_ratio=0.0), r"learning rate|loss")
expect_error("train_nan_loss_model", "a model whose logits are NaN", lambda: train(model=nan_bert()),
             r"loss is nan")
expect_error("train_loss_fn_not_scalar", "loss_fn returning a per-example vector",
             lambda: train(loss_fn=lambda logits, labels: nn.functional.cross_entropy(logits, labels,
                                                                                      reduction="none")),
             r"loss_fn|scalar")
expect_error("train_bad_device", "device='tpu'", lambda: train(device="tpu"), r"device|tpu")
expect_error("train_cuda_missing", "device='cuda:7' on a machine without it",
             lambda: train(device="cuda:7"), r"cuda|device")
expect_error("train_num_labels_wrong", "num_labels=3 given for a 2-label model, labels 0..2",
             lambda: train(dataset=ds(labels=[2, 1, 0, 1, 0, 1, 0, 1]), num_labels=3), r"num_labels|label")
expect_error("evaluate_batch_0", "evaluate_classifier(batch_size=0)",
             lambda: _tr().evaluate_classifier(bert(), tok(), ds(), batch_size=0, max_length=16), r"batch_size")
expect_error("evaluate_label_out_of_range", "evaluate_classifier with label 3",
             lambda: _tr().evaluate_classifier(bert(), tok(), ds(labels=[3] + LABELS[1:]), max_length=16), r"outside")
expect_error("evaluate_max_length_1", "evaluate_classifier(max_length=1)",
             lambda: _tr().evaluate_classifier(bert(), tok(), ds(), max_length=1), r"max_length")
expect_error("tokenize_max_length_0", "tokenize_dataset(max_length=0)",
             lambda: _tr().tokenize_dataset(ds(), tok(), 0), r"max_length")
expect_error("training_step_no_labels", "training_step with a batch without 'labels'",
             lambda: _tr().training_step(bert(), {"input_ids": torch.ones(2, 4, dtype=torch.long),
                                                  "attention_mask": torch.ones(2, 4, dtype=torch.long)},
                                         torch.optim.SGD(bert().parameters(), 0.1), None), r"labels")
expect_error("collator_fixed_without_length", "make_collator(fixed_length_padding=True) without max_length",
             lambda: _tr().make_collator(tok(), fixed_length_padding=True), r"max_length")
expect_error("sampler_batch_0", "length_grouped_sampler(batch_size=0)",
             lambda: list(_tr().length_grouped_sampler(_tr().tokenize_dataset(ds(), tok(), 8), 0,
                                                                      torch.Generator())), r"batch_size")
expect_error("check_finite_loss", "check_finite_loss(nan)",
             lambda: _tr().check_finite_loss(float("nan"), 3, 1e-3), r"step 3")
expect_error("amp_bad_device", "amp_settings('tpu')", lambda: _tr().amp_settings("tpu"), r"tpu|device")


# ---------------------------------------------------------------------------------------------
# Trainer recipe

def _trainer(model=None, dataset=None, eval_dataset=None, tokenizer=None, **kw):
    from textclf_utils.trainer_recipe import train_with_trainer
    args = dict(epochs=1, learning_rate=1e-3, batch_size=4, max_length=16, progress=False)
    args.update(kw)
    args.setdefault("output_dir", str(tmpdir() / "out"))
    return train_with_trainer(model or bert(), tokenizer or tok(), ds() if dataset is None else dataset,
                              ds() if eval_dataset is None else eval_dataset, **args)


area("Trainer recipe")
expect_error("trainer_eval_empty", "an empty evaluation set",
             lambda: _trainer(eval_dataset=ds([], [])), r"evaluation dataset")
expect_error("trainer_batch_0", "batch_size=0", lambda: _trainer(batch_size=0), r"batch_size")
expect_error("trainer_batch_float", "batch_size=2.5", lambda: _trainer(batch_size=2.5), r"batch_size")
expect_error("trainer_max_length_0", "max_length=0", lambda: _trainer(max_length=0), r"max_length")
expect_error("trainer_epochs_negative", "epochs=-1", lambda: _trainer(epochs=-1), r"epochs")
expect_error("trainer_warmup", "warmup_ratio=1.5", lambda: _trainer(warmup_ratio=1.5), r"warmup_ratio")
expect_error("trainer_label_out_of_range", "training label 4 for a 2-label model",
             lambda: _trainer(dataset=ds(labels=[4] + LABELS[1:])), r"outside")
expect_error("trainer_tokenizer_too_big", "tokenizer vocabulary larger than the model's embeddings",
             lambda: _trainer(model=bert(vocab=1000)), r"tokenizer")
expect_error("trainer_nan_loss", "a model whose logits are NaN", lambda: _trainer(model=nan_bert()),
             r"loss is nan")
expect_error("trainer_output_dir_file", "output_dir is an existing file",
             lambda: _trainer(output_dir=str(write(tmpdir() / "f", "x")), max_steps=1), r"output_dir|f")
expect_error("trainer_arguments_epochs_0", "trainer_arguments(epochs=0)",
             lambda: __import__("textclf_utils.trainer_recipe", fromlist=["x"]).trainer_arguments(
                 str(tmpdir()), epochs=0, learning_rate=1e-3, batch_size=4), r"epochs")
expect_error("tokenize_for_trainer_max_length_0", "tokenize_for_trainer(max_length=0)",
             lambda: __import__("textclf_utils.trainer_recipe", fromlist=["x"]).tokenize_for_trainer(
                 ds(), tok(), 0), r"max_length")
expect_error("accuracy_tolerance_lengths", "accuracy_difference_tolerance of 3 and 2 predictions",
             lambda: __import__("textclf_utils.trainer_recipe", fromlist=["x"]).accuracy_difference_tolerance(
                 [0, 1, 1], [0, 1]), r"\(3,\)")


# ---------------------------------------------------------------------------------------------
# model cache

def _mc():
    from textclf_utils import model_cache
    return model_cache


def _recipe():
    from textclf_utils.recipes import finetune_recipe
    return finetune_recipe("sst2", tiny_profile())


def _result():
    from textclf_utils.training import TrainingResult
    return TrainingResult(history=[], step_losses=[], best_epoch=1, best_eval_accuracy=0.5, train_seconds=0.1,
                          train_samples_per_second=1.0, steps=1, precision="fp32", padding_fraction=0.0,
                          final_eval=None)


area("model cache")
expect_error("cache_entry_no_training_json", "check_cache_entry on a folder without training.json",
             lambda: _mc().check_cache_entry(saved_model_dir()), r"training\.json")
expect_error("cache_unwritable", "check_cache_entry where the cache folder cannot be created (a file is there)",
             lambda: _mc().check_cache_entry(write(tmpdir() / "f", "x") / "finetuned" / "entry"),
             r"not writable")
expect_error("cache_load_corrupt_weights", "load_cached_classifier with corrupt model.safetensors",
             lambda: _mc().load_cached_classifier(corrupt_weights(saved_model_dir())), r"damaged")
expect_error("cache_load_no_tokenizer", "load_cached_classifier without tokenizer files",
             lambda: _mc().load_cached_classifier(saved_model_dir(with_tokenizer=False)), r"damaged|tokenizer")
expect_error("cache_load_no_config", "load_cached_classifier without config.json",
             lambda: _mc().load_cached_classifier(_without(saved_model_dir(), "config.json")), r"damaged")
expect_error("cache_load_truncated_weights", "load_cached_classifier with a truncated model.safetensors",
             lambda: _mc().load_cached_classifier(_truncated(saved_model_dir())), r"damaged")


def _without(folder: Path, name: str) -> Path:
    (folder / name).unlink()
    return folder


def _truncated(folder: Path) -> Path:
    weights = folder / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-1000])
    return folder


def _get_finetuned_incomplete():
    cache = tmpdir()
    folder = _mc().finetuned_model_dir(_recipe(), cache)
    folder.mkdir(parents=True)
    write(folder / "notes.txt", "someone's file")
    started = time.perf_counter()
    try:
        _mc().get_finetuned_classifier("sst2", tiny_profile(), cache_dir=cache, progress=False)
    except _mc().ModelCacheError as err:
        if not (folder / "notes.txt").exists():
            return "the incomplete entry's files were deleted"
        took = time.perf_counter() - started
        return None if took < 5 and "training.json" in str(err) else f"raised after {took:.1f}s: {err}"
    return "an incomplete entry was used or overwritten without a word"


expect_good("get_finetuned_incomplete_entry", "get_finetuned_classifier stops before training at an entry "
            "without training.json, and keeps its files", _get_finetuned_incomplete, loss=True)
expect_error("get_finetuned_unknown_dataset", "get_finetuned_classifier('imdb')",
             lambda: _mc().get_finetuned_classifier("imdb", tiny_profile(), cache_dir=tmpdir()), r"imdb")
expect_error("get_finetuned_unknown_profile", "get_finetuned_classifier(profile='fast')",
             lambda: _mc().get_finetuned_classifier("sst2", "fast", cache_dir=tmpdir()), r"fast")


def _store_keeps_existing():
    cache = tmpdir()
    first = _mc().store_finetuned_classifier(_recipe(), tok(), bert(seed=1), _result(), {"acc": 1.0}, cache)
    before = (first / "training.json").read_text()
    _mc().store_finetuned_classifier(_recipe(), tok(), bert(seed=2), _result(), {"acc": 0.0}, cache)
    return None if (first / "training.json").read_text() == before else "an existing entry was replaced"


expect_good("store_keeps_existing_entry", "storing an entry that exists keeps the stored one", _store_keeps_existing,
            loss=True)
expect_error("store_unwritable", "store_finetuned_classifier where the cache folder is a file",
             lambda: _mc().store_finetuned_classifier(_recipe(), tok(), bert(), _result(),
                                                      cache_dir=write(tmpdir() / "f", "x")), r"cache|writable")


def _teacher_logits_repair(content: bytes | None = None, tensor: torch.Tensor | None = None):
    from safetensors.torch import save_file
    cache, texts, teacher = tmpdir(), TEXTS[:3], bert()
    first = _mc().cached_teacher_logits(_recipe(), teacher, tok(), texts, name="probe", cache_dir=cache,
                                        progress=False)
    path = next((cache / "teacher_logits").glob("*.safetensors"))
    if content is not None:
        path.write_bytes(content)
    else:
        save_file({"logits": tensor}, str(path))
    again = _mc().cached_teacher_logits(_recipe(), teacher, tok(), texts, name="probe", cache_dir=cache,
                                        progress=False)
    if again.shape != first.shape or not torch.allclose(again, first, atol=1e-4):
        return f"returned {tuple(again.shape)} logits instead of recomputing"
    return None


expect_good("teacher_logits_corrupt_file", "a corrupt cached teacher-logits file is recomputed",
            lambda: _teacher_logits_repair(content=b"not safetensors at all"))
expect_good("teacher_logits_nan", "cached teacher logits holding NaN are recomputed",
            lambda: _teacher_logits_repair(tensor=torch.full((3, 2), float("nan"))))
expect_good("teacher_logits_wrong_rows", "cached teacher logits with the wrong row count are recomputed",
            lambda: _teacher_logits_repair(tensor=torch.zeros(5, 2)))
expect_good("teacher_logits_wrong_classes", "cached teacher logits with 3 classes for a 2-class teacher are "
            "recomputed", lambda: _teacher_logits_repair(tensor=torch.zeros(3, 3)))
expect_good("teacher_logits_empty_file", "a 0-byte cached teacher-logits file is recomputed",
            lambda: _teacher_logits_repair(content=b""))


# ---------------------------------------------------------------------------------------------
# metrics

def _m():
    from textclf_utils import metrics
    return metrics


area("metrics")
expect_error("summary_probabilities_as_pred", "classification_summary with probabilities as y_pred",
             lambda: _m().classification_summary([0, 1], [0.2, 0.9], ["a", "b"]), r"y_pred")
expect_error("summary_label_2", "classification_summary with label 2 for two names",
             lambda: _m().classification_summary([0, 1], [0, 2], ["a", "b"]), r"y_pred.*2")
expect_error("summary_lengths", "y_true of 3 and y_pred of 2",
             lambda: _m().classification_summary([0, 1, 1], [0, 1], ["a", "b"]), r"same length")
expect_error("summary_string_labels", "y_true as label names",
             lambda: _m().classification_summary(["a", "b"], [0, 1], ["a", "b"]), r"y_true")
expect_error("summary_logits_as_prob", "y_prob given logits",
             lambda: _m().classification_summary([0, 1], [0, 1], ["a", "b"], y_prob=[[2.0, -1.0], [0.5, 3.0]]),
             r"softmax|probability")
expect_error("summary_prob_shape", "y_prob of the wrong shape",
             lambda: _m().classification_summary([0, 1], [0, 1], ["a", "b"], y_prob=[0.2, 0.8]), r"y_prob")
expect_error("summary_prob_nan", "y_prob holding NaN",
             lambda: _m().classification_summary([0, 1], [0, 1], ["a", "b"],
                                                 y_prob=[[float("nan"), 1.0], [0.5, 0.5]]), r"y_prob")
expect_error("summary_empty", "empty y_true", lambda: _m().classification_summary([], [], ["a", "b"]),
             r"non-empty")
expect_error("confusion_normalize", "confusion_counts(normalize='rows')",
             lambda: _m().confusion_counts([0, 1], [0, 1], 2, normalize="rows"), r"normalize")
expect_error("prf_not_square", "precision_recall_f1 of a 2x3 matrix",
             lambda: _m().precision_recall_f1(np.ones((2, 3))), r"square")
expect_error("prf_negative", "precision_recall_f1 with a negative count",
             lambda: _m().precision_recall_f1(np.array([[1, -1], [0, 2]])), r"counts")
expect_error("bootstrap_resamples_0", "bootstrap_interval(n_resamples=0)",
             lambda: _m().bootstrap_interval(lambda t, p: 0.0, [0, 1], [0, 1], n_resamples=0), r"n_resamples")
expect_error("bootstrap_confidence_95", "bootstrap_interval(confidence=95)",
             lambda: _m().bootstrap_interval(lambda t, p: 0.0, [0, 1], [0, 1], confidence=95), r"confidence")
expect_error("bootstrap_one_example", "bootstrap_interval on one example",
             lambda: _m().bootstrap_interval(lambda t, p: 0.0, [0], [0]), r"2")
expect_error("paired_bootstrap_lengths", "paired_bootstrap_difference with unequal lengths",
             lambda: _m().paired_bootstrap_difference(lambda t, p: 0.0, [0, 1], [0, 1], [0]), r"equal length")
expect_error("seed_mean_groups", "bootstrap_seed_mean with groups of the wrong length",
             lambda: _m().bootstrap_seed_mean(lambda t, p: 0.0, [0, 1], [[0, 1]], groups=[1], n_resamples=5),
             r"groups")
expect_error("seed_mean_shape", "bootstrap_seed_mean predictions of 3 for 2 labels",
             lambda: _m().bootstrap_seed_mean(lambda t, p: 0.0, [0, 1], [[0, 1, 1]], n_resamples=5), r"predictions")
expect_error("mcnemar_lengths", "mcnemar_test with unequal lengths",
             lambda: _m().mcnemar_test([0, 1], [0, 1], [0]), r"equal length")
expect_error("mcnemar_empty", "mcnemar_test on no examples", lambda: _m().mcnemar_test([], [], []),
             r"empty|no example")
expect_error("reliability_bins_0", "reliability_table(n_bins=0)",
             lambda: _m().reliability_table([0, 1], [[0.5, 0.5], [0.2, 0.8]], n_bins=0), r"n_bins")
expect_error("ece_1d_probs", "expected_calibration_error with 1-D probabilities",
             lambda: _m().expected_calibration_error([0, 1], [0.3, 0.8]), r"y_prob")
expect_error("softmax_temperature_0", "softmax_with_temperature(T=0)",
             lambda: _m().softmax_with_temperature([[1.0, 2.0]], 0), r"temperature")
expect_error("softmax_temperature_nan32", "softmax_with_temperature(T=np.float32(nan))",
             lambda: _m().softmax_with_temperature([[1.0, 2.0]], np.float32("nan")), r"temperature")
expect_error("softmax_temperature_str", "softmax_with_temperature(T='2')",
             lambda: _m().softmax_with_temperature([[1.0, 2.0]], "2"), r"temperature")
expect_error("fit_temperature_inf", "fit_temperature with -inf logits",
             lambda: _m().fit_temperature([[0.0, -np.inf], [1.0, 0.0]], [0, 0]), r"finite")
expect_error("fit_temperature_lengths", "fit_temperature with 2 logits rows and 3 labels",
             lambda: _m().fit_temperature([[0.0, 1.0], [1.0, 0.0]], [0, 1, 1]), r"length")


# ---------------------------------------------------------------------------------------------
# imbalance

def _im():
    from textclf_utils import imbalance
    return imbalance


expect_error("labels_given_probabilities", "classification_summary with probabilities (n, 2) as y_pred",
             lambda: _m().classification_summary([0, 1], [[0.3, 0.7], [0.6, 0.4]], ["a", "b"]),
             r"y_pred.*looks like probabilities.*argmax")
expect_error("labels_given_logits", "mcnemar_test with logits as one model's predictions",
             lambda: _m().mcnemar_test([0, 1], [[2.0, -1.0], [0.5, 3.0]], [0, 1]), r"looks like logits.*argmax")
expect_error("labels_given_scores", "mcnemar_test with scores in [0, 1] as one model's predictions",
             lambda: _m().mcnemar_test([0, 1, 1], [0.2, 0.9, 0.7], [0, 1, 0]), r"pred_a.*looks like scores.*threshold")
expect_error("bootstrap_given_probabilities", "bootstrap_interval with probabilities (n, 2) as y_pred",
             lambda: _m().bootstrap_interval(lambda y, p: 0.5, [0, 1], [[0.3, 0.7], [0.6, 0.4]]),
             r"looks like probabilities.*argmax")
expect_error("prob_given_class_ids", "expected_calibration_error with class ids as y_prob",
             lambda: _m().expected_calibration_error([0, 1, 1], [0, 1, 0]), r"looks like class ids.*probabilities")
expect_error("accuracy_of_class_ids", "distill.accuracy_of given predicted classes instead of logits",
             lambda: _d().accuracy_of(torch.tensor([0, 1]), [0, 1]), r"takes logits.*2-D")
expect_error("accuracy_of_probability_labels", "distill.accuracy_of given probabilities as labels",
             lambda: _d().accuracy_of(torch.zeros(2, 2), [[0.2, 0.8], [0.9, 0.1]]), r"labels.*probabilities")


area("imbalance")
expect_error("f1_two_columns", "minority_f1 given both classes' probabilities as y_pred",
             lambda: _im().minority_f1([0, 1], [[0.3, 0.7], [0.6, 0.4]]), r"y_pred.*\(2, 2\).*argmax")
expect_error("ap_two_columns", "average_precision given both classes' probabilities as scores",
             lambda: _im().average_precision([0, 1], [[0.3, 0.7], [0.6, 0.4]]), r"scores.*y_prob\[:, 1\]")
expect_error("f1_probabilities", "minority_f1 given probabilities as y_pred",
             lambda: _im().minority_f1([0, 1, 1], [0.2, 0.7, 0.9]), r"y_pred")
expect_error("f1_label_2", "minority_f1 given label 2 in y_pred",
             lambda: _im().minority_f1([0, 1, 1], [0, 2, 1]), r"y_pred.*2")
expect_error("macro_f1_label_2_true", "macro_f1 with label 2 in y_true",
             lambda: _im().macro_f1([0, 2, 1], [0, 1, 1]), r"y_true")
expect_error("macro_f1_empty", "macro_f1 on empty arrays", lambda: _im().macro_f1([], []), r"non-zero|empty")
expect_error("ap_nan", "average_precision with a NaN score",
             lambda: _im().average_precision([0, 1, 1], [0.2, float("nan"), 0.9]), r"finite")
expect_error("ap_lengths", "average_precision with unequal lengths",
             lambda: _im().average_precision([0, 1, 1], [0.2, 0.9]), r"equal")
expect_error("ap_2d_scores", "average_precision given (n, 2) probabilities",
             lambda: _im().average_precision([0, 1], [[0.8, 0.2], [0.1, 0.9]]), r"scores|1-D")
expect_error("binary_report_probabilities", "binary_report with probabilities as y_pred",
             lambda: _im().binary_report([0, 1], [0.1, 0.9], [0.1, 0.9]), r"y_pred")
expect_error("reliability_scores_above_1", "minority_reliability with a score of 1.5",
             lambda: _im().minority_reliability([0, 1], [0.2, 1.5]), r"probabilit")
expect_error("class_counts_absent", "class_counts with a class that never occurs",
             lambda: _im().class_counts([0, 0, 1], 3), r"\[2\]")
expect_error("class_counts_float", "class_counts with float labels",
             lambda: _im().class_counts([0.0, 1.0], 2), r"integer")
expect_error("class_weights_scheme", "class_weights(scheme='sqrt')",
             lambda: _im().class_weights([0, 1], 2, scheme="sqrt"), r"sqrt")
expect_error("effective_beta_1", "effective_number_weights(beta=1.0)",
             lambda: _im().effective_number_weights([5, 1], 1.0), r"beta")
expect_error("effective_beta_nan", "effective_number_weights(beta=nan)",
             lambda: _im().effective_number_weights([5, 1], float("nan")), r"beta")
expect_error("focal_shapes", "focal_loss with labels of the wrong length",
             lambda: _im().focal_loss(torch.zeros(3, 2), torch.tensor([0, 1])), r"labels")
expect_error("focal_negative_gamma_fn", "focal_loss(gamma=-1) (the function)",
             lambda: _im().focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), gamma=-1.0), r"gamma")
expect_error("focal_negative_gamma_module", "FocalLoss(gamma=-1)", lambda: _im().FocalLoss(-1.0), r"gamma")
expect_error("focal_label_out_of_range", "focal_loss with label 5 for 2 classes",
             lambda: _im().focal_loss(torch.zeros(2, 2), torch.tensor([0, 5])), r"label")
expect_error("focal_weight_length", "focal_loss with 3 class weights for 2 classes",
             lambda: _im().focal_loss(torch.zeros(2, 2), torch.tensor([0, 1]), weight=torch.ones(3)), r"weight")
expect_error("wce_zero_weight", "weighted_cross_entropy with a zero weight",
             lambda: _im().weighted_cross_entropy(torch.tensor([1.0, 0.0])), r"weight")
expect_error("wce_weight_count", "weighted_cross_entropy of 2 weights used on 3 classes",
             lambda: _im().weighted_cross_entropy(torch.ones(2))(torch.zeros(2, 3), torch.tensor([0, 2])),
             r"weight")
expect_error("sampler_num_samples_0", "balanced_sampler(num_samples=0)",
             lambda: _im().balanced_sampler([0, 1], 2, num_samples=0), r"num_samples")
expect_error("undersample_absent", "undersample_indices with an absent class",
             lambda: _im().undersample_indices([0, 0], 2), r"never occur")
expect_error("threshold_no_positive", "best_threshold with no positive example",
             lambda: _im().best_threshold([0, 0], [0.1, 0.2]), r"positive")
expect_error("threshold_min_recall", "best_threshold(min_recall=1.5)",
             lambda: _im().best_threshold([0, 1], [0.1, 0.9], min_recall=1.5), r"min_recall")
expect_error("prior_zero", "prior_corrected_scores(train_prior=0)",
             lambda: _im().prior_corrected_scores([0.5], 0.0), r"train_prior")
expect_error("prior_scores_above_1", "prior_corrected_scores with a score of 1.5 (a logit?)",
             lambda: _im().prior_corrected_scores([0.2, 1.5], 0.1), r"probabilit")
expect_error("prior_scores_negative", "prior_corrected_scores with a score of -2 (a logit?)",
             lambda: _im().prior_corrected_scores([-2.0, 0.5], 0.1), r"probabilit")
expect_error("remedy_unknown", "remedy_loss('smote')", lambda: _im().remedy_loss("smote", [0, 1]), r"smote")
expect_error("remedy_batches_steps_0", "remedy_batches(steps=0)",
             lambda: _im().remedy_batches("cross-entropy", [0, 1], 0, 2, 0), r"steps")
expect_error("head_input_size_0", "classifier_head(input_size=0)", lambda: _im().classifier_head(0),
             r"input_size")
expect_error("train_head_eval_dims", "train_head with evaluation features of another width",
             lambda: _im().train_head(np.zeros((4, 3)), [0, 1, 0, 1], "cross-entropy", steps=1, seed=0,
                                      evaluate={"test": np.zeros((2, 5))}), r"evaluate")


# ---------------------------------------------------------------------------------------------
# distillation

def _d():
    from textclf_utils import distill
    return distill


S2, T2, Y2 = torch.zeros(2, 2), torch.ones(2, 2), torch.tensor([0, 1])


def student_run(dataset=None, teacher=None, model=None, **kw):
    args = dict(alpha=0.5, temperature=2.0, epochs=1, learning_rate=1e-3, batch_size=4, max_length=16,
                progress=False, max_steps=1)
    args.update(kw)
    if dataset is None:
        dataset = _d().with_teacher_logits(ds(), torch.zeros(len(TEXTS), 2))
    return _d().train_student(model or bert(), tok(), dataset, teacher=teacher, **args)


area("distillation")
expect_error("loss_alpha", "distillation_loss(alpha=1.5)",
             lambda: _d().distillation_loss(S2, T2, Y2, alpha=1.5), r"alpha")
expect_error("loss_temperature_0", "distillation_loss(temperature=0)",
             lambda: _d().distillation_loss(S2, T2, Y2, temperature=0), r"temperature")
expect_good("loss_temperature_np32", "temperature=np.float32(2) is accepted",
            lambda: None if torch.isfinite(_d().distillation_loss(S2, T2, Y2, temperature=np.float32(2))) else "nan")
expect_good("loss_temperature_tensor", "temperature=torch.tensor(2.) is accepted",
            lambda: None if torch.isfinite(_d().distillation_loss(S2, T2, Y2, temperature=torch.tensor(2.0)))
            else "nan")
expect_error("loss_temperature_vector", "temperature=torch.tensor([1., 2.])",
             lambda: _d().distillation_loss(S2, T2, Y2, temperature=torch.tensor([1.0, 2.0])), r"temperature")
expect_error("loss_temperature_str", "temperature='2'",
             lambda: _d().distillation_loss(S2, T2, Y2, temperature="2"), r"temperature")
expect_error("loss_temperature_nan32", "temperature=np.float32(nan)",
             lambda: _d().distillation_loss(S2, T2, Y2, temperature=np.float32("nan")), r"temperature")
expect_error("loss_classes", "teacher with 3 classes, student with 2",
             lambda: _d().distillation_loss(S2, torch.ones(2, 3), Y2), r"classes")
expect_error("loss_rows", "teacher logits for 3 rows, student for 2",
             lambda: _d().distillation_loss(S2, torch.ones(3, 2), Y2), r"rows")
expect_error("loss_labels_shape", "labels of shape (2, 1)",
             lambda: _d().distillation_loss(S2, T2, Y2[:, None]), r"labels")
expect_error("loss_nan_teacher", "distillation_loss with NaN teacher logits",
             lambda: _d().distillation_loss(S2, torch.full((2, 2), float("nan")), Y2), r"teacher_logits|NaN|finite")
expect_error("kl_nan_teacher", "distillation_kl with NaN teacher logits",
             lambda: _d().distillation_kl(S2, torch.full((2, 2), float("nan")), 2.0), r"teacher_logits|NaN|finite")
expect_error("soft_targets_negative", "soft_targets(temperature=-1)",
             lambda: _d().soft_targets(T2, -1.0), r"temperature")
expect_error("loss_module_alpha", "DistillationLoss(alpha=2)",
             lambda: _d().DistillationLoss(bert(), alpha=2.0), r"alpha")
expect_error("predict_max_length_0", "predict_logits(max_length=0)",
             lambda: _d().predict_logits(bert(), tok(), TEXTS, 0), r"max_length")
expect_error("predict_batch_0", "predict_logits(batch_size=0)",
             lambda: _d().predict_logits(bert(), tok(), TEXTS, 16, batch_size=0), r"batch_size")
expect_error("predict_none_text", "predict_logits with a None text",
             lambda: _d().predict_logits(bert(), tok(), ["ok", None], 16), r"texts\[1\]")
expect_error("predict_empty", "predict_logits on no texts", lambda: _d().predict_logits(bert(), tok(), [], 16),
             r"empty")
expect_error("predict_one_string", "predict_logits on one string",
             lambda: _d().predict_logits(bert(), tok(), "a film", 16), r"string")
expect_error("with_logits_nan", "with_teacher_logits holding NaN",
             lambda: _d().with_teacher_logits(ds(), torch.full((8, 2), float("nan"))), r"teacher_logits")
expect_error("with_logits_rows", "with_teacher_logits with 3 rows for 8 examples",
             lambda: _d().with_teacher_logits(ds(), torch.zeros(3, 2)), r"3 rows")
expect_error("student_nan_column", "train_student with a NaN teacher_logits column",
             lambda: student_run(dataset=ds(text=TEXTS, label=LABELS, teacher_logits=[[float("nan"), 0.0]] * 8)),
             r"teacher_logits")
expect_error("student_nan_teacher_model", "train_student with a teacher whose logits are NaN",
             lambda: student_run(dataset=ds(), teacher=nan_bert()), r"loss is nan|teacher")
expect_error("student_nan_loss", "train_student with a student whose logits are NaN",
             lambda: student_run(model=nan_bert()), r"loss is nan")
expect_error("student_no_teacher", "alpha < 1 without teacher or teacher_logits",
             lambda: student_run(dataset=ds()), r"teacher")
expect_error("student_batch_0", "train_student(batch_size=0)", lambda: student_run(batch_size=0), r"batch_size")
expect_error("student_max_length_0", "train_student(max_length=0)", lambda: student_run(max_length=0),
             r"max_length")
expect_error("student_none_text", "train_student with a None text",
             lambda: student_run(dataset=_d().with_teacher_logits(ds(texts=[None] + TEXTS[1:]), torch.zeros(8, 2))),
             r"texts\[0\]|index 0 \(None\)")
expect_error("student_lr_nan", "train_student(learning_rate=nan)",
             lambda: student_run(learning_rate=float("nan")), r"learning_rate")
expect_error("student_temperature_tensor", "train_student(temperature=torch.tensor(0.))",
             lambda: student_run(temperature=torch.tensor(0.0)), r"temperature")
expect_error("student_label_out_of_range", "train_student with label 9",
             lambda: student_run(dataset=_d().with_teacher_logits(ds(labels=[9] + LABELS[1:]), torch.zeros(8, 2))),
             r"outside")
expect_error("student_teacher_classes", "train_student with a 3-class teacher for a 2-class student",
             lambda: student_run(dataset=ds(), teacher=bert(num_labels=3)), r"classes|num_labels")
expect_error("top_layers_0", "top_layers(count=0)", lambda: _d().top_layers(6, 0), r"count")
expect_error("top_layers_too_many", "top_layers(6, 7)", lambda: _d().top_layers(6, 7), r"7")
expect_error("layer_drop_unsorted", "layer_dropped_copy(keep=[1, 0])",
             lambda: _d().layer_dropped_copy(bert(), keep=[1, 0]), r"keep")
expect_error("layer_drop_out_of_range", "layer_dropped_copy(keep=[5])",
             lambda: _d().layer_dropped_copy(bert(), keep=[5]), r"keep")
expect_error("layer_drop_not_bert", "layer_dropped_copy(nn.Linear)",
             lambda: _d().layer_dropped_copy(nn.Linear(2, 2)), r"num_hidden_layers")
expect_error("augment_probability", "augment_texts(mask_probability=2)",
             lambda: _d().augment_texts(TEXTS, mask_probability=2.0), r"mask_probability")
expect_error("augment_probability_str", "augment_texts(mask_probability='0.1')",
             lambda: _d().augment_texts(TEXTS, mask_probability="0.1"), r"mask_probability")
expect_error("augment_copies_0", "augment_texts(copies=0)", lambda: _d().augment_texts(TEXTS, copies=0), r"copies")
expect_error("augment_none_text", "augment_texts with a None text",
             lambda: _d().augment_texts(["a b", None]), r"texts\[1\]")
expect_error("accuracy_of_lengths", "accuracy_of 3 logits rows with 2 labels",
             lambda: _d().accuracy_of(torch.zeros(3, 2), [0, 1]), r"labels|rows")


# ---------------------------------------------------------------------------------------------
# compression

def _c():
    from textclf_utils import compression
    return compression


area("compression")
expect_error("quantize_no_linear", "quantize_int8 of a model without nn.Linear",
             lambda: _c().quantize_int8(nn.Sequential(nn.Embedding(4, 2))), r"nn\.Linear")
expect_good("quantize_leaves_input", "quantize_int8 leaves the float model untouched",
            lambda: None if type(_quantized_original().bert.encoder.layer[0].attention.self.query) is nn.Linear
            else "the input model was changed")


def _quantized_original():
    model = bert()
    _c().quantize_int8(model)
    return model


expect_error("prune_no_unk", "prune_vocabulary with keep_ids lacking [UNK]",
             lambda: _c().prune_vocabulary(bert(), [0, 101, 102], 100), r"UNK|100")
expect_error("prune_empty", "prune_vocabulary(keep_ids=[])",
             lambda: _c().prune_vocabulary(bert(), [], 100), r"keep_ids")
expect_error("prune_out_of_range", "prune_vocabulary with an id beyond the vocabulary",
             lambda: _c().prune_vocabulary(bert(vocab=200), [100, 500], 100), r"keep_ids")
expect_error("prune_not_hf", "prune_vocabulary of nn.Linear",
             lambda: _c().prune_vocabulary(nn.Linear(2, 2), [0, 1], 0), r"get_input_embeddings|embedding")
expect_error("used_ids_empty", "used_token_ids of no texts", lambda: _c().used_token_ids(tok(), [], 16), r"empty")
expect_error("used_ids_none", "used_token_ids with a None text",
             lambda: _c().used_token_ids(tok(), ["a", None], 16), r"texts\[1\]")
expect_error("used_ids_max_length_0", "used_token_ids(max_length=0)",
             lambda: _c().used_token_ids(tok(), ["a much longer text than that"], 0), r"max_length")
expect_error("embeddings_twice", "quantize_embeddings of an already quantized model",
             lambda: _c().quantize_embeddings(_c().quantize_embeddings(bert())), r"quantized already")
expect_error("embeddings_not_hf", "quantize_embeddings(nn.Linear)",
             lambda: _c().quantize_embeddings(nn.Linear(2, 2)), r"get_input_embeddings")
expect_error("tps_warmup", "texts_per_second(warmup=-1)",
             lambda: _c().texts_per_second(len, TEXTS, warmup=-1), r"warmup")
expect_error("tps_repeats", "texts_per_second(repeats=0)",
             lambda: _c().texts_per_second(len, TEXTS, repeats=0), r"repeats")
expect_error("speed_few_texts", "measure_speed with fewer texts than batch_size",
             lambda: _c().measure_speed(bert(), tok(), TEXTS, 16, batch_size=64), r"at least")
expect_error("speed_max_length_0", "measure_speed(max_length=0)",
             lambda: _c().measure_speed(bert(), tok(), TEXTS, 0, batch_size=2, latency_examples=2), r"max_length")
expect_error("benchmark_reference", "benchmark_classifiers with an unknown reference",
             lambda: _c().benchmark_classifiers({"a": bert()}, tok(), ds(), reference="b", max_length=16), r"'b'")
expect_error("benchmark_threads_0", "benchmark_classifiers(num_threads=0)",
             lambda: _c().benchmark_classifiers({"a": bert()}, tok(), ds(), reference="a", max_length=16,
                                                num_threads=0), r"num_threads")
expect_error("benchmark_no_label", "benchmark_classifiers on a dataset without 'label'",
             lambda: _c().benchmark_classifiers({"a": bert()}, tok(), ds(text=TEXTS, y=LABELS), reference="a",
                                                max_length=16, progress=False), r"label")


# ---------------------------------------------------------------------------------------------
# attention/encoder

def _a():
    from textclf_utils import attention
    return attention


def _e():
    from textclf_utils import encoder
    return encoder


def tiny_cfg(**kw):
    values = dict(vocab_size=50, hidden_size=16, num_layers=1, num_heads=2, intermediate_size=32,
                  max_position_embeddings=16)
    values.update(kw)
    return _e().EncoderConfig(**values)


def saved_encoder(**changes) -> Path:
    folder = _e().EncoderForSequenceClassification(tiny_cfg(), 2).save(tmpdir() / "enc")
    if "config" in changes:
        write(folder / "config.json", changes["config"])
    if "weights" in changes:
        write(folder / "model.safetensors", changes["weights"])
    return folder


Q = torch.zeros(1, 3, 4)
area("attention/encoder")
expect_error("softmax_int_mask", "masked_softmax with an int mask",
             lambda: _a().masked_softmax(torch.zeros(2, 3), torch.ones(2, 3, dtype=torch.long)), r"boolean")
expect_error("softmax_mask_shape", "a mask that does not broadcast",
             lambda: _a().masked_softmax(torch.zeros(2, 3), torch.ones(4, dtype=torch.bool)), r"broadcast")
expect_error("sdpa_dk", "query and key of different d_k",
             lambda: _a().scaled_dot_product_attention(Q, torch.zeros(1, 3, 5), Q), r"d_k")
expect_error("sdpa_lengths", "key and value of different lengths",
             lambda: _a().scaled_dot_product_attention(Q, Q, torch.zeros(1, 2, 4)), r"L_k")
expect_error("sdpa_dropout", "dropout_p=1.0", lambda: _a().scaled_dot_product_attention(Q, Q, Q, dropout_p=1.0),
             r"dropout_p")
expect_error("padding_mask_3d", "padding_mask of a 3-D tensor",
             lambda: _a().padding_mask(torch.ones(1, 2, 3)), r"attention_mask")
expect_error("split_heads_indivisible", "split_heads of width 10 into 3 heads",
             lambda: _a().split_heads(torch.zeros(1, 2, 10), 3), r"num_heads|divisible")
expect_error("split_heads_2d", "split_heads of a 2-D tensor",
             lambda: _a().split_heads(torch.zeros(2, 8), 2), r"\(batch, length|shape")
expect_error("merge_heads_3d", "merge_heads of a 3-D tensor",
             lambda: _a().merge_heads(torch.zeros(2, 3, 4)), r"\(batch, heads|shape")
expect_error("causal_mask_0", "causal_mask(0)", lambda: _a().causal_mask(0), r"length")
expect_error("causal_mask_float", "causal_mask(2.5)", lambda: _a().causal_mask(2.5), r"length")
expect_error("mha_indivisible", "MultiHeadAttention(10, 3)", lambda: _a().MultiHeadAttention(10, 3), r"divisible")
expect_error("mha_wrong_width", "MultiHeadAttention(8, 2) on width 6",
             lambda: _a().MultiHeadAttention(8, 2)(torch.zeros(1, 3, 6)), r"Expected input")
expect_error("copy_torch_layout", "copy_from_torch_multihead with 4 heads into 2",
             lambda: _a().copy_from_torch_multihead(_a().MultiHeadAttention(8, 2),
                                                    nn.MultiheadAttention(8, 4, batch_first=True)), r"heads")
expect_error("copy_torch_not_mha", "copy_from_torch_multihead from nn.Linear",
             lambda: _a().copy_from_torch_multihead(_a().MultiHeadAttention(8, 2), nn.Linear(8, 8)),
             r"MultiheadAttention")
expect_error("copy_bert_not_bert", "copy_from_bert_attention from nn.Linear",
             lambda: _a().copy_from_bert_attention(_a().MultiHeadAttention(8, 2), nn.Linear(8, 8)),
             r"BERT|attention|Linear")
expect_error("growth_lengths", "growth_exponent with 3 lengths and 2 values",
             lambda: _a().growth_exponent([1, 2, 3], [1, 2]), r"lengths")
expect_error("growth_expected", "check_memory_growth(expected='cubic')",
             lambda: _a().check_memory_growth([1, 2], [1, 4], "cubic"), r"cubic")
expect_error("peak_bytes_device", "peak_allocated_bytes(device='tpu')",
             lambda: _a().peak_allocated_bytes(lambda: None, device="tpu"), r"tpu|device")
expect_error("config_indivisible", "EncoderConfig(hidden_size=10, num_heads=3)",
             lambda: tiny_cfg(hidden_size=10, num_heads=3), r"divisible")
expect_error("config_vocab_0", "EncoderConfig(vocab_size=0)", lambda: tiny_cfg(vocab_size=0), r"vocab_size")
expect_error("config_dropout_1", "EncoderConfig(dropout=1.0)", lambda: tiny_cfg(dropout=1.0), r"dropout")
expect_error("config_pad_id", "EncoderConfig(pad_token_id=99) for 50 tokens",
             lambda: tiny_cfg(pad_token_id=99), r"pad_token_id")
expect_error("config_unknown_field", "EncoderConfig.from_dict with 'hidden'",
             lambda: _e().EncoderConfig.from_dict({"hidden": 8}), r"hidden")
expect_error("config_bert_missing", "from_bert_config without num_hidden_layers",
             lambda: _e().EncoderConfig.from_bert_config({"vocab_size": 5}), r"lacks")
expect_error("config_bert_relu", "from_bert_config with hidden_act='relu'",
             lambda: _e().EncoderConfig.from_bert_config({"hidden_act": "relu"}), r"hidden_act")
expect_error("sinusoid_odd", "sinusoidal_position_encoding(hidden_size=7)",
             lambda: _e().sinusoidal_position_encoding(4, 7), r"even")
expect_error("encoder_1d_ids", "Encoder on 1-D input_ids",
             lambda: _e().Encoder(tiny_cfg())(torch.ones(4, dtype=torch.long)), r"input_ids")
expect_error("encoder_mask_shape", "Encoder with an attention_mask of another shape",
             lambda: _e().Encoder(tiny_cfg())(torch.ones(1, 4, dtype=torch.long), torch.ones(1, 3)),
             r"attention_mask")
expect_error("encoder_id_beyond_vocab", "Encoder with token id 99 for 50 tokens",
             lambda: _e().Encoder(tiny_cfg())(torch.tensor([[1, 99]])), r"input_ids|vocab")
expect_error("encoder_too_long", "Encoder on 20 tokens with 16 positions",
             lambda: _e().Encoder(tiny_cfg())(torch.ones(1, 20, dtype=torch.long)), r"max_position|16|length")
expect_error("encoder_classifier_pooling", "EncoderForSequenceClassification(pooling='max')",
             lambda: _e().EncoderForSequenceClassification(tiny_cfg(), 2, "max"), r"pooling")
expect_error("encoder_classifier_one_label", "EncoderForSequenceClassification(num_labels=1)",
             lambda: _e().EncoderForSequenceClassification(tiny_cfg(), 1), r"num_labels")
expect_error("load_missing", "EncoderForSequenceClassification.load of an empty folder",
             lambda: _e().EncoderForSequenceClassification.load(tmpdir()), r"config\.json")
expect_error("load_corrupt_weights", "load with a corrupt model.safetensors",
             lambda: _e().EncoderForSequenceClassification.load(saved_encoder(weights=b"junk" * 10)),
             r"model\.safetensors|corrupt|damaged")
expect_error("load_config_missing_key", "load with a config.json lacking 'pooling'",
             lambda: _e().EncoderForSequenceClassification.load(saved_encoder(
                 config=json.dumps({"encoder": {"vocab_size": 50, "hidden_size": 16, "num_layers": 1,
                                                "num_heads": 2, "intermediate_size": 32,
                                                "max_position_embeddings": 16}, "num_labels": 2}))), r"pooling")
expect_error("load_config_not_json", "load with a config.json that is not JSON",
             lambda: _e().EncoderForSequenceClassification.load(saved_encoder(config="{oops")), r"config\.json")
expect_error("read_bert_empty", "read_bert_checkpoint of an empty folder",
             lambda: _e().read_bert_checkpoint(tmpdir()), r"config\.json")
expect_error("bert_state_missing", "bert_state_dict_to_encoder with a tensor missing",
             lambda: _e().bert_state_dict_to_encoder({}, _e().Encoder(tiny_cfg())), r"missing|lacks")


# ---------------------------------------------------------------------------------------------
# exercises

def _x():
    from textclf_utils import exercises
    return exercises


def _notebook(source: str, grade_id: str = "scaled_dot_product_attention") -> Path:
    cell = {"cell_type": "code", "source": source, "metadata": {"tags": ["exercise"],
                                                                "nbgrader": {"grade_id": grade_id}},
            "outputs": [], "execution_count": None}
    return write(tmpdir() / "submission.ipynb", json.dumps({"cells": [cell], "metadata": {}, "nbformat": 4,
                                                           "nbformat_minor": 5}))


def _first_exercise() -> str:
    return next(iter(_x().EXERCISES))


def _outcome_is(status_attr: str, fn) -> str | None:
    outcome = _x().evaluate(_first_exercise(), fn)
    return None if outcome.status == getattr(_x(), status_attr) else f"status {outcome.status}: {outcome.message}"


def _raise_not_implemented(*a, **k):
    raise NotImplementedError


def _evaluate_sys_exit():
    try:
        _x().evaluate(_first_exercise(), lambda *a, **k: sys.exit(1))
    except SystemExit:
        return "a learner's sys.exit() escapes evaluate() and ends the grading run"
    return None


def _check_grading():
    with env(**{_x().GRADING_ENV: "1"}):
        try:
            _x().check(_first_exercise(), lambda *a, **k: None)
        except _x().ExerciseNotPassed:
            return None
    return "a failed exercise passed silently under grading"


area("exercises")
expect_error("evaluate_unknown", "evaluate('softmax_attention', f)",
             lambda: _x().evaluate("softmax_attention", lambda: None), r"softmax_attention")
expect_good("evaluate_not_callable", "evaluate(name, 5) reports FAILED instead of raising",
            lambda: _outcome_is("FAILED", 5))
expect_good("evaluate_not_done", "a function raising NotImplementedError is NOT_DONE",
            lambda: _outcome_is("NOT_DONE", _raise_not_implemented))
expect_good("evaluate_returns_none", "a function returning None is FAILED (no exception)",
            lambda: _outcome_is("FAILED", lambda *a, **k: None))
expect_good("evaluate_sys_exit", "a learner's function calling sys.exit() is FAILED, not the end of grading",
            _evaluate_sys_exit)
expect_good("check_grading_raises", "check() under grading raises ExerciseNotPassed", _check_grading)
expect_error("grade_not_json", "grade_notebook of a file that is not JSON",
             lambda: _x().grade_notebook(write(tmpdir() / "s.ipynb", "{not json")), r"s\.ipynb")
expect_error("grade_missing", "grade_notebook of a missing file",
             lambda: _x().grade_notebook(tmpdir() / "gone.ipynb"), r"gone\.ipynb")
expect_error("grade_unknown_grade_id", "an exercise cell naming no known exercise",
             lambda: _x().grade_notebook(_notebook("x = 1", grade_id="nope")), r"nope")
expect_good("grade_syntax_error", "a cell with a syntax error is FAILED with the reason",
            lambda: None if "does not run" in _x().grade_notebook(_notebook("def f(:\n"))[0].message else "no reason")
expect_good("grade_no_function", "a cell that defines no function of that name is FAILED",
            lambda: None if "defines no function" in _x().grade_notebook(_notebook("x = 1"))[0].message
            else "no reason")
expect_error("grade_notebook_list", "a notebook whose top level is a list",
             lambda: _x().grade_notebook(write(tmpdir() / "l.ipynb", "[]")), r"l\.ipynb")


# ---------------------------------------------------------------------------------------------
# config/results

def _results():
    from textclf_utils import results
    return results


def _record_keeps_others():
    folder = tmpdir()
    write(folder / "cpu.json", json.dumps({"01_other": {"acc": 0.9}}))
    _results().record_results("03_finetune_bert", {"acc": 0.8}, "cpu", folder)
    saved = json.loads((folder / "cpu.json").read_text())
    return None if saved.get("01_other") == {"acc": 0.9} else "another notebook's figures were dropped"


def _record_corrupt_file():
    folder = tmpdir()
    write(folder / "cpu.json", "{half a file")
    _results().record_results("03_finetune_bert", {"acc": 0.8}, "cpu", folder)


area("config/results")
expect_error("profile_unknown", "get_profile('fast')",
             lambda: __import__("textclf_utils.config", fromlist=["x"]).get_profile("fast"), r"fast")
expect_error("profile_env_bogus", "TEXTCLF_PROFILE=bogus",
             lambda: _with_env_call(TEXTCLF_PROFILE="bogus"), r"TEXTCLF_PROFILE")


def _with_env_call(**values):
    with env(**values):
        return __import__("textclf_utils.config", fromlist=["x"]).get_profile()


expect_error("record_bad_notebook", "record_results(notebook='a/b')",
             lambda: _results().record_results("a/b", {"x": 1}, "cpu", tmpdir()), r"notebook")
expect_error("record_nan", "record_results with a NaN figure",
             lambda: _results().record_results("03_x", {"acc": float("nan")}, "cpu", tmpdir()), r"acc")
expect_error("record_none", "record_results with None", lambda: _results().record_results("03_x", {"acc": None},
                                                                                           "cpu", tmpdir()), r"acc")
expect_error("record_array", "record_results with a NumPy array of 3",
             lambda: _results().record_results("03_x", {"acc": np.ones(3)}, "cpu", tmpdir()), r"acc")
expect_error("record_empty", "record_results with no figures",
             lambda: _results().record_results("03_x", {}, "cpu", tmpdir()), r"No figures")
expect_good("record_keeps_other_notebooks", "record_results keeps the other notebooks' figures",
            _record_keeps_others, loss=True)
expect_error("record_corrupt_results_file", "record_results onto a corrupt results/cpu.json",
             _record_corrupt_file, r"cpu\.json")
expect_error("set_seed_str", "set_seed('42')",
             lambda: __import__("textclf_utils.config", fromlist=["x"]).set_seed("42"), r"seed")


# ---------------------------------------------------------------------------------------------
# scripts

def _never_run_notebooks(path, output, timeout):
    """Stands in for run_course.run_notebook: the probes never execute a notebook."""
    _NOTEBOOK_CALLS.append((os.environ.get("TEXTCLF_PROFILE"), str(output)))
    return True, 0.0


_NOTEBOOK_CALLS: list[tuple[str | None, str]] = []


def _script(name: str):
    import importlib
    module = importlib.import_module(name)
    if name == "run_course":
        module.run_notebook = _never_run_notebooks
    return module


def _finetune_build(*argv: str):
    finetune = _script("finetune")
    with contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            args = finetune.parse_args(["--dataset", "sst2", "--output-dir", str(tmpdir() / "new"), *argv])
        except SystemExit as exit_:  # argparse's usage error: the script's own message
            raise CliExit(f"exit {exit_.code}: {err.getvalue().strip().splitlines()[-1] if err.getvalue() else exit_}")
    return finetune.build_recipe(args)


def _finetune_existing_output():
    out = tmpdir()
    write(out / "model.safetensors", "previous run")
    try:
        _script("finetune").parse_args(["--dataset", "sst2", "--output-dir", str(out)])
    except SystemExit:
        return None if (out / "model.safetensors").read_text() == "previous run" else "the previous run was touched"
    return "a non-empty --output-dir was accepted without --overwrite"


def _run_course_profile():
    run_course = _script("run_course")
    seen = []

    def fake(path, output, timeout):
        seen.append((os.environ.get("TEXTCLF_PROFILE"), str(output)))
        return True, 0.0

    out = tmpdir()
    with env(TEXTCLF_PROFILE="smoke"), patched(run_course, "run_notebook", fake), \
            contextlib.redirect_stdout(io.StringIO()):
        run_course.main(["01", "--output-dir", str(out)])
    if not seen:
        return "no notebook matched '01'"
    return None if all(p == "smoke" for p, _ in seen) else f"notebooks ran under {seen[0][0]}"


def _make_mirror_keeps_target(src_bytes: bytes | None):
    make_mirror = _script("make_mirror")
    from textclf_utils.data import get_spec
    spec = get_spec("sms_spam")
    good = mirror_dir() / "sms_spam" / "SMSSpamCollection"
    src = good if src_bytes is None else write(tmpdir() / "SMSSpamCollection", src_bytes)
    target = write(tmpdir() / "out" / "sms_spam" / "SMSSpamCollection", "the teacher's own copy")
    try:
        make_mirror.copy_verified(src, target, spec, "SMSSpamCollection", force=False)
    except make_mirror.MirrorError:
        return None if target.read_text() == "the teacher's own copy" else "the existing file was changed"
    return "an existing, different file was replaced without --force"


def _make_student_keeps():
    make_student = _script("make_student")
    out = tmpdir()
    write(out / "mine.txt", "keep me")
    try:
        make_student.make_student_edition(out, force=False)
    except SystemExit:
        return None if (out / "mine.txt").exists() else "the folder's files were deleted"
    return "a non-empty --out was written into without --force"


def _cli(module: str, *argv: str):
    with contextlib.redirect_stderr(io.StringIO()) as err:
        try:
            return _script(module).main(list(argv))
        except SystemExit as exit_:
            raise CliExit(f"exit {exit_.code}: {err.getvalue().strip().splitlines()[-1] if err.getvalue() else exit_}")


class CliExit(Exception):
    """A script's argparse usage error (SystemExit), with its message: counts as the script's own error."""


area("scripts")
expect_good("finetune_output_dir_exists", "finetune.py refuses a non-empty --output-dir without --overwrite "
            "and touches nothing", _finetune_existing_output, loss=True)
expect_error("finetune_output_dir_file", "finetune.py --output-dir pointing at a file",
             lambda: _cli("finetune", "--dataset", "sst2", "--output-dir", str(write(tmpdir() / "f", "x"))),
             r"is a file")
expect_error("finetune_unknown_dataset", "finetune.py --dataset imdb",
             lambda: _cli("finetune", "--dataset", "imdb", "--output-dir", str(tmpdir())), r"imdb")
expect_error("finetune_epochs_0", "finetune.py --epochs 0 (checked before data and model load?)",
             lambda: _finetune_build("--epochs", "0"), r"epochs")
expect_error("finetune_batch_0", "finetune.py --batch-size 0 (checked before data and model load?)",
             lambda: _finetune_build("--batch-size", "0"), r"batch")
expect_error("finetune_lr_negative", "finetune.py --learning-rate -1",
             lambda: _finetune_build("--learning-rate", "-1"), r"learning")
expect_error("finetune_max_length_0", "finetune.py --max-length 0", lambda: _finetune_build("--max-length", "0"),
             r"max.length")
expect_error("finetune_train_examples_negative", "finetune.py --train-examples -5",
             lambda: _finetune_build("--train-examples", "-5"), r"train.examples")
expect_error("finetune_model_missing_folder", "finetune.py --model ./no-such-folder",
             lambda: _finetune_build("--model", "./no-such-folder"), r"no-such-folder")
expect_good("run_course_profile_env", "run_course.py runs under $TEXTCLF_PROFILE when --profile is not given",
            _run_course_profile)
expect_error("run_course_profile_bogus", "run_course.py with TEXTCLF_PROFILE=bogus",
             lambda: _run_course_env_bogus(), r"bogus")
expect_error("run_course_no_match", "run_course.py 99 (no notebook matches)",
             lambda: _run_course_nomatch(), r"99")


def _run_course_env_bogus():
    with env(TEXTCLF_PROFILE="bogus"), contextlib.redirect_stdout(io.StringIO()):
        return _cli("run_course", "01", "--output-dir", str(tmpdir()))


def _run_course_nomatch():
    with contextlib.redirect_stderr(io.StringIO()) as err:
        code = _script("run_course").main(["99", "--output-dir", str(tmpdir())])
    if code != 0:
        raise CliExit(f"exit {code}: {err.getvalue().strip()}")
    return code


expect_good("make_mirror_keeps_different_target", "make_mirror does not replace a different file without --force",
            lambda: _make_mirror_keeps_target(None), loss=True)
expect_good("make_mirror_corrupt_source", "make_mirror refuses a corrupt source and leaves the target",
            lambda: _make_mirror_keeps_target(b"ham\tnot the published file\n"), loss=True)
expect_good("make_student_keeps_folder", "make_student refuses a non-empty --out without --force",
            _make_student_keeps, loss=True)
expect_error("grade_missing_file", "grade.py on a missing notebook",
             lambda: _cli("grade", str(tmpdir() / "gone.ipynb")), r"gone\.ipynb")


# ---------------------------------------------------------------------------------------------
# Running and classifying


class _Timeout(BaseException):
    pass


def _on_alarm(signum, frame):
    raise _Timeout()


def _raising_frame(err: BaseException) -> str:
    tb = err.__traceback__
    last = None
    while tb is not None:
        last = tb.tb_frame.f_code.co_filename
        tb = tb.tb_next
    return last or "?"


def _in_package(filename: str) -> bool:
    return filename.startswith(PACKAGE_DIRS) and not filename.endswith("fault_catalogue.py")


def _package_error_types() -> tuple[type, ...]:
    types = list(CLEAR_TYPES)
    with contextlib.suppress(Exception):
        from textclf_utils import data, exercises, model_cache, models
        types += [data.DataUnavailableError, data.ChecksumError, model_cache.ModelCacheError,
                  models.OfflineModelError, exercises.ExerciseNotPassed]
    return tuple(types)


def _first_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0][:220] if text else ''}"


def classify(probe: Probe, err: BaseException | None, value: Any) -> tuple[str, bool, str]:
    if probe.kind == "good" and err is None:
        if value is None:
            return "good", True, "behaved as expected"
        return ("data loss" if probe.loss else "bad"), False, str(value)
    if err is None:
        return "silent", False, f"returned {type(value).__name__} {str(value)[:120]!r}".replace("\n", " ")
    if isinstance(err, CliExit):
        if probe.kind == "error" and re.search(probe.expect, str(err), re.I | re.S):
            return "clear", True, str(err)[:240]
        return "vague", False, str(err)[:240]
    where = _raising_frame(err)
    by_package = _in_package(where)
    message = str(err)
    if not by_package:
        return "raw", False, f"{_first_line(err)}  [raised in {_short(where)}]"
    if probe.kind == "error" and isinstance(err, _package_error_types()) and \
            re.search(probe.expect, message, re.I | re.S):
        return "clear", True, _first_line(err)
    if probe.kind == "good":
        return "bad", False, f"raised {_first_line(err)}"
    return "vague", False, f"{_first_line(err)}  [raised in {_short(where)}; expected /{probe.expect}/]"


def _short(filename: str) -> str:
    parts = Path(filename).parts
    for anchor in ("site-packages", "textclf_utils", "scripts", "lib"):
        if anchor in parts:
            return "/".join(parts[parts.index(anchor) + (1 if anchor == "site-packages" else 0):])
    return filename


def run_probe(probe: Probe) -> Result:
    import warnings
    old = signal.signal(signal.SIGALRM, _on_alarm)
    signal.alarm(PROBE_LIMIT_S)
    started = time.perf_counter()
    err, value = None, None
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()), \
                contextlib.redirect_stderr(io.StringIO()):
            warnings.simplefilter("ignore")
            value = probe.call()
    except _Timeout:
        err = TimeoutError(f"probe ran past {PROBE_LIMIT_S} s")
        seconds = time.perf_counter() - started
        return Result(probe.area, probe.name, probe.description, "hang", False, str(err), seconds, probe.kind)
    except BaseException as caught:  # noqa: BLE001 - SystemExit and KeyboardInterrupt from code under test too
        if isinstance(caught, KeyboardInterrupt):
            raise
        err = caught
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, old)
    seconds = time.perf_counter() - started
    outcome, well, detail = classify(probe, err, value)
    if isinstance(err, SystemExit) and not isinstance(err, CliExit):
        outcome, well, detail = ("bad" if probe.kind == "good" else "raw"), False, f"SystemExit({err.code})"
    return Result(probe.area, probe.name, probe.description, outcome, well, detail, seconds, probe.kind)


@contextlib.contextmanager
def quiet_libraries():
    """Silence the libraries' logging and progress bars, which the cases would otherwise print, and run on one
    thread (the inputs are tiny); everything is restored afterwards."""
    import logging

    from datasets.utils import logging as datasets_logging
    from transformers.utils import logging as hf_logging

    verbosity, threads = hf_logging.get_verbosity(), torch.get_num_threads()
    logging.disable(logging.WARNING)
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    datasets_logging.disable_progress_bar()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        datasets_logging.enable_progress_bar()
        hf_logging.enable_progress_bar()
        hf_logging.set_verbosity(verbosity)
        logging.disable(logging.NOTSET)


def remove_temporary_folders() -> None:
    for path in _TMP:
        shutil.rmtree(path, ignore_errors=True)
    _TMP.clear()
