"""The dataset registry: mirror, cache, verified downloads (against a local HTTP server), splits, user CSVs."""

from __future__ import annotations

import collections
import dataclasses
import io
import threading
import time
import zipfile
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import datasets
import numpy as np
import pytest

from textclf_utils import config, data


# ------------------------------------------------------------------------------------------------
# The published datasets, read from the mirror

def test_sst2_has_the_published_sizes(mirror, monkeypatch):
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    sst2 = data.load_original_sst2()
    assert {k: len(v) for k, v in sst2.items()} == {"train": 67_349, "validation": 872}
    assert sst2["train"].features["label"].names == ["negative", "positive"]
    assert collections.Counter(sst2["validation"]["label"]) == {0: 428, 1: 444}
    assert not sst2["train"][0]["text"].endswith(" ")


def test_sst2_protocol_tests_on_glue_dev_and_validates_without_leakage(mirror, monkeypatch):
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    original = data.load_original_sst2()
    sst2 = data.load_course_dataset("sst2")
    assert sst2["test"]["text"] == original["validation"]["text"]  # test = all 872 GLUE dev sentences
    assert len(sst2["validation"]) == data.SST2_VALIDATION_SIZE
    split = data.leak_free_sst2_split(original["train"]["text"], original["train"]["label"])
    whole_share = np.mean(np.asarray(original["train"]["label"])[split.whole_rows])
    assert abs(np.mean(sst2["validation"]["label"]) - whole_share) < 0.001  # stratified like the whole sentences
    train = set(sst2["train"]["text"])
    for sentence in sst2["validation"]["text"]:
        assert sentence not in train
        words = sentence.split()
        spans = {" ".join(words[i:j]) for i in range(len(words)) for j in range(i + 1, len(words) + 1)}
        assert not spans & train, f"a sub-phrase of {sentence!r} is still in train"
    assert len(split.train_rows) + len(split.validation_rows) + len(split.removed_rows) == 67_349
    assert len(split.train_rows) == len(sst2["train"]) and len(split.removed_rows) > 5 * len(split.validation_rows)
    assert "removed from training" in split.summary()


def test_leak_free_split_on_a_toy_treebank():
    texts = ["a fine film", "a fine", "fine film", "fine", "a dull plot", "dull plot", "dull", "plot twist ok",
             "twist ok", "ok"]
    labels = [1, 1, 1, 1, 0, 0, 0, 1, 1, 1]
    split = data.leak_free_sst2_split(texts, labels, validation_size=2, seed=0)
    assert len(split.whole_rows) == 3  # the three rows that are no other row's sub-phrase
    held_out = {texts[i] for i in split.validation_rows}
    removed = {texts[i] for i in split.removed_rows}
    kept = {texts[i] for i in split.train_rows}
    assert len(held_out) == 2 and held_out <= {"a fine film", "a dull plot", "plot twist ok"}
    for sentence in held_out:
        assert all(span in removed for span in texts if span != sentence and f" {span} " in f" {sentence} ")
    assert not kept & (held_out | removed) and kept | held_out | removed == set(texts)
    with pytest.raises(ValueError, match="not below the 3 whole sentences"):
        data.leak_free_sst2_split(texts, labels, validation_size=3)
    with pytest.raises(ValueError, match="positive"):
        data.leak_free_sst2_split(texts, labels, validation_size=0)


def test_emotion_has_the_hub_label_order(mirror, monkeypatch):
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    emotion = data.load_course_dataset("emotion")
    assert {k: len(v) for k, v in emotion.items()} == {"train": 16_000, "validation": 2_000, "test": 2_000}
    names = emotion["train"].features["label"].names
    assert names == ["sadness", "joy", "love", "anger", "fear", "surprise"]
    counts = collections.Counter(emotion["test"]["label"])
    assert counts[names.index("joy")] == 695 and counts[names.index("surprise")] == 66


def test_sms_spam_is_deduplicated_before_a_stratified_split(mirror, monkeypatch):
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    sms = data.load_course_dataset("sms_spam", seed=0)
    texts = [t for split in sms.values() for t in split["text"]]
    assert len(texts) == len(set(texts)) == 5_160  # 5,574 messages, 414 repeats (11 differ only by spaces)
    shares = [sum(split["label"]) / len(split) for split in sms.values()]
    assert max(shares) - min(shares) < 0.01
    assert data.load_course_dataset("sms_spam", seed=0)["test"]["text"] == sms["test"]["text"]
    assert data.load_course_dataset("sms_spam", seed=1)["test"]["text"] != sms["test"]["text"]


def test_a_split_is_built_once_per_process_and_each_caller_gets_its_own_dict(mirror, monkeypatch):
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    builds = []
    spec = data.get_spec("sms_spam")
    monkeypatch.setitem(data.DATASETS, "sms_spam", dataclasses.replace(
        spec, build=lambda *a: builds.append(a[2]) or spec.build(*a)))
    monkeypatch.setattr(data, "_BUILT", {})
    first = data.load_course_dataset("sms_spam", seed=5)
    first["train"] = first["test"]  # a caller's own change stays its own
    second = data.load_course_dataset("sms_spam", seed=5)
    assert builds == [5] and len(second["train"]) > len(second["test"])
    data.load_course_dataset("sms_spam", seed=6)
    assert builds == [5, 6]  # another seed: another split


def test_unknown_dataset_lists_the_known_ones():
    with pytest.raises(ValueError, match="sst2, sms_spam, emotion"):
        data.load_course_dataset("imdb")


def test_corrupt_mirror_file_is_refused_and_never_cached(mirror, tmp_path, monkeypatch, empty_cache):
    bad = tmp_path / "mirror" / "sst2"
    bad.mkdir(parents=True)
    (bad / "train.tsv").write_bytes((mirror / "sst2" / "train.tsv").read_bytes().replace(b"\t1\n", b"\t0\n", 1))
    (bad / "dev.tsv").write_bytes((mirror / "sst2" / "dev.tsv").read_bytes())
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(tmp_path / "mirror"))
    with pytest.raises(data.ChecksumError, match="SHA-256"):
        data.load_course_dataset("sst2")
    assert not empty_cache.exists() or not any(empty_cache.rglob("*.tsv"))


def test_offline_with_no_copy_says_which_files_to_put_where(empty_cache, monkeypatch):
    monkeypatch.setenv("TEXTCLF_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError) as err:
        data.load_course_dataset("emotion")
    message = str(err.value)
    for name in ("emotion/train.txt", "emotion/val.txt", "emotion/test.txt", "TEXTCLF_DATA_DIR", str(empty_cache)):
        assert name in message


def test_unreachable_source_fails_fast_without_hanging(empty_cache, monkeypatch):
    spec = data.DATASETS["sms_spam"]
    unreachable = dataclasses.replace(spec.files[0], url="http://course-data.invalid/sms.zip")
    monkeypatch.setitem(data.DATASETS, "sms_spam", dataclasses.replace(spec, files=(unreachable,)))
    started = time.perf_counter()
    with pytest.raises(data.DataUnavailableError, match="download failed"):
        data.load_course_dataset("sms_spam")
    assert time.perf_counter() - started < 30
    assert not any(p.is_file() for p in empty_cache.rglob("*"))


# ------------------------------------------------------------------------------------------------
# Downloads, against a local HTTP server serving the mirror's files

class _Server:
    """Serves ``routes`` {path: bytes} on 127.0.0.1; paths in ``truncate`` stop after half the body."""

    def __init__(self, routes: dict[str, bytes], truncate: set[str] = frozenset()):
        routes_, truncate_ = routes, truncate

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 (http.server's name)
                body = routes_.get(self.path)
                if body is None:
                    self.send_error(404)
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body[: len(body) // 2] if self.path in truncate_ else body)

            def log_message(self, *args):
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()


def _zip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, content in members.items():
            archive.writestr(name, content)
    return buffer.getvalue()


def _point_at(monkeypatch, name: str, base_url: str, path: str) -> None:
    spec = data.DATASETS[name]
    files = tuple(dataclasses.replace(f, url=f"{base_url}{path.format(file=f.name)}") for f in spec.files)
    monkeypatch.setitem(data.DATASETS, name, dataclasses.replace(spec, files=files))


def _no_partial_files(cache: Path) -> bool:
    return not any(".partial-" in str(p) for p in cache.rglob("*"))


def test_download_from_an_archive_is_verified_cached_and_reused(mirror, empty_cache, monkeypatch):
    archive = _zip({f"SST-2/{n}": (mirror / "sst2" / n).read_bytes() for n in ("train.tsv", "dev.tsv")})
    with _Server({"/SST-2.zip": archive}) as server:
        _point_at(monkeypatch, "sst2", server.url, "/SST-2.zip")
        sst2 = data.load_course_dataset("sst2")
    assert len(sst2["test"]) == 872
    assert (empty_cache / "sst2" / "dev.tsv").read_bytes() == (mirror / "sst2" / "dev.tsv").read_bytes()
    assert _no_partial_files(empty_cache)
    # the server is gone: the second load must come from the cache
    assert len(data.load_original_sst2()["train"]) == 67_349


def test_corrupt_download_is_refused_and_never_cached(mirror, empty_cache, monkeypatch):
    files = {f"/{n}": (mirror / "emotion" / n).read_bytes() for n in ("train.txt", "val.txt", "test.txt")}
    files["/val.txt"] = files["/val.txt"].replace(b";joy", b";fear", 1)
    with _Server(files) as server:
        _point_at(monkeypatch, "emotion", server.url, "/{file}")
        with pytest.raises(data.ChecksumError, match="val.txt"):
            data.load_course_dataset("emotion")
    assert (empty_cache / "emotion" / "train.txt").is_file()  # the good file before it was kept
    assert not (empty_cache / "emotion" / "val.txt").exists()
    assert _no_partial_files(empty_cache)


def test_interrupted_download_leaves_nothing_half_written(mirror, empty_cache, monkeypatch):
    body = (mirror / "sms_spam" / "SMSSpamCollection").read_bytes()
    with _Server({"/sms.zip": _zip({"SMSSpamCollection": body})}, truncate={"/sms.zip"}) as server:
        _point_at(monkeypatch, "sms_spam", server.url, "/sms.zip")
        with pytest.raises(data.DataUnavailableError, match="download failed"):
            data.load_course_dataset("sms_spam")
    assert not (empty_cache / "sms_spam" / "SMSSpamCollection").exists()
    assert _no_partial_files(empty_cache)


# ------------------------------------------------------------------------------------------------
# Subsets and splits

def _toy(n_pos: int, n_neg: int):
    from datasets import ClassLabel, Dataset, Features, Value

    return Dataset.from_dict(
        {"text": [f"text {i}" for i in range(n_pos + n_neg)], "label": [1] * n_pos + [0] * n_neg},
        features=Features({"text": Value("string"), "label": ClassLabel(names=["neg", "pos"])}),
    )


def test_stratified_subsample_keeps_proportions_and_is_seeded():
    ds = _toy(900, 100)
    small = data.stratified_subsample(ds, 50, seed=1)
    assert len(small) == 50 and sum(small["label"]) == 45
    assert small["text"] == data.stratified_subsample(ds, 50, seed=1)["text"]
    assert small["text"] != data.stratified_subsample(ds, 50, seed=2)["text"]
    assert data.stratified_subsample(ds, None) is ds and data.stratified_subsample(ds, 5000) is ds
    with pytest.raises(ValueError, match="positive"):
        data.stratified_subsample(ds, 0)


def test_profile_subsample_sizes(mirror, monkeypatch):
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    smoke = config.get_profile("smoke")
    small = data.subsample_for_profile(data.load_course_dataset("sst2"), smoke)
    assert (len(small["train"]), len(small["validation"])) == (smoke.train_examples, smoke.eval_examples)


def test_split_dataset_is_disjoint_and_rejects_bad_fractions():
    parts = data.split_dataset(_toy(100, 100), validation_size=0.1, test_size=0.2, seed=0)
    assert [len(parts[s]) for s in ("train", "validation", "test")] == [140, 20, 40]
    seen = [set(parts[s]["text"]) for s in parts]
    assert not (seen[0] & seen[1] or seen[0] & seen[2] or seen[1] & seen[2])
    with pytest.raises(ValueError, match="fractions"):
        data.split_dataset(_toy(10, 10), validation_size=0.6, test_size=0.5)


# ------------------------------------------------------------------------------------------------
# A user's own CSV/TSV

def test_user_csv_with_named_labels(tmp_path):
    path = tmp_path / "reviews.csv"
    path.write_text('review,stars\n"great, really",good\nawful,bad\nfine,good\n', encoding="utf-8")
    ds = data.load_csv_dataset(path, text_column="review", label_column="stars")["train"]
    assert ds.features["label"].names == ["bad", "good"]
    assert ds["text"][0] == "great, really" and ds["label"] == [1, 0, 1]


def test_user_tsv_with_integer_labels_in_numeric_order(tmp_path):
    path = tmp_path / "data.tsv"
    path.write_text("text\tlabel\na\t10\nb\t2\nc\t2\n", encoding="utf-8")
    ds = data.load_csv_dataset(path, "text", "label")["train"]
    assert ds.features["label"].names == ["2", "10"] and ds["label"] == [1, 0, 0]


@pytest.mark.parametrize("content, match", [
    ("text,label\na,x\n", r"no column\(s\) \['target'\].*columns are \['text', 'label'\]"),
    ("text,target\na,x\n ,y\nb,x\n,y\n", r"empty text .* rows \[3, 5\]"),
    ("text,target\na,x\nb,\nc,y\n", r"missing label .* rows \[3\]"),
])
def test_user_csv_errors_name_the_problem_and_rows(tmp_path, content, match):
    path = tmp_path / "mine.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        data.load_csv_dataset(path, text_column="text", label_column="target")


def test_user_csv_labels_outside_the_given_names(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("text,target\na,pos\nb,neutral\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"neutral.*rows \[3\]"):
        data.load_csv_dataset(path, "text", "target", label_names=["neg", "pos"])
    with pytest.raises(FileNotFoundError):
        data.load_csv_dataset(tmp_path / "absent.csv", "text", "target")


# ------------------------------------------------------------------------------------------------
# Bad CSV files: nothing silently cut or shifted, errors that name the file, the rows and the fix

@pytest.mark.parametrize("content, line", [
    ("text,label\ngreat, really good,1\nbad,0\n", 2),  # pandas would take "great" as the index
    ("text,label\nbad,0\ngreat, really good,1\nok,1\n", 3),  # pandas would name line 3 of its own count
    ("text,label\nbad,0\nno label here\nok,1\n", 3),  # too few fields
])
def test_user_csv_with_a_wrong_field_count_names_the_line(tmp_path, content, line):
    path = tmp_path / "mine.csv"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(ValueError, match=rf"1 row\(s\) differ: line {line} .*must be quoted"):
        data.load_csv_dataset(path, "text", "label")


def test_user_csv_without_a_header_needs_column_names(tmp_path):
    path = tmp_path / "ag_news.csv"
    path.write_text('3,"Wall St., again",Stocks fell\n1,World news,Talks\n', encoding="utf-8")
    ds = data.load_csv_dataset(path, "title", "class", header=None, column_names=["class", "title", "body"])
    assert ds["train"]["text"] == ["Wall St., again", "World news"] and ds["train"].features["label"].names == ["1", "3"]
    with pytest.raises(ValueError, match=r"without a header row \(header=None\) needs column_names"):
        data.load_csv_dataset(path, "title", "class", header=None)
    with pytest.raises(ValueError, match="header=None"):
        data.load_csv_dataset(path, "title", "class", column_names=["class", "title", "body"])
    (tmp_path / "two.csv").write_text("1,a\n2,b\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"3 fields.*line 1 \(2 fields\)"):  # more names than fields
        data.load_csv_dataset(tmp_path / "two.csv", "t", "c", header=None, column_names=["c", "t", "x"])
    with pytest.raises(ValueError, match="header must be 0"):
        data.load_csv_dataset(path, "title", "class", header=1)


def test_user_csv_without_header_numbers_rows_from_one(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("a,x\n ,y\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"empty text .* rows \[2\]"):
        data.load_csv_dataset(path, "t", "c", header=None, column_names=["t", "c"])


def test_user_csv_encoding(tmp_path):
    path = tmp_path / "latin.csv"
    path.write_bytes("text,label\ncafé crème,1\nbad,0\n".encode("latin-1"))
    with pytest.raises(ValueError, match=r"latin.csv is not utf-8 text .*encoding='latin-1'"):
        data.load_csv_dataset(path, "text", "label")
    assert data.load_csv_dataset(path, "text", "label", encoding="latin-1")["train"]["text"][0] == "café crème"
    bom = tmp_path / "excel.csv"
    bom.write_bytes("text,label\nok,1\n".encode("utf-8-sig"))
    assert data.load_csv_dataset(bom, "text", "label")["train"]["text"] == ["ok"]


@pytest.mark.parametrize("content, match", [
    (b"", r"empty.csv is empty \(0 bytes\)"),
    (b"\n\n", r"empty.csv holds no rows"),
    (b'text,label\n"unclosed,1\n', r"empty.csv"),
])
def test_empty_or_unparsable_user_csv_names_the_file(tmp_path, content, match):
    path = tmp_path / "empty.csv"
    path.write_bytes(content)
    with pytest.raises(ValueError, match=match):
        data.load_csv_dataset(path, "text", "label")


def test_several_user_files_share_one_label_map(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,neg\nb,pos\nc,zzz\n", encoding="utf-8")
    (tmp_path / "test.csv").write_text("text,label\nd,pos\ne,aaa\n", encoding="utf-8")
    both = data.load_csv_dataset({"train": tmp_path / "train.csv", "test": tmp_path / "test.csv"}, "text", "label")
    names = both["train"].features["label"].names
    assert names == both["test"].features["label"].names == ["aaa", "neg", "pos", "zzz"]
    assert both["test"]["label"] == [2, 0] and both["train"]["label"] == [1, 2, 3]
    alone = data.load_csv_dataset(tmp_path / "test.csv", "text", "label", label_names=names)
    assert alone["train"]["label"] == both["test"]["label"]
    with pytest.raises(ValueError, match=r"test.csv: labels \['aaa'\] at rows \[3\]"):
        data.load_csv_dataset({"train": tmp_path / "train.csv", "test": tmp_path / "test.csv"}, "text", "label",
                              label_names=["neg", "pos", "zzz"])


@pytest.mark.parametrize("kwargs, match", [
    (dict(text_column="label", label_column="label"), "must differ"),
    (dict(text_column="text", label_column="label", label_names=["a", "a"]), "distinct"),
])
def test_user_csv_argument_errors(tmp_path, kwargs, match):
    path = tmp_path / "mine.csv"
    path.write_text("text,label\na,x\n", encoding="utf-8")
    with pytest.raises(ValueError, match=match):
        data.load_csv_dataset(path, **kwargs)


# ------------------------------------------------------------------------------------------------
# The download cache repairs itself

def test_cache_dir_default_and_override(monkeypatch, tmp_path):
    monkeypatch.delenv("TEXTCLF_CACHE_DIR", raising=False)
    assert data.cache_dir() == Path(data.__file__).resolve().parent.parent / "data"
    monkeypatch.setenv("TEXTCLF_CACHE_DIR", "")
    assert data.cache_dir() == Path(data.__file__).resolve().parent.parent / "data"
    monkeypatch.setenv("TEXTCLF_CACHE_DIR", str(tmp_path / "c"))
    assert data.cache_dir() == tmp_path / "c"


def test_corrupt_cached_file_is_deleted_and_downloaded_again(mirror, empty_cache, monkeypatch):
    good = (mirror / "sms_spam" / "SMSSpamCollection").read_bytes()
    cached = empty_cache / "sms_spam" / "SMSSpamCollection"
    cached.parent.mkdir(parents=True)
    cached.write_bytes(good[:-10])
    monkeypatch.setenv("TEXTCLF_OFFLINE", "1")
    with pytest.raises(data.DataUnavailableError, match=r"SMSSpamCollection was corrupt .* has been deleted"):
        data.locate_files("sms_spam")
    assert not cached.exists()
    cached.write_bytes(good[:-10])
    monkeypatch.delenv("TEXTCLF_OFFLINE")
    with _Server({"/sms.zip": _zip({"SMSSpamCollection": good})}) as server:
        _point_at(monkeypatch, "sms_spam", server.url, "/sms.zip")
        data.locate_files("sms_spam")
    assert cached.read_bytes() == good


class _FakeResponse:
    """An HTTP response with ``body`` and the header ``Content-Length: length``; each read waits ``delay``."""

    def __init__(self, body: bytes, length: int, delay: float = 0.0):
        self.body, self.headers, self.delay = io.BytesIO(body), {"Content-Length": str(length)}, delay

    def read(self, n):
        time.sleep(self.delay)
        return self.body.read(min(n, 4))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


def _fake_download(monkeypatch, response):
    """emotion's val.txt, with its archive address served by ``response`` and the Hub out of reach."""
    monkeypatch.setattr(data.urllib.request, "urlopen", lambda url, timeout: response)
    monkeypatch.setattr(data, "hub_is_reachable", lambda *a, **k: False)
    spec = data.DATASETS["emotion"]
    return dataclasses.replace(spec.files[1], url="http://example.invalid/val.txt"), spec


def test_download_shorter_than_its_content_length_is_refused(empty_cache, monkeypatch):
    file, spec = _fake_download(monkeypatch, _FakeResponse(b"0123456789", length=11))
    with pytest.raises(data.DataUnavailableError, match="stopped after 10 of 11 bytes"):
        data._download(file, spec, empty_cache / "val.txt")
    assert not (empty_cache / "val.txt").exists() and _no_partial_files(empty_cache)


def test_stalled_download_stops_at_the_deadline(empty_cache, monkeypatch):
    monkeypatch.setattr(data, "DOWNLOAD_DEADLINE_S", 0.05)
    file, spec = _fake_download(monkeypatch, _FakeResponse(b"x" * 400, length=400, delay=0.01))
    started = time.perf_counter()
    with pytest.raises(data.DataUnavailableError, match="took more than 0.05 s"):
        data._download(file, spec, empty_cache / "val.txt")
    assert time.perf_counter() - started < 1.0 and _no_partial_files(empty_cache)


def test_a_stalled_hub_read_stops_at_the_deadline_and_the_message_names_the_mirror(empty_cache, monkeypatch):
    monkeypatch.setattr(data, "DOWNLOAD_DEADLINE_S", 0.05)
    monkeypatch.setattr(data, "hub_is_reachable", lambda *a, **k: True)
    monkeypatch.setattr(data, "load_hub_rows", lambda hub, spec: time.sleep(2))
    monkeypatch.setattr(data, "DATASETS", {"emotion": dataclasses.replace(  # the Hub as its only source
        data.DATASETS["emotion"], files=tuple(dataclasses.replace(f, url=None) for f in data.DATASETS["emotion"].files))})
    started = time.perf_counter()
    with pytest.raises(data.DataUnavailableError) as caught:
        data.locate_files("emotion")
    assert time.perf_counter() - started < 1.5
    assert "took more than 0.05 s" in str(caught.value) and "TEXTCLF_DATA_DIR" in str(caught.value)
    assert _no_partial_files(empty_cache / "emotion")


def test_stale_partial_downloads_are_cleaned_up(empty_cache, monkeypatch):
    import os

    stale, fresh = empty_cache / ".partial-old", empty_cache / ".partial-new"
    for folder in (stale, fresh):
        folder.mkdir(parents=True)
        (folder / "download").write_bytes(b"half")
    old = time.time() - data.DOWNLOAD_DEADLINE_S - 60
    os.utime(stale, (old, old))
    file, spec = _fake_download(monkeypatch, _FakeResponse(b"", length=0))
    with pytest.raises(data.ChecksumError):
        data._download(file, spec, empty_cache / "val.txt")
    assert not stale.exists() and fresh.exists()  # a live download's folder is left alone


def test_unwritable_cache_says_which_variable_to_set(empty_cache, monkeypatch):
    def refuse(file, spec, target):
        raise PermissionError(13, "Permission denied", str(target.parent))

    monkeypatch.setattr(data, "_download", refuse)
    with pytest.raises(data.DataUnavailableError, match="not writable.*TEXTCLF_CACHE_DIR"):
        data.locate_files("sms_spam")


# The Hugging Face Hub as the first source, with a fake load_dataset over local parquet files

def _hub_frames(mirror: Path) -> dict[tuple[str, str | None, str], object]:
    """Each Hub split the registry names, as the Hub lays it out (its column names, ClassLabel ids, a
    trailing newline), built from the mirror's files in their order (the Hub's builders kept it)."""
    from datasets import ClassLabel, Dataset, Features, Value

    frames = {}
    for spec in data.DATASETS.values():
        for file in spec.files:
            texts, labels = data.read_rows(mirror / spec.name / file.name, spec)
            rows = list(zip(texts, labels))
            hub = file.hub
            features = Features({hub.text_column: Value("string"), hub.label_column: ClassLabel(names=list(spec.label_names))})
            frames[(hub.repo, hub.config, hub.split)] = Dataset.from_dict(
                {hub.text_column: [f"{t} \n" for t, _ in rows],
                 hub.label_column: [spec.label_names.index(l) for _, l in rows]}, features=features)
    return frames


@pytest.fixture
def fake_hub(mirror, tmp_path, monkeypatch):
    """``datasets.load_dataset`` answering the registry's Hub ids from local parquet files; the Hub
    counts as reachable. Returns the list of calls and the frames (to corrupt one)."""
    import datasets

    real_load = datasets.load_dataset
    frames = _hub_frames(mirror)
    calls = []

    def load_dataset(repo, config=None, split=None, **kwargs):
        calls.append((repo, config, split))
        key = (repo, config, split)
        if key not in frames:
            raise FileNotFoundError(f"no such Hub dataset split {key}")
        path = tmp_path / "hub" / f"{repo.replace('/', '_')}-{config}-{split}.parquet"
        path.parent.mkdir(exist_ok=True)
        frames[key].to_parquet(str(path))
        return real_load("parquet", data_files=str(path), split="train")

    monkeypatch.setattr(datasets, "load_dataset", load_dataset)
    monkeypatch.setattr(data, "hub_is_reachable", lambda *a, **k: True)
    return calls, frames


@pytest.mark.parametrize("name", ["sst2", "sms_spam", "emotion"])
def test_hub_download_gives_the_mirrors_content(name, mirror, fake_hub, empty_cache, monkeypatch):
    calls, _ = fake_hub
    from_hub = data.load_course_dataset(name)
    assert {f.hub.split for f in data.DATASETS[name].files} == {split for _, _, split in calls}
    for file in data.DATASETS[name].files:  # cached in the original layout, verified by content
        assert data._verified(empty_cache / name / file.name, file, data.DATASETS[name])
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    from_mirror = data.load_course_dataset(name)
    assert list(from_hub) == list(from_mirror)
    for split in from_mirror:  # the same rows, so the same splits
        assert from_hub[split]["text"] == from_mirror[split]["text"]
        assert from_hub[split]["label"] == from_mirror[split]["label"]


def test_changed_hub_content_is_refused_and_never_cached(fake_hub, empty_cache):
    _, frames = fake_hub
    key = ("dair-ai/emotion", "split", "validation")
    frames[key] = frames[key].select(range(1, len(frames[key])))  # one row short
    with pytest.raises(data.ChecksumError, match="1,999 rows"):
        data.load_course_dataset("emotion")
    assert not (empty_cache / "emotion" / "val.txt").exists()
    assert _no_partial_files(empty_cache)


def test_the_mirror_comes_before_the_hub(mirror, fake_hub, monkeypatch):
    calls, _ = fake_hub
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))
    data.load_course_dataset("emotion")
    assert calls == []


@pytest.mark.parametrize("fault", ["missing", "changed"])
def test_a_failing_hub_falls_back_to_the_archive(fault, mirror, fake_hub, empty_cache, monkeypatch):
    _, frames = fake_hub
    key = ("ucirvine/sms_spam", None, "train")
    if fault == "missing":
        del frames[key]
    else:
        frames[key] = frames[key].select(range(100))
    body = (mirror / "sms_spam" / "SMSSpamCollection").read_bytes()
    with _Server({"/sms.zip": _zip({"SMSSpamCollection": body})}) as server:
        _point_at(monkeypatch, "sms_spam", server.url, "/sms.zip")
        assert len(data.load_course_dataset("sms_spam", seed=0)["train"]) > 4000


def test_mirror_files_match_the_published_fingerprints(mirror):
    for spec in data.DATASETS.values():
        for file in spec.files:
            texts, labels = data.read_rows(mirror / spec.name / file.name, spec)
            assert (len(texts), data.content_fingerprint(texts, labels)) == (file.rows, file.fingerprint), file.name


def test_fingerprint_ignores_layout_but_not_content():
    base = data.content_fingerprint(["a  good film ", "bad"], ["positive", "negative"])
    assert data.content_fingerprint(["bad\n", "a good film"], ["negative", "positive"]) == base
    assert data.content_fingerprint(["a good film", "bad"], ["negative", "negative"]) != base
    assert data.content_fingerprint(["a good movie", "bad"], ["positive", "negative"]) != base


def test_no_source_points_to_dropbox():
    urls = [f.url or "" for spec in data.DATASETS.values() for f in spec.files]
    assert urls and not any("dropbox" in url.lower() for url in urls)
    assert all(f.hub.repo for spec in data.DATASETS.values() for f in spec.files)


def test_sst2_sentence_groups_put_each_phrase_with_its_sentence():
    from textclf_utils.data import sst2_sentence_groups

    texts = ["a truly fine film", "fine film", "a truly", "dull and slow", "and slow", "unrelated phrase"]
    groups = sst2_sentence_groups(texts)
    assert groups.tolist() == [0, 0, 0, 3, 3, 5]


# ------------------------------------------------------------------------------------------------
# Cases found by the sampled mutation run (scripts/mutation_sample.py, tests/MUTATION.md)


def test_a_separator_inside_the_text_stays_in_the_text():
    path = Path("corpus.txt")
    assert data._split_line("1\ta\tb", "\t", path, 1, label_first=True) == ("a\tb", "1")
    assert data._split_line("a;b;joy", ";", path, 1, label_first=False) == ("a;b", "joy")
    with pytest.raises(ValueError, match=r"corpus.txt, line 7: expected two fields"):
        data._split_line("no separator", "\t", path, 7, label_first=True)


def test_word_spans_are_every_shorter_run_once():
    assert list(data._word_spans("a b c".split())) == ["a", "a b", "b", "b c", "c"]


def test_a_partial_download_folder_is_stale_only_past_the_deadline(tmp_path, monkeypatch):
    import os

    now = 2_000_000_000
    monkeypatch.setattr(data.time, "time", lambda: float(now))
    ages = {"at": data.DOWNLOAD_DEADLINE_S, "past": data.DOWNLOAD_DEADLINE_S + 1}
    for name, age in ages.items():
        (tmp_path / f".partial-{name}").mkdir()
        os.utime(tmp_path / f".partial-{name}", ns=(int((now - age) * 1e9),) * 2)
    data._remove_stale_partials(tmp_path)
    assert [p.name for p in tmp_path.iterdir()] == [".partial-at"]  # a download may take the whole deadline


def test_verify_file_returns_the_registry_entry_or_names_the_file_and_both_checksums(mirror, tmp_path):
    entry = data.verify_file(mirror / "sms_spam" / "SMSSpamCollection", "sms-spam", "SMSSpamCollection")
    assert (entry.rows, entry.fingerprint) == (5_574, data.DATASETS["sms_spam"].files[0].fingerprint)
    changed = tmp_path / "SMSSpamCollection"
    changed.write_bytes((mirror / "sms_spam" / "SMSSpamCollection").read_bytes().replace(b"ham\t", b"spam\t", 1))
    with pytest.raises(data.ChecksumError) as err:
        data.verify_file(changed, "sms_spam", "SMSSpamCollection", origin="the stick's copy")
    assert "the stick's copy" in str(err.value) and entry.fingerprint in str(err.value)
    with pytest.raises(ValueError, match="its files are train.tsv, dev.tsv"):
        data.verify_file(changed, "sst2", "test.tsv")


def test_cache_path_where_a_file_sits_says_which_variable_to_set(empty_cache, monkeypatch):
    empty_cache.parent.mkdir(parents=True, exist_ok=True)
    empty_cache.write_text("a file where the cache folder should be")
    monkeypatch.setattr(data, "hub_is_reachable", lambda *a, **k: False)
    with pytest.raises(data.DataUnavailableError, match=r"cache.*sms_spam is not writable.*TEXTCLF_CACHE_DIR"):
        data.locate_files("sms_spam")


def test_files_loaded_one_by_one_share_ids_only_through_label_names(tmp_path):
    (tmp_path / "train.csv").write_text("text,label\na,cat\nb,dog\nc,emu\n", encoding="utf-8")
    (tmp_path / "test.csv").write_text("text,label\nd,dog\ne,emu\n", encoding="utf-8")
    alone = data.load_csv_dataset(tmp_path / "test.csv", "text", "label")["train"]
    assert alone.features["label"].names == ["dog", "emu"]  # inferred from this file only: 'dog' is 0 here
    names = ["cat", "dog", "emu"]
    train, test = (data.load_csv_dataset(tmp_path / f, "text", "label", label_names=names)["train"]
                   for f in ("train.csv", "test.csv"))
    assert train.features["label"].str2int("dog") == test.features["label"].str2int("dog") == 1
    assert test["label"] == [1, 2]
    with pytest.raises(ValueError, match=r"train.csv: labels \['cat'\] at rows \[2\] are not among label_names"):
        data.load_csv_dataset(tmp_path / "train.csv", "text", "label", label_names=["dog", "emu"])


def test_a_csv_with_a_nul_byte_is_refused_with_its_line(tmp_path):
    path = tmp_path / "damaged.csv"
    path.write_bytes(b"text,label\nfine,pos\nfi\x00ne,neg\n")
    with pytest.raises(ValueError, match="line 3: a NUL byte"):
        data.load_csv_dataset(path, "text", "label")


def test_user_csv_settings_and_files_that_cannot_be_read_are_named(tmp_path):
    path = tmp_path / "mine.csv"
    path.write_text("text,label\nfine,pos\n", encoding="utf-8")
    with pytest.raises(ValueError, match=r"sep must be one character.*got ''"):
        data.load_csv_dataset(path, "text", "label", sep="")
    with pytest.raises(ValueError, match=r"Unknown encoding 'no-such-codec'.*latin-1"):
        data.load_csv_dataset(path, "text", "label", encoding="no-such-codec")
    with pytest.raises(TypeError, match=r"mapping of split names to paths.*got a list"):
        data.load_csv_dataset([path, path], "text", "label")
    blank = tmp_path / "blank.csv"
    for content in ("\n\n\n", "\n\n  \n"):  # blank lines; a line of spaces (one empty field to csv)
        blank.write_text(content, encoding="utf-8")
        with pytest.raises(ValueError, match=r"blank.csv holds no rows: it is empty or blank"):
            data.load_csv_dataset(blank, "text", "label")


def test_sampling_and_splitting_refuse_impossible_sizes():
    with pytest.raises(ValueError, match=r"Cannot draw n=9 rows from 8.*at most 8"):
        data.stratified_rows([0, 1] * 4, 9)
    assert len(data.stratified_rows([0, 1] * 4, 8)) == 8  # all of them is possible
    with pytest.raises(ValueError, match=r"3 texts but 2 labels"):
        data.leak_free_sst2_split(["a b", "c d", "e f"], [0, 1], validation_size=1)
    with pytest.raises(TypeError, match=r"dataset name must be a string, one of sst2.*got None"):
        data.load_course_dataset(None)


def test_sentence_like_rows_keep_the_rows_with_enough_words_in_order():
    rows = datasets.Dataset.from_dict({"text": ["a gem", "one two three", "x", "four words in here", ""],
                                       "label": [1, 0, 1, 0, 1]})
    assert data.sentence_like_rows(rows, 3)["text"] == ["one two three", "four words in here"]
    assert len(data.sentence_like_rows(rows, 0)) == 5 and len(data.sentence_like_rows(rows, 99)) == 0
    with pytest.raises(ValueError, match="min_words must be 0 or more"):
        data.sentence_like_rows(rows, -1)
