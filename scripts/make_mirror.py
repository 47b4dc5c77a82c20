"""Build a verified offline copy of the course's datasets, and optionally its fine-tuned models, to hand out
on a classroom USB stick or shared drive.

    python scripts/make_mirror.py /media/stick
    python scripts/make_mirror.py /media/stick --from /work/shared/data --datasets sst2 emotion
    python scripts/make_mirror.py /media/stick --models cpu

Data: each file is taken from --from (a folder laid out like a mirror: <dataset>/<file>) or, without it,
from where the notebooks' loader finds it (TEXTCLF_DATA_DIR, then the download cache, then a download). Its
rows are checked against the registry in textclf_utils/data.py (row count and SHA-256, see data/README.md)
before anything is written; it is then copied under a temporary name and renamed, so that an interrupted run
never leaves a file that looks complete, to OUT_DIR/data/<dataset>/<file>: the layout TEXTCLF_DATA_DIR
expects. A different file already there is refused unless --force. Last, OUT_DIR/README.md (how to use the
stick) and OUT_DIR/MANIFEST.sha256 (for `sha256sum -c`) are written, listing every verified file in OUT_DIR.

Models (--models PROFILE): the fine-tuned models that notebooks 03-06 load for that run profile (sst2 and
emotion) go to OUT_DIR/models, the folder TEXTCLF_ARTIFACTS_DIR names. Each is copied from this machine's
model cache when it is there, else TRAINED here by the notebooks' own function
(model_cache.get_finetuned_classifier): about 2 minutes for smoke and 20 for cpu on 2 CPU cores; the gpu
profile wants a GPU, and offline it trains the packaged MiniLM instead of bert-base-uncased.

Exit status: 0 when every file is in place and verified, 1 when a file is missing, corrupt or refused, or a
model fails; 2 for bad arguments.
"""

from __future__ import annotations

import argparse
import datetime
import hashlib
import os
import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(ROOT))

from textclf_utils.config import PROFILES, get_profile  # noqa: E402
from textclf_utils.data import (  # noqa: E402
    DATA_DIR_ENV, DATASETS, ChecksumError, DataUnavailableError, DatasetSpec, locate_files, verify_file)
from textclf_utils.model_cache import (  # noqa: E402
    ARTIFACTS_ENV, ModelCacheError, check_cache_entry, finetuned_model_dir, get_finetuned_classifier,
    load_cached_classifier)
from textclf_utils.recipes import finetune_recipe, resolved_model_name  # noqa: E402

FINETUNED_DATASETS = ("sst2", "emotion")  # the datasets notebooks 03-06 fine-tune (get_finetuned_classifier)
README_TITLE = "# Offline copy of the transformer text-classification course's data"
MANIFEST = "MANIFEST.sha256"


class MirrorError(RuntimeError):
    """A file cannot be put in the mirror: the message names it and says what to do."""


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("out_dir", type=Path, metavar="OUT_DIR",
                        help="the stick or shared folder; data goes to OUT_DIR/data, models to OUT_DIR/models")
    parser.add_argument("--datasets", nargs="+", choices=list(DATASETS), default=list(DATASETS), metavar="NAME",
                        help=f"the datasets to copy (default: all: {' '.join(DATASETS)})")
    parser.add_argument("--from", dest="source", type=Path, metavar="EXISTING_MIRROR",
                        help="take the files from this mirror folder (<dataset>/<file>) instead of the loader's")
    parser.add_argument("--models", metavar="PROFILE",
                        help=f"also put the fine-tuned models of this run profile ({', '.join(PROFILES)}) in "
                             "OUT_DIR/models; those not in this machine's model cache are trained: slow")
    parser.add_argument("--force", action="store_true",
                        help="replace files in OUT_DIR that differ from the verified ones, and a README.md "
                             "this script did not write")
    args = parser.parse_args(argv)
    if args.source is not None and not args.source.is_dir():
        parser.error(f"--from {args.source} is not a folder.")
    if args.models is not None:
        try:
            get_profile(args.models)
        except ValueError:
            parser.error(f"--models {args.models!r} is not a run profile; choose one of {', '.join(PROFILES)}.")
    if args.out_dir.exists() and not args.out_dir.is_dir():
        parser.error(f"OUT_DIR {args.out_dir} is a file, not a folder.")
    readme = args.out_dir / "README.md"
    if readme.is_file() and not readme.read_text(errors="replace").startswith(README_TITLE) and not args.force:
        parser.error(f"{readme} was not written by this script: is OUT_DIR the right folder? Choose another, "
                     "or pass --force to replace its README.md and MANIFEST.sha256.")
    return args


def file_sha256(path: Path) -> str:
    """The SHA-256 of ``path``'s bytes (the registry's checksums are of rows; this one is for sha256sum)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def source_folder(spec: DatasetSpec, source: Path | None) -> Path:
    """Where ``spec``'s files are taken from: ``source/<dataset>``, else the folder the loader finds or fills."""
    if source is not None:
        return source / spec.name
    try:
        return locate_files(spec.name)
    except (DataUnavailableError, ChecksumError) as err:
        raise MirrorError(f"{err}\nOr pass --from with a folder that holds the files.") from err


def copy_verified(src: Path, target: Path, spec: DatasetSpec, file_name: str, force: bool) -> str:
    """Put ``src`` at ``target`` once its rows are verified, atomically; say what was done."""
    if not src.is_file():
        raise MirrorError(f"{src} is missing. Put the published {spec.name}/{file_name} there, or leave out "
                          "--from to take it from the loader's mirror, cache or a download (data/README.md).")
    try:
        verify_file(src, spec.name, file_name)
    except ChecksumError as err:
        raise MirrorError(f"{err}\nNothing was written for it. Replace {src} with the published file, or take "
                          "the files from elsewhere (--from another mirror, or no --from).") from err
    digest = file_sha256(src)
    existed = target.is_file()
    if existed:
        found = file_sha256(target)
        if found == digest:
            return "already there"
        if not force:
            raise MirrorError(f"{target} already exists and differs from the verified {src} (SHA-256 of the bytes "
                              f"{found}, expected {digest}). Pass --force to replace it, or choose another OUT_DIR.")
    target.parent.mkdir(parents=True, exist_ok=True)
    for stale in target.parent.glob(f".{target.name}.partial-*"):  # left by an interrupted run
        stale.unlink()
    handle, name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.partial-")
    os.close(handle)
    partial = Path(name)
    try:
        shutil.copyfile(src, partial)
        partial.chmod(0o644)  # mkstemp makes it private; the mirror is for everyone to read
        if file_sha256(partial) != digest:
            raise MirrorError(f"The copy of {src} written to {target.parent} differs from it: is that drive full "
                              "or failing? Nothing was kept; free space or use another drive, and run again.")
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
    return "replaced" if existed else "copied"


def copy_dataset(spec: DatasetSpec, source: Path | None, data_dir: Path, force: bool) -> bool:
    """Copy and verify ``spec``'s files into ``data_dir``, printing a line per file; False if any failed."""
    try:
        folder = source_folder(spec, source)
    except MirrorError as err:
        print(f"  {spec.name}: FAILED\n{err}", file=sys.stderr)
        return False
    ok = True
    for file in spec.files:
        src = folder / file.name
        try:
            status = copy_verified(src, data_dir / spec.name / file.name, spec, file.name, force)
            print(f"  {spec.name}/{file.name}: {file.rows:,} rows verified, {status} (from {src})", flush=True)
        except (MirrorError, OSError) as err:  # OSError: e.g. the drive is full or read-only
            print(f"  {spec.name}/{file.name}: FAILED\n{err}", file=sys.stderr, flush=True)
            ok = False
    return ok


def copy_model_entry(local: Path, target: Path) -> None:
    """Copy the cache entry ``local`` to ``target``: to a temporary folder beside it, then renamed."""
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = Path(tempfile.mkdtemp(dir=target.parent, prefix=f".{target.name}.partial-"))
    try:
        shutil.copytree(local, partial, dirs_exist_ok=True)
        partial.chmod(0o755)
        os.replace(partial, target)
    finally:
        shutil.rmtree(partial, ignore_errors=True)


def put_models(profile_name: str, models_dir: Path) -> bool:
    """Fill ``models_dir`` with the profile's fine-tuned models, as the notebooks would; False if one failed."""
    profile = get_profile(profile_name)
    model = resolved_model_name(profile.model)
    if model != profile.model:
        print(f"  note: the Hub is not reachable, so the {profile.name} recipe uses {model} instead of "
              f"{profile.model}; a classroom with internet would look for {profile.model} models instead.")
    ok = True
    for dataset in FINETUNED_DATASETS:
        recipe = finetune_recipe(dataset, profile)
        target, local = finetuned_model_dir(recipe, models_dir), finetuned_model_dir(recipe)
        try:
            if (target / "training.json").is_file():
                status = "already there"
            elif (local / "training.json").is_file():
                check_cache_entry(target)  # no incomplete folder in the way
                copy_model_entry(local, target)
                status = f"copied from {local}"
            else:
                print(f"  {recipe.cache_key()}: not in {local.parent}, training it now (slow)...", flush=True)
                get_finetuned_classifier(dataset, profile, cache_dir=models_dir)
                status = "trained"
            load_cached_classifier(target)  # it loads, as the notebooks will load it
            print(f"  models/finetuned/{target.name}: {status}, loads", flush=True)
        except (ModelCacheError, OSError, RuntimeError) as err:
            print(f"  models/finetuned/{target.name}: FAILED\n{err}", file=sys.stderr, flush=True)
            ok = False
    return ok


def verified_files(out_dir: Path) -> list[tuple[str, int | None, str | None]]:
    """Every file in ``out_dir``'s mirror, its rows re-verified, and in its complete model entries:
    ``(path relative to out_dir, rows, registry fingerprint)`` (``None`` for model files)."""
    files: list[tuple[str, int | None, str | None]] = []
    for spec in DATASETS.values():
        for file in spec.files:
            path = out_dir / "data" / spec.name / file.name
            if path.is_file():
                verify_file(path, spec.name, file.name)
                files.append((path.relative_to(out_dir).as_posix(), file.rows, file.fingerprint))
    for entry in sorted((out_dir / "models" / "finetuned").glob("*/training.json")):
        files += [(path.relative_to(out_dir).as_posix(), None, None)
                  for path in sorted(entry.parent.rglob("*")) if path.is_file()]
    return files


def write_atomically(path: Path, text: str) -> None:
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8")
    os.replace(partial, path)


def write_index(out_dir: Path) -> None:
    """Write ``MANIFEST.sha256`` and ``README.md`` for every verified file in ``out_dir``."""
    files = verified_files(out_dir)
    digests = {name: file_sha256(out_dir / name) for name, _, _ in files}
    write_atomically(out_dir / MANIFEST, "".join(f"{digests[name]}  {name}\n" for name, _, _ in files))
    data_rows = [f"| `{name}` | {rows:,} | `{fingerprint}` | `{digests[name]}` |"
                 for name, rows, fingerprint in files if rows is not None]
    models = sorted({name.split("/")[2] for name, rows, _ in files if rows is None})
    lines = [
        README_TITLE, "",
        f"Written by `scripts/make_mirror.py` on {datetime.date.today().isoformat()}. Each data file's rows were "
        "checked against the course's registry (`textclf_utils/data.py`; `data/README.md` in the course repository "
        "lists the sources, licences and citations). `MANIFEST.sha256` holds the SHA-256 of every file's bytes, "
        "to check this copy later:", "",
        "    cd /path/to/this/folder && sha256sum -c MANIFEST.sha256", "",
        "## Use it", "",
        "Before starting Jupyter, point the course at the data folder (no download, no internet needed):", "",
        f"    export {DATA_DIR_ENV}=/path/to/this/folder/data        # Windows: set {DATA_DIR_ENV}=E:\\data", "",
        "The loader checks every file again when it reads it.", "",
        "| file | rows | SHA-256 of the rows (registry) | SHA-256 of the bytes |", "|---|---|---|---|", *data_rows,
    ]
    if models:
        lines += [
            "", "## Fine-tuned models", "",
            "Notebooks 04-06 load these instead of training them (notebook 03 trains its own, to show how):", "",
            f"    export {ARTIFACTS_ENV}=/path/to/this/folder/models", "",
            "The notebooks also write there (notebook 06 caches its teacher's logits): on a read-only stick, copy "
            f"`models` to the local disk and point {ARTIFACTS_ENV} at the copy.", "",
            *[f"- `{name}`" for name in models],
        ]
    write_atomically(out_dir / "README.md", "\n".join(lines) + "\n")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    out_dir = args.out_dir.expanduser().resolve()
    source = f"--from {args.source}" if args.source else "the loader's mirror, cache or a download"
    print(f"Data for {', '.join(args.datasets)} from {source}, verified, into {out_dir / 'data'}:", flush=True)
    # a list, not a generator: every dataset is tried, and every failure reported
    ok = all([copy_dataset(DATASETS[name], args.source, out_dir / "data", args.force) for name in args.datasets])
    if ok and args.models:
        print(f"Fine-tuned models of the {args.models} profile into {out_dir / 'models'}:", flush=True)
        ok = put_models(args.models, out_dir / "models")
    if not ok:
        print("FAILED: see the messages above; files already verified are in place, nothing half-written is.",
              file=sys.stderr)
        return 1
    try:
        write_index(out_dir)
    except ChecksumError as err:
        print(f"FAILED: a file in {out_dir} no longer verifies; delete it and run again.\n{err}", file=sys.stderr)
        return 1
    print(f"Done: {out_dir / 'README.md'} and {out_dir / MANIFEST} list the files. In the classroom:\n"
          f"  export {DATA_DIR_ENV}={out_dir / 'data'}")
    if args.models:
        print(f"  export {ARTIFACTS_ENV}={out_dir / 'models'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
