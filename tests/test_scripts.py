"""The command-line scripts refuse what would lose work, follow TEXTCLF_PROFILE, and build a verified data mirror
(no training here)."""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


def _script(name: str):
    spec = importlib.util.spec_from_file_location(f"{name}_script", REPO / "scripts" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_finetune_refuses_an_output_dir_with_files_unless_overwrite(tmp_path, capsys):
    finetune = _script("finetune")
    out = tmp_path / "run"
    out.mkdir()
    assert finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out)]).output_dir == out  # empty: fine
    (out / "metrics.json").write_text("{}")
    with pytest.raises(SystemExit) as exit_:
        finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out)])
    assert exit_.value.code == 2 and "already holds files" in capsys.readouterr().err
    assert finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out), "--overwrite"]).overwrite
    assert (out / "metrics.json").read_text() == "{}"
    with pytest.raises(SystemExit):
        finetune.parse_args(["--dataset", "sst2", "--output-dir", str(out / "metrics.json")])
    assert "is a file" in capsys.readouterr().err


@pytest.mark.parametrize("env, argv, expected", [
    ("smoke", [], "smoke"), ("gpu", ["--profile", "cpu"], "cpu"), (None, [], "cpu")])
def test_run_course_follows_textclf_profile(monkeypatch, tmp_path, env, argv, expected):
    run_course = _script("run_course")
    if env is None:
        monkeypatch.delenv("TEXTCLF_PROFILE", raising=False)
    else:
        monkeypatch.setenv("TEXTCLF_PROFILE", env)
    seen = []
    monkeypatch.setattr(run_course, "run_notebook", lambda path, output, timeout: (seen.append(output), (True, 0.0))[1])
    assert run_course.main([*argv, "01", "--output-dir", str(tmp_path)]) == 0
    assert seen and all(p.parent == tmp_path for p in seen)
    assert os.environ["TEXTCLF_PROFILE"] == expected


def test_run_course_refuses_an_unknown_profile_from_the_environment(monkeypatch, capsys):
    run_course = _script("run_course")
    monkeypatch.setenv("TEXTCLF_PROFILE", "bogus")
    monkeypatch.setattr(run_course, "run_notebook", lambda *args: pytest.fail("no notebook may run"))
    with pytest.raises(SystemExit) as exit_:
        run_course.main(["01"])
    assert exit_.value.code == 2 and "TEXTCLF_PROFILE='bogus' is not a profile" in capsys.readouterr().err


def test_mutation_sites_of_a_small_function(monkeypatch):
    spec = importlib.util.spec_from_file_location("mutation_sample", REPO / "scripts" / "mutation_sample.py")
    mutation = importlib.util.module_from_spec(spec)
    monkeypatch.setitem(sys.modules, "mutation_sample", mutation)  # its dataclass looks itself up there
    spec.loader.exec_module(mutation)
    source = ('def f(x: int = 3, flag=True) -> int:\n'
              '    """Doc 1 < 2."""\n'
              '    if x < 0 and flag:\n'
              '        raise ValueError(f"x={x + 1}")\n'
              '    return x * 2\n')
    sites = {m.description: m for m in mutation.mutation_sites(source)}
    # nothing from the defaults, the annotations, the docstring or the f-string
    assert sorted(sites) == sorted(["< -> <=", "0 -> 1", "and -> or", "raise -> pass", "return value -> return None",
                                    "* -> /", "2 -> 3"])
    lines = lambda key: sites[key].apply(source).splitlines()  # noqa: E731
    assert lines("< -> <=")[2] == "    if (x <= 0) and flag:"
    assert lines("and -> or")[2] == "    if (x < 0 or flag):"
    assert lines("raise -> pass")[3] == "        pass"
    assert lines("return value -> return None")[4] == "    return None"
    assert lines("* -> /")[4] == "    return (x / 2)"
    assert lines("2 -> 3")[4] == "    return x * 3"
    for mutant in sites.values():  # each changes one thing and stays valid Python
        compile(mutant.apply(source), "mutant", "exec")
    assert mutation.sample(list(sites.values()), 3, seed=1) == mutation.sample(list(sites.values()), 3, seed=1)
    assert mutation.mutation_sites("ok = not False\n")[0].apply("ok = not False\n") == "ok = not True\n"


def _files_under(folder: Path) -> list[Path]:
    return sorted(p for p in folder.rglob("*") if p.is_file())


@pytest.mark.parametrize("from_mirror", [True, False])
def test_make_mirror_copies_verified_files_the_loader_can_read(from_mirror, mirror, tmp_path, monkeypatch, capsys):
    from textclf_utils import data

    make_mirror = _script("make_mirror")
    out = tmp_path / "stick"
    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(mirror))  # without --from, the loader's mirror is the source
    argv = [str(out), "--datasets", "sms_spam", *(["--from", str(mirror)] if from_mirror else [])]
    assert make_mirror.main(argv) == 0
    assert "sms_spam/SMSSpamCollection: 5,574 rows verified, copied" in capsys.readouterr().out
    copied = out / "data" / "sms_spam" / "SMSSpamCollection"
    assert copied.read_bytes() == (mirror / "sms_spam" / "SMSSpamCollection").read_bytes()
    digest = hashlib.sha256(copied.read_bytes()).hexdigest()
    assert (out / "MANIFEST.sha256").read_text() == f"{digest}  data/sms_spam/SMSSpamCollection\n"
    readme = (out / "README.md").read_text()
    assert "export TEXTCLF_DATA_DIR=" in readme and data.DATASETS["sms_spam"].files[0].fingerprint in readme
    assert _files_under(out) == sorted([copied, out / "MANIFEST.sha256", out / "README.md"])

    monkeypatch.setenv("TEXTCLF_DATA_DIR", str(out / "data"))
    monkeypatch.setenv("TEXTCLF_CACHE_DIR", str(tmp_path / "empty-cache"))
    monkeypatch.setenv("TEXTCLF_OFFLINE", "1")
    assert data.locate_files("sms_spam") == out / "data" / "sms_spam"
    assert sum(len(split) for split in data.load_course_dataset("sms_spam").values()) == 5_160
    assert make_mirror.main(argv) == 0  # a second run keeps the verified copy
    assert "verified, already there" in capsys.readouterr().out


@pytest.mark.parametrize("fault", ["changed", "missing"])
def test_make_mirror_refuses_a_bad_source_file_and_writes_nothing(fault, mirror, tmp_path, capsys):
    from textclf_utils import data

    make_mirror = _script("make_mirror")
    source = tmp_path / "source" / "sms_spam"
    source.mkdir(parents=True)
    if fault == "changed":
        original = (mirror / "sms_spam" / "SMSSpamCollection").read_bytes()
        (source / "SMSSpamCollection").write_bytes(original.replace(b"ham\t", b"spam\t", 1))
    out = tmp_path / "stick"
    assert make_mirror.main([str(out), "--datasets", "sms_spam", "--from", str(source.parent)]) == 1
    err = capsys.readouterr().err
    assert str(source / "SMSSpamCollection") in err and "FAILED" in err
    if fault == "changed":
        assert data.DATASETS["sms_spam"].files[0].fingerprint in err and "Nothing was written" in err
    else:
        assert "is missing" in err
    assert not out.exists() or _files_under(out) == []


def test_make_mirror_interrupted_copy_leaves_no_file(mirror, tmp_path, monkeypatch):
    make_mirror = _script("make_mirror")

    def half_copy(src, dst):
        Path(dst).write_bytes(Path(src).read_bytes()[:1000])
        raise KeyboardInterrupt

    monkeypatch.setattr(make_mirror.shutil, "copyfile", half_copy)
    out = tmp_path / "stick"
    with pytest.raises(KeyboardInterrupt):
        make_mirror.main([str(out), "--datasets", "sms_spam", "--from", str(mirror)])
    assert _files_under(out) == []


def test_make_mirror_replaces_a_different_file_only_with_force(mirror, tmp_path, capsys):
    make_mirror = _script("make_mirror")
    out = tmp_path / "stick"
    target = out / "data" / "sms_spam" / "SMSSpamCollection"
    target.parent.mkdir(parents=True)
    target.write_text("ham\tan older copy\n")
    argv = [str(out), "--datasets", "sms_spam", "--from", str(mirror)]
    assert make_mirror.main(argv) == 1
    err = capsys.readouterr().err
    assert f"{target} already exists and differs" in err and "--force" in err
    assert target.read_text() == "ham\tan older copy\n" and not (out / "MANIFEST.sha256").exists()
    assert make_mirror.main([*argv, "--force"]) == 0
    assert target.read_bytes() == (mirror / "sms_spam" / "SMSSpamCollection").read_bytes()
    assert "replaced" in capsys.readouterr().out


def test_make_mirror_checks_its_arguments_before_any_work(tmp_path, capsys):
    make_mirror = _script("make_mirror")
    assert make_mirror.parse_args([str(tmp_path), "--models", "smoke"]).models == "smoke"  # parsed, not trained
    with pytest.raises(SystemExit) as exit_:
        make_mirror.parse_args([str(tmp_path), "--models", "laptop"])
    assert exit_.value.code == 2
    assert "'laptop' is not a run profile; choose one of smoke, cpu" in capsys.readouterr().err
    (tmp_path / "README.md").write_text("my lesson notes\n")
    with pytest.raises(SystemExit):
        make_mirror.parse_args([str(tmp_path)])
    assert "was not written by this script" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        make_mirror.parse_args([str(tmp_path), "--from", str(tmp_path / "nowhere")])
    assert "is not a folder" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["--epochs", "0"], "--epochs: must be a finite number above 0, got 0"),
    (["--batch-size", "0"], "--batch-size: must be a finite number at least 1, got 0"),
    (["--learning-rate", "-1"], "--learning-rate: must be a finite number above 0, got -1"),
    (["--learning-rate", "nan"], "--learning-rate: must be a finite number above 0, got nan"),
    (["--max-length", "0"], "--max-length: must be a finite number at least 2, got 0"),
    (["--train-examples", "-5"], "--train-examples: must be a finite number at least 0, got -5"),
    (["--batch-size", "2.5"], "--batch-size: '2.5' is not an integer"),
])
def test_finetune_refuses_sizes_and_rates_out_of_range(tmp_path, capsys, argv, message):
    finetune = _script("finetune")
    with pytest.raises(SystemExit) as exit_:
        finetune.parse_args(["--dataset", "sst2", "--output-dir", str(tmp_path / "run"), *argv])
    assert exit_.value.code == 2 and message in capsys.readouterr().err
    args = finetune.parse_args(["--dataset", "sst2", "--output-dir", str(tmp_path / "run"), "--train-examples", "0",
                                "--epochs", "0.5", "--batch-size", "4", "--max-length", "2"])
    assert (args.train_examples, args.epochs, args.batch_size, args.max_length) == (0, 0.5, 4, 2)
