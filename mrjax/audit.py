"""The audit trail: every variant a data step drops is recorded with its reason, as a value.

An :class:`Audit` holds three frames:

* ``drops`` — one row per dropped (or substituted) variant: ``step, trait, SNP, reason,
  detail`` (``detail`` e.g. ``"clumped by rs123"``);
* ``counts`` — one row per step and trait: ``step, trait, n_in, n_kept, n_dropped``;
  ``n_in == n_kept + n_dropped`` always holds (:meth:`Audit.check`);
* ``unlisted`` — drops counted but not listed one by one (``step, trait, reason, n``: the
  millions of "not significant" rows of a genome-wide file).

**The convention.** Every data step — ``read_gwas`` (and the per-format readers),
``select_instruments``, ``clump``, ``filter_weak``, ``substitute_proxies``, ``harmonise``,
``mv_instruments``, ``GWASStore.top_hits``/``table`` — takes ``audited=``:

* ``audited=True`` returns :class:`Audited` ``(table, audit)``: the step's table and its own
  records, after those of the inputs given as ``Audited`` (so the records accumulate
  explicitly, in order)::

      gwas = read_gwas("ldl.tsv.gz", audited=True)
      hits = select_instruments(gwas, p=5e-8, audited=True)      # read + select records
      dat, audit = harmonise(hits, read_gwas("cad.tsv.gz", audited=True), audited=True)
      audit.counts                                                # every step, balanced

* the default, ``audited=False``, returns the table alone, as R users expect of
  ``harmonise(exp, out)``. **Deprecated path (kept for one release):** that table also
  carries the records in ``table.attrs`` (accumulated from the inputs' ``attrs``), so
  :func:`audit_of`, :func:`counts_of` and ``mrjax.gwas.unlisted_of`` keep working on it;
  they also accept an :class:`Audited`. New code should use ``audited=True``: pandas
  operations copy or drop ``attrs`` unpredictably, a value does not.

Inside mrjax (the scan, ``mv_instruments``) records travel only as values; nothing reads
``attrs`` to find an audit except the deprecated path in this module.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple

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


def _stack(frames, columns: list[str]) -> pd.DataFrame:
    """The non-empty ``frames`` stacked in order (an empty frame with ``columns`` if none)."""
    nonempty = [f for f in frames if f is not None and len(f)]
    if not nonempty:
        return pd.DataFrame(columns=columns)
    return pd.concat(nonempty, ignore_index=True)


@dataclass(frozen=True, eq=False)
class Audit:
    """The records of one or more data steps (see the module docstring): ``drops``,
    ``counts`` and ``unlisted`` frames. Immutable: combining or selecting makes a new one;
    the frames are never changed in place."""

    drops: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=AUDIT_COLUMNS))
    counts: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=COUNT_COLUMNS))
    unlisted: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=UNLISTED_COLUMNS))

    @classmethod
    def empty(cls) -> "Audit":
        """No records."""
        return cls()

    @classmethod
    def combine(cls, *audits: "Audit | None") -> "Audit":
        """The records of ``audits`` stacked in the order given (``None`` is skipped)."""
        audits = [a for a in audits if a is not None]
        if len(audits) == 1:
            return audits[0]
        return cls(drops=_stack([a.drops for a in audits], AUDIT_COLUMNS),
                   counts=_stack([a.counts for a in audits], COUNT_COLUMNS),
                   unlisted=_stack([a.unlisted for a in audits], UNLISTED_COLUMNS))

    def __add__(self, other: "Audit") -> "Audit":
        if not isinstance(other, Audit):
            return NotImplemented
        return Audit.combine(self, other)

    def __bool__(self) -> bool:
        return bool(len(self.drops) or len(self.counts) or len(self.unlisted))

    def __repr__(self) -> str:
        steps = list(dict.fromkeys(self.counts["step"])) if len(self.counts) else []
        return f"Audit({len(self.drops)} drops, {len(self.counts)} counts, {len(self.unlisted)} unlisted; steps {steps})"

    def for_traits(self, traits) -> "Audit":
        """The records of ``traits`` (a name or a list of names) only."""
        wanted = {str(traits)} if isinstance(traits, str) else {str(t) for t in traits}
        return Audit(*(f[f["trait"].astype(str).isin(wanted)].reset_index(drop=True) if len(f) else f
                       for f in (self.drops, self.counts, self.unlisted)))

    def for_steps(self, steps) -> "Audit":
        """The records of ``steps`` (a name or a list of names) only."""
        wanted = {steps} if isinstance(steps, str) else set(steps)
        return Audit(*(f[f["step"].isin(wanted)].reset_index(drop=True) if len(f) else f
                       for f in (self.drops, self.counts, self.unlisted)))

    def replace(self, **frames: pd.DataFrame) -> "Audit":
        """This audit with some frames replaced (``drops=``, ``counts=``, ``unlisted=``)."""
        return Audit(**{"drops": self.drops, "counts": self.counts, "unlisted": self.unlisted, **frames})

    def check(self) -> "Audit":
        """Raise ``AssertionError`` naming the step and traits where ``n_in != n_kept +
        n_dropped`` (a step that loses a variant without a reason is a bug); returns self."""
        counts = self.counts
        if len(counts):
            unbalanced = counts[counts["n_in"] != counts["n_kept"] + counts["n_dropped"]]
            if len(unbalanced):
                steps = list(dict.fromkeys(unbalanced["step"]))
                raise AssertionError(f"audit of step {steps[0]!r} does not balance:\n"
                                     f"{unbalanced.to_string(index=False)}")
        return self


class Audited(NamedTuple):
    """What a data step returns with ``audited=True``: its ``table`` and its ``audit``
    (``table, audit = step(..., audited=True)``). Give it to the next step as its input to
    carry the records forward. It is a pair: ``len(result)`` is 2, the rows are
    ``len(result.table)``."""

    table: pd.DataFrame
    audit: Audit


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


def kept_per_trait(output: pd.DataFrame, traits: pd.Index, trait_column: str = "trait") -> pd.Series:
    """Rows of ``output`` per trait of ``traits`` (a table without a trait column holds the
    first trait)."""
    if trait_column in output.columns:
        kept = output.groupby(trait_column, sort=False).size()
    else:
        kept = pd.Series(len(output), index=traits[:1])
    return kept.reindex(traits, fill_value=0)


def step_audit(step: str, n_in, kept: pd.Series, listed: pd.DataFrame | None = None,
               unlisted=None, unlisted_reason: str = "not significant") -> Audit:
    """The records of one step: ``n_in`` maps trait -> variants that entered it, ``kept``
    trait -> variants kept (:func:`kept_per_trait`), ``listed`` holds its drop rows and
    ``unlisted`` maps trait -> variants dropped for ``unlisted_reason`` without a row each
    (counted in ``n_in`` and ``n_dropped``). Raises ``AssertionError`` if the counts do not
    balance."""
    n_in = pd.Series(n_in, dtype="int64")
    extra = (pd.Series(0, index=n_in.index, dtype="int64") if unlisted is None
             else pd.Series(unlisted, dtype="int64").reindex(n_in.index, fill_value=0))
    listed = listed if listed is not None else pd.DataFrame(columns=AUDIT_COLUMNS)
    lost = listed.groupby("trait", sort=False).size().reindex(n_in.index, fill_value=0)
    kept = kept.reindex(n_in.index, fill_value=0)
    counts = pd.DataFrame({"step": step, "trait": n_in.index, "n_in": n_in.to_numpy(), "n_kept": kept.to_numpy(),
                           "n_dropped": lost.to_numpy() + extra.to_numpy()})
    mine = pd.DataFrame({"step": step, "trait": n_in.index, "reason": unlisted_reason, "n": extra.to_numpy()})
    return Audit(drops=listed, counts=counts, unlisted=mine[mine["n"] > 0].reset_index(drop=True)).check()


# ---------------------------------------------------------------------------- the steps' two forms


def unwrap(table, audited: bool) -> tuple[pd.DataFrame, Audit]:
    """A step's input as (table, upstream records): an :class:`Audited` gives its audit; a
    plain table gives none, or — the deprecated path, ``audited=False`` — the records in its
    ``attrs``."""
    if isinstance(table, Audited):
        return table.table, table.audit
    return table, (Audit.empty() if audited else from_attrs(table))


def deliver(result: Audited, audited: bool):
    """A step's answer in the form asked for: the :class:`Audited` value, or (deprecated) its
    table with the records attached to ``attrs``."""
    if audited:
        result.table.attrs = {k: v for k, v in result.table.attrs.items() if k not in CARRIED}
        return result
    return to_attrs(result.table, result.audit)


# ---------------------------------------------------------------------------- deprecated: records in attrs


class Records(dict):
    """A frame of audit records as held in ``DataFrame.attrs`` by the deprecated path
    (``.frame``; not modified in place).

    pandas compares attrs with ``==`` when it concatenates or merges tables (a bare
    DataFrame there raises "truth value of a DataFrame is ambiguous"), deep-copies them on
    every operation, and writes them into parquet metadata as JSON (a DataFrame fails).
    ``Records`` compares by content and returns a bool, is shared rather than copied, and
    serialises as its row count (``{"mrjax_records": n}``).
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


CARRIED = {"audit": AUDIT_COLUMNS, "audit_counts": COUNT_COLUMNS, "audit_unlisted": UNLISTED_COLUMNS}


def records_of(table: pd.DataFrame, key: str, columns: list[str]) -> pd.DataFrame:
    """The frame held under ``table.attrs[key]`` (an empty one with ``columns`` if none)."""
    held = table.attrs.get(key)
    if isinstance(held, Records):
        return held.frame
    if isinstance(held, pd.DataFrame):  # set by hand
        return held
    return pd.DataFrame(columns=columns)


def from_attrs(table: pd.DataFrame) -> Audit:
    """The records a table carries in ``attrs`` (deprecated path)."""
    return Audit(*(records_of(table, key, columns) for key, columns in CARRIED.items()))


def to_attrs(table: pd.DataFrame, records: Audit) -> pd.DataFrame:
    """Hold ``records`` in ``table.attrs`` (deprecated path); returns ``table``."""
    table.attrs["audit"] = Records(records.drops)
    table.attrs["audit_counts"] = Records(records.counts)
    table.attrs["audit_unlisted"] = Records(records.unlisted)
    return table


def audit_of(table) -> pd.DataFrame:
    """The drop records of an :class:`Audited` or (deprecated) carried by a table's
    ``attrs`` (empty frame when there are none)."""
    return table.audit.drops if isinstance(table, Audited) else records_of(table, "audit", AUDIT_COLUMNS)


def counts_of(table) -> pd.DataFrame:
    """The per-step, per-trait counts of an :class:`Audited` or (deprecated) a table's ``attrs``."""
    return table.audit.counts if isinstance(table, Audited) else records_of(table, "audit_counts", COUNT_COLUMNS)


def unlisted_of(table) -> pd.DataFrame:
    """Drops that were counted but not listed per variant: ``step, trait, reason, n``."""
    return table.audit.unlisted if isinstance(table, Audited) else records_of(table, "audit_unlisted", UNLISTED_COLUMNS)


def record(output: pd.DataFrame, step: str, n_in, dropped: pd.DataFrame | None = None, *,
           inputs: tuple[pd.DataFrame, ...] = (), trait_column: str = "trait") -> pd.DataFrame:
    """Deprecated: attach one step's records (after those of ``inputs``) to ``output``'s
    ``attrs``; use :func:`step_audit` and :class:`Audit` values."""
    n_in = pd.Series(n_in, dtype="int64")
    mine = step_audit(step, n_in, kept_per_trait(output, n_in.index, trait_column), dropped)
    return to_attrs(output, Audit.combine(*(from_attrs(t) for t in inputs), mine))
