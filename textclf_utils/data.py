"""The course's datasets: find, verify, cache and split them, as ``datasets.DatasetDict``.

Every dataset comes back with a ``text`` column and a ``label`` column (a ``ClassLabel`` with names).
Files are looked up in this order:

1. ``$TEXTCLF_DATA_DIR/<dataset>/<file>`` (a mirror folder, e.g. for a classroom with no internet);
2. the download cache (``$TEXTCLF_CACHE_DIR``, else the repository's ``data/`` folder, else
   ``~/.cache/textclf_utils``);
3. a download, written to the cache atomically: from the Hugging Face Hub with ``datasets.load_dataset``
   first, else from the original archive where it still works.

Files are verified by content, not bytes: each has a published row count and a fingerprint, the SHA-256
of its normalised ``(text, label name)`` rows (whitespace collapsed, rows sorted), so that the Hub's copy
and the original file agree whatever their formatting and order.
"""

from __future__ import annotations

import codecs
import contextlib
import csv
import hashlib
import http.client
import os
import re
import shutil
import tempfile
import time
import urllib.error
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
from datasets import ClassLabel, Dataset, DatasetDict, Features, Value

from .config import hub_is_reachable

DATA_DIR_ENV = "TEXTCLF_DATA_DIR"
CACHE_DIR_ENV = "TEXTCLF_CACHE_DIR"
OFFLINE_ENV = "TEXTCLF_OFFLINE"
DOWNLOAD_TIMEOUT_S = 15.0  # the longest wait for one read
DOWNLOAD_DEADLINE_S = 1800.0  # the longest a whole download may take
# SST-2 sentences held out of the training file for validation (the GLUE dev set is the test set)
SST2_VALIDATION_SIZE = 1000


class DataUnavailableError(FileNotFoundError):
    """A dataset's files are neither in a mirror nor in the cache, and could not be downloaded."""


class ChecksumError(ValueError):
    """A file's SHA-256 is not the published one: it is refused and never cached."""


@dataclass(frozen=True)
class HubSplit:
    """One split of a Hugging Face Hub dataset, loaded with ``datasets.load_dataset(repo, config, split=...)``."""

    repo: str
    split: str
    config: str | None = None
    text_column: str = "text"
    label_column: str = "label"


@dataclass(frozen=True)
class SourceFile:
    """One file of a dataset: its name in the mirror/cache, its content, and where it comes from."""

    name: str  # path relative to the dataset's folder, e.g. "train.tsv"
    rows: int  # the published number of rows (header excluded)
    fingerprint: str  # SHA-256 of the normalised (text, label name) rows; see ``content_fingerprint``
    hub: HubSplit  # the first source
    url: str | None = None  # the second source: a direct file, or a zip archive holding it
    member: str | None = None  # the file's path inside the zip archive, when ``url`` is one


@dataclass(frozen=True)
class FileFormat:
    """How a dataset's files are laid out: one example a line, text and label separated by ``sep``."""

    sep: str
    label_first: bool
    header: str | None = None  # the first line, when the files have one
    label_ids: bool = False  # labels written as class ids (else as names)


@dataclass(frozen=True)
class DatasetSpec:
    name: str
    description: str
    label_names: tuple[str, ...]
    files: tuple[SourceFile, ...]
    build: Callable[[Path, "DatasetSpec", int], DatasetDict]
    file_format: FileFormat


# ---------------------------------------------------------------------------------------------
# Parsing the original files


def _features(label_names: Sequence[str]) -> Features:
    return Features({"text": Value("string"), "label": ClassLabel(names=list(label_names))})


def _read_lines(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def _split_line(line: str, sep: str, path: Path, number: int, label_first: bool) -> tuple[str, str]:
    parts = line.split(sep, 1) if label_first else line.rsplit(sep, 1)
    if len(parts) != 2:
        raise ValueError(f"{path}, line {number}: expected two fields separated by {sep!r}, got {line[:80]!r}")
    return (parts[1], parts[0]) if label_first else (parts[0], parts[1])


def _parse(path: Path, sep: str, label_first: bool, header: bool) -> tuple[list[str], list[str]]:
    texts, labels = [], []
    lines = _read_lines(path)
    for number, line in enumerate(lines[1:] if header else lines, start=2 if header else 1):
        text, label = _split_line(line, sep, path, number, label_first)
        texts.append(text.strip())
        labels.append(label.strip())
    return texts, labels


def _to_dataset(texts: list[str], labels: list, label_names: Sequence[str]) -> Dataset:
    ids = [label if isinstance(label, int) else label_names.index(label) for label in labels]
    return Dataset.from_dict({"text": texts, "label": ids}, features=_features(label_names))


def _read_sst2(folder: Path, spec: DatasetSpec) -> DatasetDict:
    """SST-2 as GLUE publishes it: ``train`` (67,349 phrases and sentences) and ``validation`` (872)."""
    splits = {}
    for split, file in (("train", "train.tsv"), ("validation", "dev.tsv")):
        texts, labels = _parse(folder / file, "\t", label_first=False, header=True)
        splits[split] = _to_dataset(texts, [int(v) for v in labels], spec.label_names)
    return DatasetDict(splits)


def _build_sst2(folder: Path, spec: DatasetSpec, seed: int) -> DatasetDict:
    """The course's SST-2 protocol: ``test`` = the 872 GLUE dev sentences; ``validation`` = whole
    sentences held out of GLUE train; ``train`` = the rest, without the validation sentences' sub-phrases."""
    original = _read_sst2(folder, spec)
    train = original["train"]
    split = leak_free_sst2_split(column_values(train, "text"), column_values(train, "label"), seed=seed)
    return DatasetDict(train=original["train"].select(split.train_rows),
                       validation=original["train"].select(split.validation_rows),
                       test=original["validation"])


@dataclass(frozen=True)
class LeakFreeSplit:
    """Row indices into SST-2's training file: what trains, what validates, and what was dropped."""

    train_rows: np.ndarray
    validation_rows: np.ndarray
    removed_rows: np.ndarray  # training rows that are sub-phrases of a validation sentence
    whole_rows: np.ndarray  # training rows that are no other row's sub-phrase: whole sentences

    def summary(self) -> str:
        return (f"{len(self.whole_rows):,} whole sentences among {len(self.train_rows) + len(self.validation_rows) + len(self.removed_rows):,} "
                f"training rows; {len(self.validation_rows):,} of them held out for validation; "
                f"{len(self.removed_rows):,} rows removed from training as sub-phrases of a validation sentence; "
                f"{len(self.train_rows):,} rows left to train on")


def word_runs(text: str) -> Iterator[str]:
    """Every run of consecutive words of ``text`` shorter than the whole: the phrases SST-2 could hold of it."""
    return _word_spans(text.split())


def _word_spans(words: list[str]) -> Iterator[str]:
    """Every contiguous run of ``words`` shorter than the whole, joined by spaces."""
    n = len(words)
    for start in range(n):
        for end in range(start + 1, n + 1):
            if end - start < n:
                yield " ".join(words[start:end])


def leak_free_sst2_split(texts: Sequence[str], labels: Sequence[int], validation_size: int = SST2_VALIDATION_SIZE,
                         seed: int = 42) -> LeakFreeSplit:
    """Hold ``validation_size`` whole sentences out of SST-2's training rows, stratified by label, and drop
    every training row that is a sub-phrase (a run of words) of one of them.

    SST-2's training rows are the phrases of the treebank's parse trees *and* their sentences: a random
    training row used for validation would have its own sub-phrases, labelled, in the training data. The
    sentences held out are "whole" ones (no other row contains them), like the test sentences.
    """
    if validation_size <= 0:
        raise ValueError(f"validation_size must be positive, got {validation_size}.")
    texts = list(texts)
    labels = np.asarray(labels)
    if len(texts) != len(labels):
        raise ValueError(f"leak_free_sst2_split got {len(texts)} texts but {len(labels)} labels: give one label per text.")
    present = set(texts)
    inside_another = {span for text in texts for span in _word_spans(text.split()) if span in present}
    whole = np.array([i for i, text in enumerate(texts) if text not in inside_another])
    if validation_size >= len(whole):
        raise ValueError(f"validation_size={validation_size} is not below the {len(whole)} whole sentences.")
    validation_rows = whole[stratified_rows(labels[whole], validation_size, seed)]
    held_out = {texts[i] for i in validation_rows}
    leaking = {span for i in validation_rows for span in _word_spans(texts[i].split())} | held_out
    is_validation = np.zeros(len(texts), dtype=bool)
    is_validation[validation_rows] = True
    removed = np.array([i for i, text in enumerate(texts) if text in leaking and not is_validation[i]], dtype=int)
    keep = ~is_validation
    keep[removed] = False
    return LeakFreeSplit(train_rows=np.flatnonzero(keep), validation_rows=validation_rows,
                         removed_rows=removed, whole_rows=whole)


def sst2_sentence_groups(texts: Sequence[str]) -> np.ndarray:
    """For each SST-2 training row, the index of the whole sentence whose parse tree holds it (a row that no
    whole sentence contains is its own group). Rows of one group share words and labels: keep a group in one
    split, and resample groups, not rows, for intervals."""
    texts = list(texts)
    row_of = {text: i for i, text in enumerate(texts)}
    inside_another = {span for text in texts for span in _word_spans(text.split()) if span in row_of}
    groups = np.full(len(texts), -1, dtype=int)
    for i, text in enumerate(texts):
        if text in inside_another:
            continue
        for span in [text, *_word_spans(text.split())]:
            j = row_of.get(span)
            if j is not None and groups[j] < 0:
                groups[j] = i
    alone = groups < 0
    groups[alone] = np.flatnonzero(alone)
    return groups


def _build_sms_spam(folder: Path, spec: DatasetSpec, seed: int) -> DatasetDict:
    texts, labels = _parse(folder / "SMSSpamCollection", "\t", label_first=True, header=False)
    unique: dict[str, str] = {}
    for text, label in zip(texts, labels):
        unique.setdefault(text, label)  # exact repeats removed before splitting, or they leak
    full = _to_dataset(list(unique), list(unique.values()), spec.label_names)
    return split_dataset(full, validation_size=0.1, test_size=0.1, seed=seed)


def _build_emotion(folder: Path, spec: DatasetSpec, seed: int) -> DatasetDict:
    splits = {}
    for split, file in (("train", "train.txt"), ("validation", "val.txt"), ("test", "test.txt")):
        texts, labels = _parse(folder / file, ";", label_first=False, header=False)
        splits[split] = _to_dataset(texts, labels, spec.label_names)
    return DatasetDict(splits)


_GLUE_SST2 = "https://dl.fbaipublicfiles.com/glue/data/SST-2.zip"
_UCI_SMS = "https://archive.ics.uci.edu/static/public/228/sms+spam+collection.zip"
_HUB_SST2 = "stanfordnlp/sst2"
_HUB_SMS = "ucirvine/sms_spam"
_HUB_EMOTION = "dair-ai/emotion"

DATASETS: dict[str, DatasetSpec] = {
    "sst2": DatasetSpec(
        name="sst2",
        description=("SST-2 movie-review phrases and sentences, binary sentiment (GLUE): test = the 872 dev "
                     "sentences; validation = 1,000 whole training sentences, their sub-phrases removed from train"),
        label_names=("negative", "positive"),
        files=(
            SourceFile("train.tsv", 67_349, "989ebe8df6434ee1da2b52f10d2fb3bf65b24eff82fa27e1bd36f31c4152e93e",
                       HubSplit(_HUB_SST2, "train", text_column="sentence"), _GLUE_SST2, "SST-2/train.tsv"),
            SourceFile("dev.tsv", 872, "9fba67a4735718dfa9b6531f2b31cf187ad83fcdd5eb80705c773a213f9f0093",
                       HubSplit(_HUB_SST2, "validation", text_column="sentence"), _GLUE_SST2, "SST-2/dev.tsv"),
        ),
        build=_build_sst2,
        file_format=FileFormat(sep="\t", label_first=False, header="sentence\tlabel", label_ids=True),
    ),
    "sms_spam": DatasetSpec(
        name="sms_spam",
        description="SMS Spam Collection v.1: 5,160 unique messages (12.4 % spam), split 80/10/10 by label",
        label_names=("ham", "spam"),
        files=(
            SourceFile("SMSSpamCollection", 5_574,
                       "e662d3cbb41419650000164b67e635a99360156c1f6c8f2fc347fbd8bea4b25e",
                       HubSplit(_HUB_SMS, "train", text_column="sms"), _UCI_SMS, "SMSSpamCollection"),
        ),
        build=_build_sms_spam,
        file_format=FileFormat(sep="\t", label_first=True),
    ),
    "emotion": DatasetSpec(
        name="emotion",
        description="emotion (CARER) tweets, 6 classes: train 16,000 / validation 2,000 / test 2,000",
        label_names=("sadness", "joy", "love", "anger", "fear", "surprise"),
        files=(  # the authors' Dropbox links are dead since 2022: the Hub is the only source
            SourceFile("train.txt", 16_000,
                       "b6fa467fd335067f191227d3d8975a6217ed32bc5aadc7f63732a096a2d80f40",
                       HubSplit(_HUB_EMOTION, "train", "split")),
            SourceFile("val.txt", 2_000,
                       "56bb508b344e0e7e33296afc10406ff798416dd9be655517678598815b5aefc5",
                       HubSplit(_HUB_EMOTION, "validation", "split")),
            SourceFile("test.txt", 2_000,
                       "429aca9250c1956c5d0a6b06851bc1fca305723dafa8030f199061d68032fc77",
                       HubSplit(_HUB_EMOTION, "test", "split")),
        ),
        build=_build_emotion,
        file_format=FileFormat(sep=";", label_first=False),
    ),
}


# ---------------------------------------------------------------------------------------------
# Verifying content


def normalise_text(text: str) -> str:
    """``text`` with every run of whitespace made one space and the ends stripped."""
    return " ".join(text.split())


def content_fingerprint(texts: Sequence[str], labels: Sequence[str]) -> str:
    """SHA-256 of the rows ``normalised text <TAB> label name``, sorted: the same for any file layout,
    row order, line endings or whitespace, different for any changed text or label."""
    rows = sorted(f"{normalise_text(t)}\t{label}" for t, label in zip(texts, labels))
    return hashlib.sha256("\n".join(rows).encode("utf-8")).hexdigest()


def read_rows(path: Path, spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """The ``(texts, label names)`` of one of ``spec``'s files, in file order."""
    fmt = spec.file_format
    texts, labels = _parse(path, fmt.sep, label_first=fmt.label_first, header=fmt.header is not None)
    if fmt.label_ids:
        bad = sorted({label for label in labels if not (label.isdigit() and int(label) < len(spec.label_names))})
        if bad:
            raise ChecksumError(f"{path} has labels {bad[:5]} that are not class ids of {spec.name}.")
        labels = [spec.label_names[int(label)] for label in labels]
    return texts, labels


def _verified(path: Path, file: SourceFile, spec: DatasetSpec, origin: str | None = None) -> Path:
    """``path`` if its rows are the published ones (count and fingerprint); else ``ChecksumError``
    naming ``origin`` (default: the path)."""
    try:
        texts, labels = read_rows(path, spec)
    except (ValueError, UnicodeDecodeError) as err:
        raise ChecksumError(f"{origin or path} cannot be read as {spec.name}/{file.name}: {err}") from err
    fingerprint = content_fingerprint(texts, labels)
    if len(texts) != file.rows or fingerprint != file.fingerprint:
        raise ChecksumError(
            f"{origin or path} is corrupt or not the published {spec.name}/{file.name}: it has {len(texts):,} rows "
            f"(expected {file.rows:,}) and the SHA-256 of its normalised rows is {fingerprint} (expected "
            f"{file.fingerprint}). It was refused (not used, not cached); replace it with the original "
            "(see data/README.md)."
        )
    return path


def verify_file(path: Path, dataset: str, file_name: str, origin: str | None = None) -> SourceFile:
    """The registry entry of ``dataset``'s file ``file_name`` (e.g. ``"sst2"``, ``"train.tsv"``), once ``path``
    is checked to hold its published rows; else ``ChecksumError`` naming ``origin`` (default: the path) with
    the expected and actual row count and SHA-256. ``ValueError`` for a file the dataset does not have."""
    spec = get_spec(dataset)
    files = {f.name: f for f in spec.files}
    if file_name not in files:
        raise ValueError(f"{spec.name} has no file {file_name!r}; its files are {', '.join(files)}.")
    _verified(Path(path), files[file_name], spec, origin)
    return files[file_name]


# ---------------------------------------------------------------------------------------------
# Finding and downloading files


def cache_dir() -> Path:
    """Where downloads are kept: ``$TEXTCLF_CACHE_DIR``, the repository's ``data/``, or ``~/.cache``."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    repo_data = Path(__file__).resolve().parent.parent / "data"
    if (repo_data / "README.md").is_file():
        return repo_data
    return Path.home() / ".cache" / "textclf_utils"


def within_deadline(call: Callable[[], Any], seconds: float, what: str) -> Any:
    """``call()``'s result, or ``TimeoutError`` naming ``what`` once ``seconds`` have passed (the call goes on
    in a background thread, whose result is then dropped: nothing it writes is used)."""
    import concurrent.futures

    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="textclf-download")
    future = pool.submit(call)
    pool.shutdown(wait=False)
    try:
        return future.result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        raise TimeoutError(f"{what} took more than {seconds:g} s") from None


def load_hub_rows(hub: HubSplit, spec: DatasetSpec) -> tuple[list[str], list[str]]:
    """``(texts, label names)`` of one Hub split, read with ``datasets.load_dataset``."""
    import datasets

    split = datasets.load_dataset(hub.repo, hub.config, split=hub.split)
    feature = split.features[hub.label_column]
    labels = split[hub.label_column]
    names = [feature.int2str(int(label)) for label in labels] if hasattr(feature, "int2str") else \
        [str(label) for label in labels]
    unknown = sorted(set(names) - set(spec.label_names))
    if unknown:
        raise ChecksumError(f"{hub.repo} ({hub.split}) has labels {unknown[:5]} that {spec.name} does not know.")
    return list(split[hub.text_column]), names


def _write_rows(path: Path, texts: Sequence[str], labels: Sequence[str], spec: DatasetSpec) -> None:
    """Write rows in ``spec``'s file format: texts stripped, tabs and line breaks inside them made spaces
    (so each row stays one line), other whitespace kept as the source has it."""
    fmt = spec.file_format
    lines = [fmt.header] if fmt.header is not None else []
    for text, label in zip(texts, labels):
        value = str(spec.label_names.index(label)) if fmt.label_ids else label
        text = re.sub(r"[\t\r\n]", " ", text.strip())
        lines.append(f"{value}{fmt.sep}{text}" if fmt.label_first else f"{text}{fmt.sep}{value}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def _remove_stale_partials(folder: Path) -> None:
    """Delete the ``.partial-*`` folders a killed download left behind (older than any live download)."""
    now = time.time()
    for stale in folder.glob(".partial-*"):
        with contextlib.suppress(OSError):
            if now - stale.stat().st_mtime > DOWNLOAD_DEADLINE_S:
                shutil.rmtree(stale, ignore_errors=True)


def _fetch_url(file: SourceFile, target: Path) -> None:
    """Download ``file.url`` (and extract ``file.member``) to ``target``. Each read may wait
    ``DOWNLOAD_TIMEOUT_S``; the whole download may take ``DOWNLOAD_DEADLINE_S``."""
    from tqdm.auto import tqdm

    fetched = target.parent / "download"
    deadline = time.monotonic() + DOWNLOAD_DEADLINE_S
    with urllib.request.urlopen(file.url, timeout=DOWNLOAD_TIMEOUT_S) as response:
        total = int(response.headers.get("Content-Length") or 0) or None
        with open(fetched, "wb") as out, tqdm(total=total, unit="B", unit_scale=True,
                                               desc=f"downloading {file.name}") as bar:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                bar.update(len(block))
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the download of {file.url} took more than {DOWNLOAD_DEADLINE_S:g} s "
                                       f"({out.tell()} bytes so far)")
        if total is not None and fetched.stat().st_size != total:
            raise OSError(f"download of {file.url} stopped after {fetched.stat().st_size} of {total} bytes")
    if file.member is None:
        os.replace(fetched, target)
        return
    with zipfile.ZipFile(fetched) as archive, archive.open(file.member) as src, open(target, "wb") as dst:
        shutil.copyfileobj(src, dst)


_DOWNLOAD_ERRORS = (urllib.error.URLError, http.client.HTTPException, OSError, zipfile.BadZipFile, KeyError)


def _download(file: SourceFile, spec: DatasetSpec, target: Path) -> None:
    """Fetch ``file`` into ``target``: from the Hub when it is reachable, else from ``file.url``. Verified
    by content, written atomically: nothing half-written or unverified is ever left there."""
    target.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_partials(target.parent)
    failures = []
    with tempfile.TemporaryDirectory(dir=target.parent, prefix=".partial-") as tmp:
        fetched = Path(tmp) / file.name.replace("/", "_")
        if hub_is_reachable():
            try:
                rows = within_deadline(lambda: load_hub_rows(file.hub, spec), DOWNLOAD_DEADLINE_S,
                                       f"reading {file.hub.repo} from the Hub")
                _write_rows(fetched, *rows, spec)
                _verified(fetched, file, spec, origin=f"The Hub's {file.hub.repo} ({file.hub.split} split)")
                os.replace(fetched, target)
                return
            except ChecksumError:
                if file.url is None:  # no second source: the changed content is the answer
                    raise
                failures.append(f"{file.hub.repo}: its rows are not the published ones")
            except Exception as err:  # datasets raises many kinds; the archive is the second chance
                failures.append(f"{file.hub.repo}: {type(err).__name__}: {err}")
        else:
            failures.append("the Hugging Face Hub is not reachable")
        if file.url is None:
            raise DataUnavailableError("; ".join(failures))
        try:
            _fetch_url(file, fetched)
        except _DOWNLOAD_ERRORS as err:
            failures.append(f"{file.url}: {err}")
            raise DataUnavailableError("; ".join(failures)) from err
        _verified(fetched, file, spec, origin=f"The download of {file.name} from {file.url}")
        os.replace(fetched, target)


def _sources(file: SourceFile) -> str:
    hub = f"the Hub's {file.hub.repo}" + (f" (config {file.hub.config!r}" if file.hub.config else " (") + \
        f" split {file.hub.split!r})"
    archive = f", or {file.url}" + (f" member {file.member}" if file.member else "") if file.url else ""
    return hub + archive


def _missing_files_message(spec: DatasetSpec, reason: str) -> str:
    mirror = os.environ.get(DATA_DIR_ENV)
    lines = [
        f"The {spec.name} dataset is not available here ({reason}).",
        "Put these files in a folder and point "
        f"{DATA_DIR_ENV} at it, or put them in the cache folder {cache_dir() / spec.name}:",
    ]
    lines += [f"  {spec.name}/{f.name}  ({f.rows:,} rows, from {_sources(f)})" for f in spec.files]
    if mirror:
        lines.append(f"{DATA_DIR_ENV} is set to {mirror}, but the files are not there.")
    lines.append("data/README.md lists the sources and licences.")
    return "\n".join(lines)


def locate_files(name: str, download: bool = True) -> Path:
    """The folder holding ``name``'s verified files: the mirror, else the cache, else downloaded into it."""
    spec = get_spec(name)
    mirror = os.environ.get(DATA_DIR_ENV)
    if mirror:
        folder = Path(mirror).expanduser() / spec.name
        if all((folder / f.name).is_file() for f in spec.files):
            for f in spec.files:
                _verified(folder / f.name, f, spec)
            return folder
    folder = cache_dir() / spec.name
    for f in spec.files:
        target = folder / f.name
        reason = "downloads are switched off"
        if target.is_file():
            try:
                _verified(target, f, spec)
                continue
            except ChecksumError:
                target.unlink()  # a corrupt cached copy can never be used: remove it, then fetch it again
                reason = f"the cached copy {target} was corrupt (wrong rows) and has been deleted"
        if not download or os.environ.get(OFFLINE_ENV, "") not in {"", "0"}:
            raise DataUnavailableError(_missing_files_message(spec, reason))
        try:
            _download(f, spec, target)
        except (PermissionError, NotADirectoryError, FileExistsError) as err:
            raise DataUnavailableError(
                f"The cache folder {folder} is not writable ({err}). Set {CACHE_DIR_ENV} to a folder you can "
                f"write to, or put the files in a mirror folder and set {DATA_DIR_ENV}.") from err
        except DataUnavailableError as err:
            raise DataUnavailableError(_missing_files_message(spec, f"download failed: {err}")) from err
    return folder


def get_spec(name: str) -> DatasetSpec:
    if not isinstance(name, str):
        raise TypeError(f"The dataset name must be a string, one of {', '.join(DATASETS)}; got {name!r}.")
    key = name.strip().lower().replace("-", "_")
    if key not in DATASETS:
        raise ValueError(
            f"Unknown dataset {name!r}. Known datasets: {', '.join(DATASETS)}; "
            "for your own data use load_csv_dataset(path, text_column=..., label_column=...)."
        )
    return DATASETS[key]


# Datasets built in this process, keyed by dataset, seed, folder and the files' sizes and times: a notebook
# or a test session asks for the same split many times, and building SST-2's leak-free split takes seconds.
_BUILT: dict[tuple, DatasetDict] = {}


def load_course_dataset(name: str, seed: int = 42, download: bool = True) -> DatasetDict:
    """Load one of the course's datasets (see ``DATASETS``) with ``text`` and ``label`` columns, split
    into ``train`` / ``validation`` / ``test``: validation makes every choice, test is scored once per
    final model. SST-2's ``test`` is GLUE's dev set (see ``leak_free_sst2_split`` for its validation).
    The files are verified on every call; the split is built once per process for the same files."""
    spec = get_spec(name)
    folder = locate_files(spec.name, download=download)
    stamps = tuple((f.name, (folder / f.name).stat().st_size, (folder / f.name).stat().st_mtime_ns) for f in spec.files)
    key = (spec.name, seed, str(folder.resolve()), stamps)
    if key not in _BUILT:
        _BUILT[key] = spec.build(folder, spec, seed)
    return DatasetDict(dict(_BUILT[key]))  # a new dict: a caller that replaces a split changes only its own


def load_original_sst2(download: bool = True) -> DatasetDict:
    """SST-2's files as GLUE publishes them: ``train`` (67,349 rows) and ``validation`` (the 872 dev
    sentences), before the course's split (``load_course_dataset("sst2")``)."""
    spec = get_spec("sst2")
    return _read_sst2(locate_files(spec.name, download=download), spec)


# ---------------------------------------------------------------------------------------------
# Splits and subsets


def split_dataset(dataset: Dataset, validation_size: float, test_size: float, seed: int = 42) -> DatasetDict:
    """A seeded split into train/validation/test, stratified by label."""
    if not 0 < validation_size < 1 or not 0 < test_size < 1 or validation_size + test_size >= 1:
        raise ValueError(f"validation_size and test_size must be fractions with a sum below 1, "
                         f"got {validation_size} and {test_size}.")
    first = dataset.train_test_split(test_size=test_size, stratify_by_column="label", seed=seed)
    second = first["train"].train_test_split(
        test_size=validation_size / (1 - test_size), stratify_by_column="label", seed=seed)
    return DatasetDict(train=second["train"], validation=second["test"], test=first["test"])


def stratified_subsample(dataset: Dataset, n: int | None, seed: int = 42) -> Dataset:
    """``n`` examples with (as nearly as possible) the label proportions of ``dataset``.

    ``None``, or an ``n`` at least the dataset's size, returns the whole dataset.
    """
    if n is None or n >= len(dataset):
        return dataset
    return dataset.select(stratified_rows(column_values(dataset, "label"), n, seed))


def column_values(dataset, name: str) -> list:
    """One column of a ``datasets.Dataset`` as a Python list, read in one go (iterating ``dataset[name]``
    reads it row by row: about a second per 50,000 rows)."""
    return dataset.select_columns([name])[:][name] if len(dataset) else []


def sentence_like_rows(dataset: Dataset, min_words: int) -> Dataset:
    """The rows of ``dataset`` whose text has at least ``min_words`` words (SST-2: its whole sentences and long
    phrases, as opposed to the short phrases that are most of its training rows)."""
    if min_words < 0:
        raise ValueError(f"min_words must be 0 or more, got {min_words}.")
    words = np.array([len(text.split()) for text in column_values(dataset, "text")])
    return dataset.select(np.flatnonzero(words >= min_words))


def stratified_rows(labels: Sequence[int], n: int, seed: int = 42) -> np.ndarray:
    """The sorted indices of ``n`` rows drawn without replacement, in (as nearly as possible) the
    label proportions of ``labels``."""
    if n <= 0:
        raise ValueError(f"The subsample size must be positive, got {n}.")
    labels = np.asarray(labels)
    if n > len(labels):
        raise ValueError(f"Cannot draw n={n} rows from {len(labels)} without replacement: ask for at most "
                         f"{len(labels)}.")
    rng = np.random.default_rng(seed)
    classes, counts = np.unique(labels, return_counts=True)
    quotas = np.floor(counts / counts.sum() * n).astype(int)
    remainders = counts / counts.sum() * n - quotas
    for i in np.argsort(-remainders)[: n - quotas.sum()]:
        quotas[i] += 1
    chosen = np.concatenate([rng.choice(np.flatnonzero(labels == c), size=q, replace=False)
                             for c, q in zip(classes, quotas)])
    return np.sort(chosen)


def subsample_for_profile(data: DatasetDict, profile, seed: int = 42) -> DatasetDict:
    """Shrink a dataset to a profile's sizes: ``train_examples`` for train, ``eval_examples`` for the rest."""
    return DatasetDict({
        split: stratified_subsample(ds, profile.train_examples if split == "train" else profile.eval_examples, seed)
        for split, ds in data.items()
    })


# ---------------------------------------------------------------------------------------------
# A user's own CSV/TSV


def _file_rows(mask, first_row: int, limit: int = 20) -> list[int]:
    """Row numbers as a spreadsheet shows them (the first data row is ``first_row``) where ``mask`` is true."""
    return [int(i) + first_row for i in np.flatnonzero(np.asarray(mask))][:limit]


def _check_field_counts(path: Path, sep: str, encoding: str, expected: int | None) -> int:
    """The number of fields per row; ``ValueError`` naming the rows (file lines) with another count.

    A text with an unquoted separator would otherwise be cut or shifted into the wrong column.
    """
    counts: list[tuple[int, int]] = []
    with open(path, encoding=encoding, newline="") as handle:
        reader = csv.reader(handle, delimiter=sep)
        for fields in reader:
            if any("\x00" in field for field in fields):
                raise ValueError(f"{path}, line {reader.line_num}: a NUL byte (\\x00), so this is not a text file "
                                 "or it is damaged. Export the file again as CSV text.")
            if fields:  # blank lines are skipped, as pandas does
                counts.append((reader.line_num, len(fields)))
    if not counts:
        raise ValueError(f"{path} holds no rows: it is empty or blank. Check the path, or export the file again.")
    expected = expected or counts[0][1]
    bad = [(line, n) for line, n in counts if n != expected]
    if bad:
        shown = ", ".join(f"line {line} ({n} fields)" for line, n in bad[:20])
        raise ValueError(
            f"{path}: every row must have {expected} fields separated by {sep!r}, but {len(bad)} row(s) differ: "
            f"{shown}. A text that contains {sep!r} must be quoted (\"great, really good\",1), or use another "
            "separator (sep='\\t' for a TSV).")
    return expected


def _read_table(path: Path, sep: str, header: int | None, column_names: Sequence[str] | None,
                encoding: str):
    """One file as a pandas ``DataFrame`` of strings, every row checked for its number of fields."""
    import pandas as pd

    if not path.is_file():
        raise FileNotFoundError(f"No file at {path}.")
    if path.stat().st_size == 0:
        raise ValueError(f"{path} is empty (0 bytes). Check the path, or export the file again.")
    try:
        _check_field_counts(path, sep, encoding, len(column_names) if column_names is not None else None)
        return pd.read_csv(path, sep=sep, header=header, names=column_names, index_col=False, dtype=str,
                           keep_default_na=False, na_values=[], encoding=encoding)
    except pd.errors.EmptyDataError:
        raise ValueError(f"{path} holds no rows: it is empty or blank. Check the path, or export the file again.") from None
    except (csv.Error, pd.errors.ParserError) as err:  # e.g. an unclosed quote or a NUL byte
        raise ValueError(f"{path} cannot be parsed as a table separated by {sep!r}: {err}") from err
    except UnicodeDecodeError as err:
        byte = err.object[err.start:err.start + 1]
        raise ValueError(f"{path} is not {encoding.removesuffix('-sig')} text (byte {byte!r} at offset {err.start}). "
                         "Pass the file's encoding, e.g. encoding='latin-1' or 'cp1252'.") from err


def _labels_of(frame, path: Path, text_column: str, label_column: str, first_row: int):
    """The stripped label strings of ``frame``, after checking its columns, texts and labels."""
    missing = [c for c in (text_column, label_column) if c not in frame.columns]
    if missing:
        raise ValueError(f"{path} has no column(s) {missing}; its columns are {list(frame.columns)}. "
                         "For a file without a header row pass header=None and column_names=[...].")
    empty = frame[text_column].str.strip() == ""
    if empty.any():
        raise ValueError(f"{path}: empty text in column {text_column!r} at rows {_file_rows(empty, first_row)} "
                         f"({int(empty.sum())} in all). Remove or fill them.")
    labels = frame[label_column].str.strip()
    unlabelled = labels == ""
    if unlabelled.any():
        raise ValueError(f"{path}: missing label in column {label_column!r} at rows "
                         f"{_file_rows(unlabelled, first_row)} ({int(unlabelled.sum())} in all). "
                         "Label them or remove them.")
    return labels


def load_csv_dataset(
    path: str | Path | Mapping[str, str | Path],
    text_column: str,
    label_column: str,
    label_names: Sequence[str] | None = None,
    sep: str | None = None,
    *,
    header: int | None = 0,
    column_names: Sequence[str] | None = None,
    encoding: str = "utf-8",
) -> DatasetDict:
    """Load a user's CSV/TSV file as a ``DatasetDict`` with one ``train`` split, or several files at once.

    ``path`` may map split names to files (``{"train": "train.csv", "test": "test.csv"}``): every split
    then shares one label map, so the same class name has the same id everywhere. Labels may be names or
    integers; ``label_names`` fixes their order (else sorted, numerically for integers, over all files).
    Load files one by one only with the same ``label_names``, or their ids may differ.

    A file without a header row needs ``header=None`` and ``column_names``. ``encoding`` is the files'
    text encoding (a UTF-8 byte-order mark is skipped). Rows with the wrong number of fields (e.g. an
    unquoted comma in a text), empty texts or missing labels raise a ``ValueError`` naming the rows
    (numbered as in the file, header = 1).
    """
    if header not in (0, None):
        raise ValueError(f"header must be 0 (the first row names the columns) or None (no header row), "
                         f"got {header!r}.")
    if header is None and column_names is None:
        raise ValueError("A file without a header row (header=None) needs column_names=[...], one name per "
                         f"field, including {text_column!r} and {label_column!r}.")
    if header is not None and column_names is not None:
        raise ValueError("column_names is for a file without a header row: pass header=None with it.")
    if column_names is not None and len(set(column_names)) != len(column_names):
        raise ValueError(f"column_names must be distinct, got {list(column_names)}.")
    if text_column == label_column:
        raise ValueError(f"text_column and label_column must differ, both are {text_column!r}.")
    if label_names is not None and len({str(n) for n in label_names}) != len(label_names):
        raise ValueError(f"label_names must be distinct, got {list(label_names)}.")
    if sep is not None and (not isinstance(sep, str) or len(sep) != 1):
        raise ValueError(f"sep must be one character (e.g. ',' or '\\t'), or None to choose by the file's suffix; "
                         f"got {sep!r}.")
    try:
        codecs.lookup(encoding)
    except (LookupError, TypeError):
        raise ValueError(f"Unknown encoding {encoding!r}: use a Python codec name such as 'utf-8', 'latin-1' or "
                         "'cp1252'.") from None
    if encoding.lower().replace("_", "-") in {"utf-8", "utf8"}:
        encoding = "utf-8-sig"  # reads plain UTF-8 too, and drops a byte-order mark (Excel writes one)
    if not isinstance(path, (str, Path, Mapping)):
        raise TypeError(f"path must be a file path or a mapping of split names to paths, e.g. "
                        f"{{'train': 'train.csv', 'test': 'test.csv'}}; got a {type(path).__name__}.")
    paths = {"train": path} if isinstance(path, (str, Path)) else dict(path)
    if not paths:
        raise ValueError("path is an empty mapping: give at least one split, e.g. {'train': 'train.csv'}.")
    first_row = 2 if header == 0 else 1
    tables = {}
    for split, file in paths.items():
        file = Path(file)
        file_sep = sep if sep is not None else "\t" if file.suffix.lower() in {".tsv", ".tab"} else ","
        frame = _read_table(file, file_sep, header, column_names, encoding)
        if len(frame) == 0:
            raise ValueError(f"{file} holds a header row ({', '.join(map(str, frame.columns))}) but no data rows: "
                             "there is nothing to train or evaluate on. Check that it is the file you meant, and "
                             "that it was saved completely.")
        tables[split] = (file, frame, _labels_of(frame, file, text_column, label_column, first_row))
    if label_names is None:
        found = sorted({v for _, _, labels in tables.values() for v in labels.unique()})
        numeric = all(v.lstrip("-").isdigit() for v in found)
        label_names = sorted(found, key=int) if numeric else found
    label_names = [str(n) for n in label_names]
    splits = {}
    for split, (file, frame, labels) in tables.items():
        unknown = ~labels.isin(label_names)
        if unknown.any():
            raise ValueError(f"{file}: labels {sorted(labels[unknown].unique())[:10]} at rows "
                             f"{_file_rows(unknown, first_row)} are not among label_names {label_names}.")
        ids = [label_names.index(v) for v in labels]
        splits[split] = _to_dataset(frame[text_column].tolist(), ids, label_names)
    return DatasetDict(splits)
