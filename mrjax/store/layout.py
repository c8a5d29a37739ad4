"""The on-disk layout of a GWAS store: folders, file names, the format version and the log.

::

    STORE/
      store.json                 {"format": "mrjax-gwas-store", "version": 1, ...}
      ingest.log                 one tab-separated line per trait and ingest run
      traits/<trait>/            one folder per trait (name percent-encoded)
        variants.parquet         every kept row, sorted by chromosome and position
        snp_index.parquet        SNP -> row of variants.parquet, sorted by SNP
        top_hits.parquet         rows with p <= keep_p, in the source file's order
        audit.parquet            the read step's listed drops (bad values, duplicates)
        metadata.json            source, checksum, counts, sample size, scale, build (last written)
      .tmp/                      traits being written (never read; cleared by the next ingest)
      .trash/                    replaced traits on their way out

A trait folder appears only by ``os.rename`` of a complete temporary folder, so a reader
never sees half a trait, and an ingest killed at any point leaves only ``.tmp`` debris.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid
from pathlib import Path
from urllib.parse import quote, unquote

FORMAT_NAME = "mrjax-gwas-store"
FORMAT_VERSION = 1

STORE_FILE = "store.json"
LOG_FILE = "ingest.log"
TRAITS = "traits"
TMP = ".tmp"
TRASH = ".trash"

VARIANTS = "variants.parquet"
SNP_INDEX = "snp_index.parquet"
TOP_HITS = "top_hits.parquet"
AUDIT = "audit.parquet"
METADATA = "metadata.json"
TRAIT_FILES = (VARIANTS, SNP_INDEX, TOP_HITS, AUDIT, METADATA)


def mrjax_version() -> str:
    """The installed mrjax version, read without importing the JAX side of the package."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("mrjax")
    except PackageNotFoundError:  # running from a source tree that is not installed
        return "unknown"


def folder_name(trait: str) -> str:
    """A file-system-safe folder name for ``trait`` (percent-encoding; reversible)."""
    if not trait:
        raise ValueError("a trait name must not be empty")
    name = quote(trait, safe="-_.")
    return "%2E" + name[1:] if name.startswith(".") else name


def trait_of_folder(name: str) -> str:
    return unquote(name)


def write_json(path: Path, payload: dict) -> None:
    """Write JSON atomically (temporary file in the same folder, then rename)."""
    path = Path(path)
    temporary = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    temporary.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")
    os.replace(temporary, path)


def open_store(root, *, create: bool) -> Path:
    """The store's root folder, checked (or created) with its ``store.json``.

    Raises ``ValueError`` when the folder is not a store (and ``create`` is false) or was
    written by a newer store format than this mrjax reads.
    """
    root = Path(root)
    marker = root / STORE_FILE
    if not marker.is_file():
        if not create:
            raise ValueError(f"{root}: not a GWAS store (no {STORE_FILE}); create one with `mrjax ingest FILE --store {root}`")
        if root.exists() and any(p.name not in (TMP, TRASH) for p in root.iterdir()):
            raise ValueError(f"{root}: the folder exists and is not a GWAS store; give an empty or new folder")
        (root / TRAITS).mkdir(parents=True, exist_ok=True)
        write_json(marker, {"format": FORMAT_NAME, "version": FORMAT_VERSION, "created_by": f"mrjax {mrjax_version()}",
                            "created": utc_now()})
        return root
    info = json.loads(marker.read_text())
    if info.get("format") != FORMAT_NAME:
        raise ValueError(f"{marker}: not an mrjax GWAS store (format {info.get('format')!r})")
    if int(info.get("version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{root}: store format version {info['version']} is newer than this mrjax reads ({FORMAT_VERSION}); upgrade mrjax"
        )
    (root / TRAITS).mkdir(exist_ok=True)
    return root


def utc_now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def trait_folder(root: Path, trait: str) -> Path:
    return Path(root) / TRAITS / folder_name(trait)


def trait_folders(root: Path) -> dict[str, Path]:
    """Complete traits of the store: name -> folder (a folder without metadata.json is ignored)."""
    folder = Path(root) / TRAITS
    if not folder.is_dir():
        return {}
    return {trait_of_folder(p.name): p for p in sorted(folder.iterdir()) if (p / METADATA).is_file()}


def new_temporary(root: Path) -> Path:
    """A fresh folder under ``.tmp`` to write one trait into."""
    path = Path(root) / TMP / uuid.uuid4().hex
    path.mkdir(parents=True)
    return path


def clear_debris(root: Path) -> int:
    """Remove what a killed ingest left behind (``.tmp`` and ``.trash``); returns the count."""
    removed = 0
    for name in (TMP, TRASH):
        folder = Path(root) / name
        if folder.is_dir():
            for item in folder.iterdir():
                shutil.rmtree(item, ignore_errors=True)
                removed += 1
    return removed


def commit(root: Path, temporary: Path, trait: str) -> bool:
    """Move a complete temporary trait folder into place; returns whether it replaced one.

    An existing trait is first renamed into ``.trash`` (then deleted), so at every instant
    the trait is either the old complete folder, absent, or the new complete folder.
    """
    target = trait_folder(root, trait)
    replaced = target.exists()
    if replaced:
        trash = Path(root) / TRASH / uuid.uuid4().hex
        trash.parent.mkdir(exist_ok=True)
        os.rename(target, trash)
        os.rename(temporary, target)
        shutil.rmtree(trash, ignore_errors=True)
    else:
        os.rename(temporary, target)
    return replaced


def append_log(root: Path, lines: list[tuple[str, str, str, str]]) -> None:
    """Append ``status, trait, source, reason`` lines (with a UTC time) to ``ingest.log``."""
    if not lines:
        return
    stamp = utc_now()
    with open(Path(root) / LOG_FILE, "a", encoding="utf-8") as handle:
        for status, trait, source, reason in lines:
            fields = (stamp, status, trait, source, " ".join(str(reason).split()))
            handle.write("\t".join(fields) + "\n")
