"""The many-outcome heat map: one cell per exposure × outcome with the IVW z, a dot on the
significant pairs, only exposures with a significant pair as rows."""

from __future__ import annotations

import numpy as np
import pandas as pd

from mrjax.report.heatmap import outcome_heatmap


def test_heatmap_cells_are_the_ivw_z_of_exposures_with_a_hit():
    rows = []
    for i, exposure in enumerate(["e1", "e2", "e3"]):
        for j, outcome in enumerate(["o1", "o2"]):
            b, se = 0.1 * (i + 1) * (1 if j == 0 else -1), 0.05
            q = 0.01 if exposure != "e3" else 0.5
            rows.append(dict(direction="forward", exposure=exposure, outcome=outcome, method_id="ivw", b=b, se=se,
                             pval=q / 10, qval_fdr=q))
    fig = outcome_heatmap(pd.DataFrame(rows))
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (2, 2)  # e3 has no significant pair
    assert sorted(np.round(np.abs(image).ravel(), 6)) == [2.0, 2.0, 4.0, 4.0]
    assert len(fig.axes[0].lines) == 4  # a dot per significant pair
