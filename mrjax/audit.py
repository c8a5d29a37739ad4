"""The audit trail: every variant a pipeline step drops is recorded with its reason.

Each step (read, select, clump, strength, harmonise, proxies …) returns its output table with
its records in ``table.attrs`` (read them with :func:`audit_of` and :func:`counts_of`):

* ``attrs["audit"]`` — one row per dropped (or substituted) variant:
  ``step, trait, SNP, reason, detail`` (``detail`` e.g. ``"clumped by rs123"``);
* ``attrs["audit_counts"]`` — one row per step and trait: ``step, trait, n_in, n_kept,
  n_dropped``; ``n_in == n_kept + n_dropped`` always holds.

Both accumulate: a step's output carries the records of all the steps before it, so the
table that reaches ``mrjax.mr`` tells the whole story of its instruments. The frames are held
in :class:`Records`, so that the tables stay ordinary pandas tables (``pd.concat``, ``merge``
and ``to_parquet`` work on them).
"""

from __future__ import annotations

import pandas as pd

AUDIT_COLUMNS = ["step", "trait", "SNP", "reason", "detail"]
COUNT_COLUMNS = ["step", "trait", "n_in", "n_kept", "n_dropped"]
UNLISTED_COLUMNS = ["step", "trait", "reason", "n"]  # drops counted, not listed (mrjax.gwas.unlisted_of)

# The vocabulary of drop reasons (``reason`` column); ``detail`` carries the specifics.
REASONS = (
    "bad value",
    "duplicate",
    "not significant",
    "not in panel",
    "clumped",
    "weak instrument",
    "missing in outcome",
    "proxy used",
    "palindromic ambiguous",
    "allele mismatch",
    "mr_keep false",
    "one allele only",  # kept by harmonise on the effect allele and frequencies (a side lacks its other allele)
)


def drops(step: str, trait, snps, reason: str, detail=None) -> pd.DataFrame:
    """Audit rows for variants ``snps`` of ``trait`` dropped at ``step`` for ``reason``.

    ``trait`` and ``detail`` may be scalars or sequences aligned with ``snps``.
    """
    if reason not in REASONS:
        raise ValueError(f"unknown audit reason {reason!r}; use one of {REASONS}")
    snps = list(snps)
    frame = pd.DataFrame({"SNP": pd.Series(snps, dtype=object)})
    frame["step"] = step
    frame["trait"] = trait if not isinstance(trait, (list, tuple, pd.Series)) else list(trait)
    frame["reason"] = reason
    frame["detail"] = detail if not isinstance(detail, (list, tuple, pd.Series)) else list(detail)
    return frame[AUDIT_COLUMNS]


class Records(dict):
    """A frame of audit records as held in ``DataFrame.attrs`` (``.frame``; not modified in place).

    pandas compares attrs with ``==`` when it concatenates or merges tables (a bare
    DataFrame there raises "truth value of a DataFrame is ambiguous"), deep-copies them on
    every operation, and writes them into parquet metadata as JSON (a DataFrame fails).
    ``Records`` compares by content and returns a bool, is shared rather than copied, and
    serialises as its row count (``{"mrjax_records": n}``; the records themselves are written
    beside a table, as ``audit.tsv``, never inside a parquet file).
    """

    def __init__(self, frame: pd.DataFrame):
        super().__init__(mrjax_records=len(frame))
        self.frame = frame

    def __eq__(self, other):
        if not isinstance(other, Records):
            return False
        return self.frame is other.frame or self.frame.equals(other.frame)

    def __ne__(self, other):
        return not self == other

    __hash__ = None

    def __deepcopy__(self, memo):
        return self

    def __reduce__(self):
        return (Records, (self.frame,))


def records_of(table: pd.DataFrame, key: str, columns: list[str]) -> pd.DataFrame:
    """The frame held under ``table.attrs[key]`` (an empty one with ``columns`` if none)."""
    held = table.attrs.get(key)
    if isinstance(held, Records):
        return held.frame
    if isinstance(held, pd.DataFrame):  # set by hand
        return held
    return pd.DataFrame(columns=columns)


def attach(table: pd.DataFrame, **frames: pd.DataFrame) -> pd.DataFrame:
    """Hold ``frames`` (``audit=…``, ``audit_counts=…``, ``audit_unlisted=…``) in
    ``table.attrs``; returns ``table`` (modified in place)."""
    for key, frame in frames.items():
        table.attrs[key] = Records(frame)
    return table


CARRIED = {"audit": AUDIT_COLUMNS, "audit_counts": COUNT_COLUMNS, "audit_unlisted": UNLISTED_COLUMNS}


def carry(target: pd.DataFrame, *tables: pd.DataFrame) -> pd.DataFrame:
    """Stack the records of ``tables`` (in order) onto ``target``, replacing its own;
    returns ``target``. Keys no table carries are left out."""
    for key, columns in CARRIED.items():
        frames = [records_of(t, key, columns) for t in tables if key in t.attrs]
        nonempty = [f for f in frames if len(f)]
        if frames:
            attach(target, **{key: pd.concat(nonempty, ignore_index=True) if nonempty else frames[0]})
    return target


def audit_of(table: pd.DataFrame) -> pd.DataFrame:
    """The drop records carried by ``table`` (empty frame when there are none)."""
    return records_of(table, "audit", AUDIT_COLUMNS)


def counts_of(table: pd.DataFrame) -> pd.DataFrame:
    """The per-step, per-trait counts carried by ``table``."""
    return records_of(table, "audit_counts", COUNT_COLUMNS)


def record(
    output: pd.DataFrame,
    step: str,
    n_in: pd.Series | dict,
    dropped: pd.DataFrame | None = None,
    *,
    inputs: tuple[pd.DataFrame, ...] = (),
    trait_column: str = "trait",
) -> pd.DataFrame:
    """Attach this step's records to ``output`` (returned, modified in place).

    ``n_in`` maps trait -> number of variants that entered the step; ``dropped`` holds this
    step's audit rows; ``inputs`` are the step's input tables whose earlier records are
    carried forward. Raises ``AssertionError`` if kept + dropped does not equal entered
    (a step that loses a variant without a reason is a bug).
    """
    dropped = dropped if dropped is not None else pd.DataFrame(columns=AUDIT_COLUMNS)
    n_in = pd.Series(n_in, dtype="int64")
    if trait_column in output.columns:
        kept = output.groupby(trait_column, sort=False).size()
    else:
        kept = pd.Series(len(output), index=n_in.index[:1])
    kept = kept.reindex(n_in.index, fill_value=0)
    lost = dropped.groupby("trait", sort=False).size().reindex(n_in.index, fill_value=0)
    counts = pd.DataFrame(
        {"step": step, "trait": n_in.index, "n_in": n_in.to_numpy(), "n_kept": kept.to_numpy(), "n_dropped": lost.to_numpy()}
    )
    unbalanced = counts[counts["n_in"] != counts["n_kept"] + counts["n_dropped"]]
    if len(unbalanced):
        raise AssertionError(f"audit of step {step!r} does not balance:\n{unbalanced.to_string(index=False)}")
    previous_audit = [audit_of(t) for t in inputs]
    previous_counts = [counts_of(t) for t in inputs]
    frames = [f for f in previous_audit + [dropped] if len(f)]
    return attach(
        output,
        audit=pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=AUDIT_COLUMNS),
        audit_counts=pd.concat([f for f in previous_counts + [counts] if len(f)], ignore_index=True),
    )
