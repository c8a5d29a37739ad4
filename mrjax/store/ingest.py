"""``mrjax.ingest``: read each GWAS file once into the store, in parallel on Dask.

Per source file, one task (on a Dask worker, see :mod:`mrjax.store.engine`):

1. SHA-256 of the file; with the same checksum and reader options already in the store
   (every trait it produced present) the source is *skipped* — nothing is read;
2. ``mrjax.gwas.readers.stream_gwas(path, ...)`` — ``read_gwas``'s blocks and read audit, in
   memory bounded by the block size (:mod:`mrjax.store.streaming`: sorted runs, duplicates
   and the external sort by duckdb);
3. per trait: the sorted variants, SNP index, top hits (p <= ``keep_p``), audit and metadata
   are written into a fresh folder under ``STORE/.tmp`` (metadata last).

The calling process then *commits* each finished trait by renaming its folder into
``STORE/traits`` (replacing an older version), so the store's contents never depend on the
number of workers or the order tasks finish in: when two sources produce the same trait the
one earlier in the input list wins, whatever finishes first. A source that fails (unreadable,
corrupt, missing column ...) fails its traits with a one-line reason in the summary and in
``STORE/ingest.log``; the others go on. An ingest killed at any point leaves no partial trait
(only ``.tmp`` debris, cleared by the next ingest, which redoes the unfinished sources).
"""

from __future__ import annotations

import hashlib
import json
import shutil
import time
from pathlib import Path

import pandas as pd

from mrjax.store import layout, metadata, streaming, tables
from mrjax.store.engine import run_tasks
from mrjax.store.sources import Source, plan_sources

SUMMARY_COLUMNS = ["trait", "status", "rows", "top_hits", "seconds", "source", "reason"]
DEFAULT_KEEP_P = 1e-4


def ingest(paths=None, store=None, *, manifest=None, workers: int | None = None, scheduler: str | None = None,
           keep_p: float = DEFAULT_KEEP_P, format: str | None = None, columns: dict | None = None,
           use_harmonised: bool = True, missing_id: str = "chrpos", progress: bool | None = None,
           cluster_options: dict | None = None) -> pd.DataFrame:
    """Ingest GWAS files into the store at ``store``; returns the summary, one row per trait.

    ``paths``: files or glob patterns, in any format ``mrjax.read_gwas`` reads (a long table
    with a trait/exposure/phenotype column becomes one trait per value); ``manifest``: a TSV
    naming files, traits, formats and column maps (``mrjax.store.sources``).
    ``workers``/``scheduler``: where the tasks run (``mrjax.store.engine``; default a
    ``LocalCluster`` with one worker process per core; ``0`` = this process).
    ``keep_p``: rows with p <= keep_p go to each trait's top-hits table.
    ``format``, ``columns``, ``use_harmonised``, ``missing_id``: as in ``read_gwas``.

    Summary columns: ``trait, status, rows, top_hits, seconds, source, reason``; status is
    ``written`` (new), ``replaced`` (the source changed), ``skipped`` (already in the store
    with the same checksum and options) or ``failed`` (``reason`` says why). Raises
    ``ValueError`` only for bad arguments (no store, bad ``keep_p``, unreadable manifest).
    """
    if store is None:
        raise ValueError("ingest needs a store folder: ingest(paths, store='gwas_store')")
    keep_p = float(keep_p)
    if not 0.0 < keep_p <= 1.0:
        raise ValueError(f"keep_p must lie in (0, 1], not {keep_p!r}")
    if missing_id not in ("chrpos", "drop"):
        raise ValueError(f"missing_id must be 'chrpos' or 'drop', not {missing_id!r}")
    sources = plan_sources(paths, manifest, format=format, columns=columns)
    if not sources:
        raise ValueError("nothing to ingest: give GWAS files, globs or a manifest")
    root = layout.open_store(store, create=True)
    layout.clear_debris(root)
    settings = {"keep_p": keep_p, "use_harmonised": bool(use_harmonised), "missing_id": missing_id,
                "store_version": layout.FORMAT_VERSION}
    task = _Task(str(root.resolve()), settings, complete_sources(root))
    committer = _Committer(root)
    ready = [s for s in sources if s.problem is None]
    for source in sources:
        if source.problem is not None:
            committer.failed(source, source.label, source.problem)
    run_tasks(task, ready, workers=workers, scheduler=scheduler, on_result=committer.accept,
              on_error=committer.crashed, labels=[s.label for s in ready], progress=progress,
              cluster_options=cluster_options)
    return committer.summary()


def complete_sources(root: Path) -> dict[str, list[str]]:
    """Ingest keys whose traits are all in the store: key -> the traits it produced."""
    present: dict[str, set[str]] = {}
    produced: dict[str, list[str]] = {}
    for trait, folder in layout.trait_folders(root).items():
        record = json.loads((folder / layout.METADATA).read_text())["ingest"]
        present.setdefault(record["key"], set()).add(trait)
        produced[record["key"]] = record["source_traits"]
    return {key: traits for key, traits in produced.items() if set(traits) <= present[key]}


def ingest_key(checksum: str, source: Source, settings: dict) -> str:
    """What decides whether a source must be read again: its bytes and every reader option."""
    payload = json.dumps({"sha256": checksum, "options": source.options(), "settings": settings}, sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


class _Task:
    """The work for one source, run on a worker; returns one outcome dict per trait."""

    def __init__(self, root: str, settings: dict, complete: dict[str, list[str]]):
        self.root = root
        self.settings = settings
        self.complete = complete

    def __call__(self, source: Source) -> list[dict]:
        started = time.perf_counter()
        path = Path(source.path)
        try:
            checksum = metadata.sha256_of(path)
        except OSError as error:
            return [_outcome(source, source.label, "failed", reason=f"{path}: cannot read the file ({error.strerror or error})")]
        key = ingest_key(checksum, source, self.settings)
        if key in self.complete:
            return [_outcome(source, trait, "skipped", reason="same source checksum and options")
                    for trait in self.complete[key]]
        sink = streaming.StoreSink(layout.new_temporary(Path(self.root)), self.settings["keep_p"])
        try:
            try:
                records = _read(source, self.settings, sink).audit
                facts = metadata.study_facts(path, source.format, dict(source.columns) or None)
            except Exception as error:  # noqa: BLE001 - one bad file fails only its traits
                return [_outcome(source, source.label, "failed", reason=_one_line(error))]
            return self._write(source, path, checksum, key, records, facts, sink, started)
        finally:
            sink.close()

    def _write(self, source, path, checksum, key, records, facts, sink, started) -> list[dict]:
        record = metadata.source_record(path, checksum, _format_of(source, self.settings))
        counts = metadata.read_audits(records)
        outcomes = [_outcome(source, trait, "failed", reason=(
                        f"{path}: no variant of trait {trait!r} left after reading {rows['read']} rows "
                        f"({rows['dropped_by_reason']})"))
                    for trait, (rows, _) in counts.items() if trait not in sink.runs]
        names = sorted(sink.runs)
        for trait in names:
            temporary = layout.new_temporary(Path(self.root))
            try:
                info = _write_trait(temporary, sink, trait, counts[trait], facts, source, record,
                                    {"key": key, "options": source.options(), "source_traits": names, **self.settings})
            except Exception as error:  # noqa: BLE001 - this trait fails; the source's others go on
                shutil.rmtree(temporary, ignore_errors=True)
                outcomes.append(_outcome(source, trait, "failed", reason=_one_line(error)))
                continue
            info["ingest"]["seconds"] = round(time.perf_counter() - started, 3)
            layout.write_json(temporary / layout.METADATA, info)
            outcomes.append(_outcome(source, trait, "written", rows=info["rows"]["kept"],
                                     top_hits=info["rows"]["top_hits"], temporary=str(temporary),
                                     seconds=info["ingest"]["seconds"]))
        return outcomes


def _read(source: Source, settings: dict, sink):
    """The source's blocks into ``sink``; returns its read records (``mrjax.audit.Audited``)."""
    from mrjax.gwas import readers

    return readers.stream_gwas(source.path, sink, format=source.format, columns=dict(source.columns) or None,
                               p_max=None, trait=source.trait, use_harmonised=settings["use_harmonised"],
                               n=source.n, missing_id=settings["missing_id"], block_size=readers.BLOCK_SIZE)


def _format_of(source: Source, settings: dict) -> str:
    from mrjax.gwas.readers import detected_format

    return detected_format(source.path, source.format, dict(source.columns) or None, settings["use_harmonised"])


def _write_trait(folder: Path, sink: streaming.StoreSink, trait: str, audited: tuple, facts: dict, source: Source,
                 record: dict, ingest_record: dict) -> dict:
    """Write one trait's parquet files into ``folder``; returns its metadata (not yet written)."""
    rows, listed = audited
    written = sink.write_trait(trait, folder)
    files = {
        layout.VARIANTS: written["variants"],
        layout.SNP_INDEX: written["snp_index"],
        layout.TOP_HITS: written["top_hits"],
        layout.AUDIT: tables.write_audit(listed, folder / layout.AUDIT),
    }
    case_control = facts.get("case_control")
    n_cases = source.n_cases if source.n_cases is not None else metadata.for_trait(facts.get("n_cases", {}), trait)
    n_controls = (source.n_controls if source.n_controls is not None
                  else metadata.for_trait(facts.get("n_controls", {}), trait))
    build, build_from = facts.get("genome_build"), facts.get("genome_build_from")
    if source.build:
        build, build_from = source.build, "manifest"
    return {
        "trait": trait,
        "store_version": layout.FORMAT_VERSION,
        "mrjax_version": layout.mrjax_version(),
        "source": record,
        "ingest": {**ingest_record, "ingested_at": layout.utc_now()},
        "rows": {**rows, "top_hits": files[layout.TOP_HITS]["rows"]},
        "sample_size": streaming.sample_size(written["sizes"]),
        "n_cases": n_cases,
        "n_controls": n_controls,
        "case_control": case_control,
        "long_table": bool(facts.get("long_table")),
        "effect_scale": None if case_control is None else ("OR" if case_control else "beta"),
        "genome_build": build,
        "genome_build_from": build_from,
        "chromosomes": written["chromosomes"],
        "files": files,
    }


def _outcome(source: Source, trait: str, status: str, *, rows=None, top_hits=None, reason="", temporary=None,
             seconds=None) -> dict:
    return {"trait": trait, "status": status, "rows": rows, "top_hits": top_hits, "seconds": seconds,
            "source": source.path, "reason": reason, "index": source.index, "temporary": temporary}


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split()) or type(error).__name__
    return text if isinstance(error, (ValueError, OSError)) else f"{type(error).__name__}: {text}"


class _Committer:
    """Runs in the calling process: renames finished traits into place and keeps the summary."""

    def __init__(self, root: Path):
        self.root = root
        self.outcomes: dict[tuple[str, int], dict] = {}
        self.owner: dict[str, int] = {}  # trait -> index of the source whose version is committed

    def accept(self, source: Source, outcomes: list[dict]) -> list[str]:
        lines, log = [], []
        for outcome in outcomes:
            trait = outcome["trait"]
            if outcome["status"] == "written":
                self._commit(outcome, log)
            else:
                self.outcomes[(trait, source.index)] = outcome
                log.append((outcome["status"], trait, outcome["source"], outcome["reason"]))
            lines.append(_line(self.outcomes[(trait, source.index)]))
        layout.append_log(self.root, log)
        return lines

    def _commit(self, outcome: dict, log: list) -> None:
        trait, index = outcome["trait"], outcome["index"]
        earlier = self.owner.get(trait)
        temporary = Path(outcome.pop("temporary"))
        if earlier is not None and earlier < index:
            shutil.rmtree(temporary, ignore_errors=True)
            other = self.outcomes[(trait, earlier)]["source"]
            outcome.update(status="failed", reason=f"trait {trait!r} is also produced by {other} (earlier in the list)")
        else:
            if earlier is not None:  # a later source committed this trait first: it loses
                loser = self.outcomes[(trait, earlier)]
                loser.update(status="failed", reason=f"trait {trait!r} is also produced by {outcome['source']} "
                                                      "(earlier in the list)")
                log.append(("failed", trait, loser["source"], loser["reason"]))
            replaced = layout.commit(self.root, temporary, trait)
            outcome["status"] = "replaced" if replaced and earlier is None else "written"
            self.owner[trait] = index
        self.outcomes[(trait, index)] = outcome
        log.append((outcome["status"], trait, outcome["source"], outcome["reason"]))

    def failed(self, source: Source, trait: str, reason: str) -> None:
        outcome = _outcome(source, trait, "failed", reason=reason)
        self.outcomes[(trait, source.index)] = outcome
        layout.append_log(self.root, [("failed", trait, source.path, reason)])

    def crashed(self, source: Source, error: BaseException) -> list[str]:
        """The task itself died (e.g. its worker was killed for memory)."""
        reason = _one_line(error)
        if type(error).__name__ == "KilledWorker":
            reason = f"the worker running it died ({reason}); is the file too large for the worker's memory?"
        self.failed(source, source.label, reason)
        return [_line(self.outcomes[(source.label, source.index)])]

    def summary(self) -> pd.DataFrame:
        ordered = [self.outcomes[k] for k in sorted(self.outcomes, key=lambda k: (k[1], k[0]))]
        frame = pd.DataFrame(ordered, columns=SUMMARY_COLUMNS + ["index"])
        frame["rows"] = frame["rows"].astype("Int64")
        frame["top_hits"] = frame["top_hits"].astype("Int64")
        return frame[SUMMARY_COLUMNS].reset_index(drop=True)


def _line(outcome: dict) -> str:
    if outcome["status"] in ("written", "replaced"):
        return f"{outcome['status']} {outcome['trait']}: {outcome['rows']} rows, {outcome['top_hits']} top hits"
    return f"{outcome['status']} {outcome['trait']}: {outcome['reason']}"
