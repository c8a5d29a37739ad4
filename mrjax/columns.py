"""TwoSampleMR's column names, canonical inside mrjax, and their snake_case twins.

Host-side (pandas only), shared by the data layer and the tensor batches.
"""

from __future__ import annotations

import pandas as pd

# TwoSampleMR column names (canonical inside mrjax) and the snake_case twins users may give.
COLUMN_TWINS = {
    "beta.exposure": "beta_exposure",
    "se.exposure": "se_exposure",
    "beta.outcome": "beta_outcome",
    "se.outcome": "se_outcome",
    "id.exposure": "id_exposure",
    "id.outcome": "id_outcome",
    "eaf.exposure": "eaf_exposure",
    "eaf.outcome": "eaf_outcome",
    "samplesize.exposure": "samplesize_exposure",
    "samplesize.outcome": "samplesize_outcome",
    "pval.exposure": "pval_exposure",
    "pval.outcome": "pval_outcome",
    "effect_allele.exposure": "effect_allele_exposure",
    "other_allele.exposure": "other_allele_exposure",
    "effect_allele.outcome": "effect_allele_outcome",
    "other_allele.outcome": "other_allele_outcome",
    "units.exposure": "units_exposure",
    "units.outcome": "units_outcome",
}


def normalise_columns(df: pd.DataFrame) -> pd.DataFrame:
    """Rename snake_case twins (``beta_exposure`` …) to TwoSampleMR names (``beta.exposure``).

    A frame that carries both spellings of one column is ambiguous and is rejected.
    """
    renames = {}
    for dotted, snake in COLUMN_TWINS.items():
        if snake in df.columns:
            if dotted in df.columns:
                raise ValueError(f"columns {dotted!r} and {snake!r} both given; keep one of them")
            renames[snake] = dotted
    return df.rename(columns=renames) if renames else df
