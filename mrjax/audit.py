"""The audit trail: every variant a pipeline step drops is recorded with its reason.

Each step (read, select, clump, strength, harmonise, proxies …) returns its output table with
two frames in ``table.attrs``:

* ``attrs["audit"]`` — one row per dropped (or substituted) variant:
  ``step, trait, SNP, reason, detail`` (``detail`` e.g. ``"clumped by rs123"``);
* ``attrs["audit_counts"]`` — one row per step and trait: ``step, trait, n_in, n_kept,
  n_dropped``; ``n_in == n_kept + n_dropped`` always holds.

Both accumulate: a step's output carries the records of all the steps before it, so the
table that reaches ``mrjax.mr`` tells the whole story of its instruments.
"""

from __future__ import annotations

import pandas as pd

AUDIT_COLUMNS = ["step", "trait", "SNP", "reason", "detail"]
COUNT_COLUMNS = ["step", "trait", "n_in", "n_kept", "n_dropped"]

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


def audit_of(table: pd.DataFrame) -> pd.DataFrame:
    """The drop records carried by ``table`` (empty frame when there are none)."""
    return table.attrs.get("audit", pd.DataFrame(columns=AUDIT_COLUMNS))


def counts_of(table: pd.DataFrame) -> pd.DataFrame:
    """The per-step, per-trait counts carried by ``table``."""
    return table.attrs.get("audit_counts", pd.DataFrame(columns=COUNT_COLUMNS))


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
    output.attrs["audit"] = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=AUDIT_COLUMNS)
    frames = [f for f in previous_counts + [counts] if len(f)]
    output.attrs["audit_counts"] = pd.concat(frames, ignore_index=True)
    return output
