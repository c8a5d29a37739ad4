"""The five golden datasets with ``mendelianrandomization`` / ``mr_raps`` sections, padded into
one width-128 bucket (one compiled shape for every robust-estimator test), and lookups."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from mrjax.batch import Bucket, TraitBatch, from_frame

from _golden_data import GOLDEN_SETS, load_golden

NAMES = list(GOLDEN_SETS)
WIDTH = 128


@dataclass(frozen=True)
class RobustGolden:
    golden: dict
    batch: TraitBatch
    bucket: Bucket

    def row(self, name: str) -> int:
        """Row of dataset ``name`` in the bucket."""
        return int(np.nonzero(self.batch.traits["exposure"].to_numpy() == name)[0][0])

    def entry(self, name: str, section: str, label: str) -> dict:
        return self.golden[name][section][label]

    def cml_n(self) -> np.ndarray:
        """``[traits]`` sample size each golden cML call used (``dataset.n_for_cML``; NaN where
        the dataset has no cML entry)."""
        n = [self.golden[name]["dataset"].get("n_for_cML", np.nan) for name in self.batch.traits["exposure"]]
        return np.asarray(n, dtype=float)


def robust_golden(shared_data) -> RobustGolden:
    loaded = {name: load_golden(shared_data, name) for name in NAMES}
    frames = []
    for name, (_, frame) in loaded.items():
        frames.append(frame[["SNP", "beta.exposure", "se.exposure", "beta.outcome", "se.outcome", "exposure", "outcome"]])
    batch = from_frame(pd.concat(frames, ignore_index=True))
    bucket = batch.bucket(np.arange(batch.n_traits), width=WIDTH)
    return RobustGolden(golden={k: v[0] for k, v in loaded.items()}, batch=batch, bucket=bucket)


def value(entry: dict, field: str) -> float:
    v = entry[field]
    return np.nan if v is None else float(v)
