"""Simulation studies of MR estimators: scenarios, on-device summary statistics, Monte-Carlo summaries.

A :class:`Scenario` describes how two-sample summary statistics arise; :func:`draw_instruments`
draws them on the device, one replicate per PRNG key, straight into padded
:class:`~mrjax.batch.Instruments`; :func:`simulate` runs the requested estimators on every
replicate (replicates are traits for :func:`mrjax.engine.run_methods`) and reports per method
the mean estimate, bias, empirical SD, mean reported SE, 95% CI coverage and rejection rate,
each with its Monte-Carlo standard error (Morris, White & Crowther 2019, Stat Med 38:2074,
Table 6).

Generative model of one replicate (all draws per instrument ``j = 1..K``; two independent
samples, so exposure and outcome errors are independent):

* effect-allele frequency ``p_j ~ U(0.05, 0.5)``, genotype variance ``v_j = 2 p_j (1 − p_j)``;
* standard errors of per-allele effects on a unit-variance trait: ``sx_j = 1/sqrt(N_x v_j)``,
  ``sy_j = 1/sqrt(N_y' v_j)`` with ``N_y' = N_y`` (continuous outcome) or
  ``N_y φ (1 − φ)`` (binary outcome, log odds ratio, case fraction φ);
* SNP–exposure effect ``γ_j = sqrt((F̄ − 1) u_j) · sx_j`` with heavy-tailed strength shares
  ``u_j ~ Exp(1)``, so that ``E[(bx/sx)^2] = 1 + (F̄ − 1) u_j`` averages to the mean F ``F̄``;
* direct (pleiotropic) effects ``α_j`` on the first ``round(K · pleiotropy_fraction)``
  instruments: *directional* ``α_j = μ + σ (ρ z_j + sqrt(1 − ρ²) e_j)`` where ``z_j`` is
  ``γ_j`` standardised over the replicate's instruments, so ``ρ = inside_correlation`` is the
  correlation of α with γ that a SNP→confounder effect creates (InSIDE holds at ρ = 0;
  Bowden et al. 2016, Genet Epidemiol 40:304); *balanced* ``α_j = ±(μ + σ e_j)`` with a
  random sign, mean zero;
* outliers: the next ``round(K · outlier_fraction)`` instruments get an extra direct effect of
  ``outlier_size · sy_j`` (Verbanck et al. 2018, Nat Genet 50:693);
* ``bx_j = γ_j + sx_j ε_j`` and ``by_j = θ γ_j + α_j + sy_j η_j`` with standard normal ε, η.
  With ``winners_curse`` the instruments are selected in the exposure sample itself:
  ``ε_j`` is drawn conditional on ``|bx_j / sx_j| > Φ⁻¹(1 − selection_pval / 2)``, which
  inflates ``|bx|`` exactly as genome-wide selection does.

Randomness: replicate ``r`` uses ``fold_in(key(seed), r)``, split into a data key and a method
key, so every random draw depends only on (seed, r) — never on the chunk size or the device.
Summaries agree across chunk sizes to floating-point rounding: XLA compiles each chunk shape
separately and may order a reduction or fuse a multiply-add differently, which moves the last
bit of a replicate's estimate (relative differences ~1e-16; counts such as coverage are
unaffected unless an estimate sits exactly on a CI bound).
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from dataclasses import dataclass
from statistics import NormalDist
from typing import Callable, Iterable, Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.scipy.stats import norm

from mrjax import batch as batching
from mrjax import engine
from mrjax.batch import PAD_VALUES, Instruments, as_key, bucket_width
from mrjax.estimators.common import Params
from mrjax.methods import METHODS, resolve

DIRECTIONS = ("directional", "balanced")
EAF_RANGE = (0.05, 0.5)


# --------------------------------------------------------------------------------------------
# Scenario
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Scenario:
    """One simulation scenario for two-sample summary-data MR (see the module docstring for the
    generative model). Exactly one of ``mean_f`` and ``r2`` sets instrument strength.

    Fields:
      n_instruments: number of instruments K (>= 1).
      theta: true causal effect of the exposure on the outcome (log OR for a binary outcome).
      mean_f: mean F statistic of the instruments in the exposure sample (> 1).
      r2: alternatively, the exposure variance explained by all K instruments (0 < r2 < 1);
        converted by ``F̄ = (N_x − K − 1)/K · r2/(1 − r2)``.
      n_exposure, n_outcome: sample sizes of the two GWAS.
      pleiotropy_fraction: share of instruments with a direct effect α on the outcome.
      pleiotropy_mean, pleiotropy_sd: μ and σ of α (outcome units per effect allele).
      direction: ``"directional"`` (α = μ + σ·noise) or ``"balanced"`` (random sign).
      inside_correlation: correlation ρ of α with γ (through a confounder); 0 = InSIDE holds.
      outlier_fraction: share of instruments that are gross outliers.
      outlier_size: outliers' extra direct effect, in outcome standard errors.
      binary_outcome, case_fraction: outcome is a case/control trait with this case share.
      winners_curse: select instruments in the exposure sample (True) or in an independent
        discovery sample (False, no winner's curse).
      selection_pval: genome-wide selection threshold used when ``winners_curse`` is True.
      name: label used in result tables (presets fill it in).
    """

    n_instruments: int
    theta: float = 0.0
    mean_f: float | None = None
    r2: float | None = None
    n_exposure: int = 100_000
    n_outcome: int = 100_000
    pleiotropy_fraction: float = 0.0
    pleiotropy_mean: float = 0.0
    pleiotropy_sd: float = 0.0
    direction: str = "directional"
    inside_correlation: float = 0.0
    outlier_fraction: float = 0.0
    outlier_size: float = 10.0
    binary_outcome: bool = False
    case_fraction: float = 0.5
    winners_curse: bool = False
    selection_pval: float = 5e-8
    name: str = ""

    def __post_init__(self) -> None:
        def fail(field: str, why: str) -> None:
            raise ValueError(f"Scenario field {field!r}: {why} (got {getattr(self, field)!r})")

        def number(field: str, integer: bool = False) -> float:
            value = getattr(self, field)
            kinds = (int, np.integer) if integer else (int, float, np.integer, np.floating)
            if isinstance(value, bool) or not isinstance(value, kinds):
                fail(field, "must be an integer" if integer else "must be a number")
            if not math.isfinite(float(value)):
                fail(field, "must be finite")
            return float(value)

        if number("n_instruments", integer=True) < 1:
            fail("n_instruments", "must be >= 1")
        for field in ("n_exposure", "n_outcome"):
            if number(field, integer=True) < 10:
                fail(field, "must be a sample size >= 10")
        number("theta")
        if (self.mean_f is None) == (self.r2 is None):
            raise ValueError(
                "Scenario fields 'mean_f' and 'r2': give exactly one of them to set instrument strength "
                f"(got mean_f={self.mean_f!r}, r2={self.r2!r})"
            )
        if self.mean_f is not None and number("mean_f") <= 1:
            fail("mean_f", "must be > 1 (a mean F of 1 means the instruments have no effect)")
        if self.r2 is not None:
            if not 0 < number("r2") < 1:
                fail("r2", "must lie strictly between 0 and 1")
            if self.n_exposure <= self.n_instruments + 1:
                fail("n_exposure", "must exceed n_instruments + 1 to convert r2 to a mean F")
            if self.implied_mean_f <= 1:
                fail("r2", f"implies a mean F of {self.implied_mean_f:.3g} <= 1")
        for field in ("pleiotropy_fraction", "outlier_fraction"):
            if not 0 <= number(field) <= 1:
                fail(field, "must lie in [0, 1]")
        if self.n_pleiotropic + self.n_outliers > self.n_instruments:
            raise ValueError(
                "Scenario fields 'pleiotropy_fraction' and 'outlier_fraction': together they make "
                f"{self.n_pleiotropic} + {self.n_outliers} instruments, more than n_instruments={self.n_instruments}"
            )
        number("pleiotropy_mean")
        if number("pleiotropy_sd") < 0:
            fail("pleiotropy_sd", "must be >= 0")
        if self.direction not in DIRECTIONS:
            fail("direction", f"must be one of {', '.join(DIRECTIONS)}")
        if not -1 <= number("inside_correlation") <= 1:
            fail("inside_correlation", "must lie in [-1, 1]")
        if self.direction == "balanced" and self.inside_correlation != 0:
            fail("inside_correlation", "must be 0 with direction='balanced' (random signs carry no correlation with γ)")
        number("outlier_size")
        for field in ("binary_outcome", "winners_curse"):
            if not isinstance(getattr(self, field), (bool, np.bool_)):
                fail(field, "must be true or false")
        if not 0 < number("case_fraction") < 1:
            fail("case_fraction", "must lie strictly between 0 and 1")
        if not 0 < number("selection_pval") < 1:
            fail("selection_pval", "must lie strictly between 0 and 1")
        if not isinstance(self.name, str):
            fail("name", "must be a string")

    @property
    def implied_mean_f(self) -> float:
        """Mean F of the instruments (``mean_f``, or converted from ``r2``)."""
        if self.mean_f is not None:
            return float(self.mean_f)
        k = self.n_instruments
        return (self.n_exposure - k - 1) / k * self.r2 / (1 - self.r2)

    @property
    def n_pleiotropic(self) -> int:
        """Number of instruments with a direct effect: ``round(K · pleiotropy_fraction)``."""
        return int(round(self.n_instruments * self.pleiotropy_fraction))

    @property
    def n_outliers(self) -> int:
        """Number of outlying instruments: ``round(K · outlier_fraction)``."""
        return int(round(self.n_instruments * self.outlier_fraction))

    @property
    def effective_n_outcome(self) -> float:
        """``N_y`` or, for a binary outcome, ``N_y φ (1 − φ)`` (the log-OR information)."""
        if self.binary_outcome:
            return self.n_outcome * self.case_fraction * (1 - self.case_fraction)
        return float(self.n_outcome)

    @property
    def label(self) -> str:
        """``name`` or a compact description of the scenario."""
        return self.name or f"K={self.n_instruments}, theta={self.theta:g}, F={self.implied_mean_f:.3g}"

    def replace(self, **changes) -> "Scenario":
        """A copy with some fields changed (validated again)."""
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict:
        """The fields as a plain dict (the inverse of :func:`as_scenario`)."""
        return dataclasses.asdict(self)


SCENARIO_FIELDS = tuple(f.name for f in dataclasses.fields(Scenario))

# Well-known designs, scaled to summary data: K = 25 instruments with mean F 50 in two samples
# of 100,000 (θ = 0.1 on a standardised exposure). Pleiotropic effects ~0.005 per allele are of
# the order of γ (~0.01–0.04), as in the cited simulations.
PRESETS: dict[str, Scenario] = {
    # All instruments valid: the reference case for type-I error and coverage
    # (Bowden et al. 2015, Int J Epidemiol 44:512; scenario 1 of Hartwig et al. 2017, Int J Epidemiol 46:1985).
    "valid_ivs": Scenario(n_instruments=25, theta=0.1, mean_f=50, name="valid_ivs"),
    # 30% invalid with mean-zero pleiotropy: IVW stays unbiased, less precise
    # (Bowden et al. 2016, Genet Epidemiol 40:304, "balanced pleiotropy"; Hartwig 2017 scenario 2).
    "balanced_pleiotropy": Scenario(
        n_instruments=25, theta=0.1, mean_f=50, pleiotropy_fraction=0.3, pleiotropy_mean=0.0,
        pleiotropy_sd=0.01, name="balanced_pleiotropy",
    ),
    # 30% invalid, positive pleiotropy independent of γ (InSIDE holds): IVW biased, MR-Egger
    # consistent (Bowden et al. 2015 scenario 2; Hartwig 2017 scenario 3).
    "directional_pleiotropy": Scenario(
        n_instruments=25, theta=0.1, mean_f=50, pleiotropy_fraction=0.3, pleiotropy_mean=0.01,
        pleiotropy_sd=0.005, name="directional_pleiotropy",
    ),
    # Pleiotropy through a confounder, correlated with γ: InSIDE violated, MR-Egger biased,
    # weighted median/mode robust with < 50% invalid (Bowden et al. 2016; Hartwig 2017 scenario 4).
    "inside_violated": Scenario(
        n_instruments=25, theta=0.1, mean_f=50, pleiotropy_fraction=0.3, pleiotropy_mean=0.01,
        pleiotropy_sd=0.005, inside_correlation=0.6, name="inside_violated",
    ),
    # Weak instruments selected in the exposure sample: bias towards the confounded
    # association in one sample, towards the null in two (Bowden et al. 2016, Int J Epidemiol
    # 45:1961, on I²_GX and weak instruments in MR-Egger).
    "weak_instruments": Scenario(
        n_instruments=25, theta=0.1, mean_f=10, winners_curse=True, name="weak_instruments",
    ),
    # 10% gross outliers (20 SE): the setting MR-PRESSO targets (Verbanck et al. 2018, Nat Genet 50:693).
    "outliers": Scenario(
        n_instruments=25, theta=0.1, mean_f=50, outlier_fraction=0.12, outlier_size=20.0, name="outliers",
    ),
}


def as_scenario(spec: Scenario | Mapping | str) -> Scenario:
    """A :class:`Scenario` from a Scenario, a preset name, or a dict of fields.

    A dict may start from a preset with the key ``preset`` and override any field; unknown
    keys are rejected with their names.
    """
    if isinstance(spec, Scenario):
        return spec
    if isinstance(spec, str):
        if spec not in PRESETS:
            raise ValueError(f"unknown scenario preset {spec!r}; presets: {', '.join(PRESETS)}")
        return PRESETS[spec]
    if isinstance(spec, Mapping):
        fields = dict(spec)
        base = fields.pop("preset", None)
        unknown = sorted(set(fields) - set(SCENARIO_FIELDS))
        if unknown:
            raise ValueError(f"unknown Scenario field(s) {', '.join(map(repr, unknown))}; fields: {', '.join(SCENARIO_FIELDS)}")
        if base is not None:
            start = as_scenario(str(base))
            if ("mean_f" in fields) != ("r2" in fields):  # switching the strength parameter
                fields.setdefault("mean_f", None)
                fields.setdefault("r2", None)
            if "name" not in fields and fields:
                changed = ", ".join(f"{k}={v}" for k, v in fields.items() if v is not None)
                fields["name"] = f"{base} ({changed})"
            return dataclasses.replace(start, **fields)
        if "n_instruments" not in fields:
            raise ValueError("Scenario field 'n_instruments' is required")
        return Scenario(**fields)
    raise TypeError(f"a scenario must be a Scenario, a preset name or a dict, not {type(spec).__name__}")


# --------------------------------------------------------------------------------------------
# On-device generator
# --------------------------------------------------------------------------------------------


def _dynamic(scenario: Scenario, dtype=jnp.float64) -> dict:
    """The scenario's numbers as traced arrays (changing them does not recompile)."""
    engine.ensure_x64()
    values = {
        "n_instruments": scenario.n_instruments,
        "n_pleiotropic": scenario.n_pleiotropic,
        "n_outliers": scenario.n_outliers,
    }
    ints = {k: jnp.asarray(v, dtype=jnp.int32) for k, v in values.items()}
    floats = {
        "theta": scenario.theta,
        "noncentrality": scenario.implied_mean_f - 1.0,
        "n_exposure": float(scenario.n_exposure),
        "n_outcome_eff": scenario.effective_n_outcome,
        "pleiotropy_mean": scenario.pleiotropy_mean,
        "pleiotropy_sd": scenario.pleiotropy_sd,
        "inside_correlation": scenario.inside_correlation,
        "outlier_size": scenario.outlier_size,
        "selection_z": -NormalDist().inv_cdf(scenario.selection_pval / 2.0),
        "balanced": float(scenario.direction == "balanced"),
    }
    return ints | {k: jnp.asarray(v, dtype=dtype) for k, v in floats.items()}


def _selected_noise(key, mean_z, threshold):
    """Standard-normal ``ε`` conditioned on ``|mean_z + ε| > threshold`` (elementwise).

    The two tails have masses ``Φ(mean_z − c)`` (upper) and ``Φ(−c − mean_z)`` (lower); a tail
    is chosen in proportion and ε drawn from the normal truncated to it.
    """
    k_tail, k_up, k_low = jax.random.split(key, 3)
    log_up = norm.logcdf(mean_z - threshold)
    log_low = norm.logcdf(-threshold - mean_z)
    p_up = jnp.exp(log_up - jnp.logaddexp(log_up, log_low))
    upper = jax.random.uniform(k_tail, mean_z.shape, dtype=mean_z.dtype) < p_up
    eps_up = jax.random.truncated_normal(k_up, threshold - mean_z, jnp.inf, mean_z.shape, dtype=mean_z.dtype)
    eps_low = jax.random.truncated_normal(k_low, -jnp.inf, -threshold - mean_z, mean_z.shape, dtype=mean_z.dtype)
    return jnp.where(upper, eps_up, eps_low)


def _draw_one(key, dyn: dict, width: int, winners_curse: bool) -> Instruments:
    """One replicate's summary statistics ``[width]`` (see the module docstring)."""
    dtype = dyn["theta"].dtype
    k_eaf, k_share, k_alpha, k_sign, k_x, k_y = jax.random.split(key, 6)
    slot = jnp.arange(width)
    mask = slot < dyn["n_instruments"]
    pleiotropic = mask & (slot < dyn["n_pleiotropic"])
    outlier = mask & (slot >= dyn["n_pleiotropic"]) & (slot < dyn["n_pleiotropic"] + dyn["n_outliers"])

    eaf = jax.random.uniform(k_eaf, (width,), dtype=dtype, minval=EAF_RANGE[0], maxval=EAF_RANGE[1])
    var_g = 2.0 * eaf * (1.0 - eaf)
    sx = 1.0 / jnp.sqrt(dyn["n_exposure"] * var_g)
    sy = 1.0 / jnp.sqrt(dyn["n_outcome_eff"] * var_g)
    share = jax.random.exponential(k_share, (width,), dtype=dtype)
    gamma = jnp.sqrt(dyn["noncentrality"] * share) * sx

    n = jnp.sum(mask)
    gamma_mean = jnp.sum(jnp.where(mask, gamma, 0.0)) / n
    gamma_dev = jnp.where(mask, gamma - gamma_mean, 0.0)
    gamma_sd = jnp.sqrt(jnp.sum(gamma_dev**2) / jnp.maximum(n - 1, 1))
    z_gamma = jnp.where(gamma_sd > 0, gamma_dev / jnp.where(gamma_sd > 0, gamma_sd, 1.0), 0.0)
    rho = dyn["inside_correlation"]
    noise = jax.random.normal(k_alpha, (width,), dtype=dtype)
    directional = dyn["pleiotropy_mean"] + dyn["pleiotropy_sd"] * (rho * z_gamma + jnp.sqrt(1.0 - rho * rho) * noise)
    sign = jnp.where(jax.random.bernoulli(k_sign, 0.5, (width,)), 1.0, -1.0)
    balanced = sign * (dyn["pleiotropy_mean"] + dyn["pleiotropy_sd"] * noise)
    alpha = jnp.where(dyn["balanced"] > 0, balanced, directional)
    direct = jnp.where(pleiotropic, alpha, 0.0) + jnp.where(outlier, dyn["outlier_size"] * sy, 0.0)

    if winners_curse:
        eps_x = _selected_noise(k_x, gamma / sx, dyn["selection_z"])
    else:
        eps_x = jax.random.normal(k_x, (width,), dtype=dtype)
    bx = gamma + sx * eps_x
    by = dyn["theta"] * gamma + direct + sy * jax.random.normal(k_y, (width,), dtype=dtype)
    return Instruments(
        bx=jnp.where(mask, bx, PAD_VALUES["bx"]),
        sx=jnp.where(mask, sx, PAD_VALUES["sx"]),
        by=jnp.where(mask, by, PAD_VALUES["by"]),
        sy=jnp.where(mask, sy, PAD_VALUES["sy"]),
        mask=mask,
    )


def _key_pair(replicate, key):
    """Replicate ``r``'s data and method keys: ``split(fold_in(key, r))``."""
    return jax.random.split(jax.random.fold_in(key, replicate))


def replicate_keys(seed_or_key, indices) -> tuple[jax.Array, jax.Array]:
    """Data and method keys of the given replicates: ``split(fold_in(key(seed), r))``."""
    key = as_key(seed_or_key)
    pairs = engine.map_traits(_key_pair, (np.asarray(indices, dtype=np.uint32),), (key,))
    return pairs[:, 0], pairs[:, 1]


def draw_instruments(scenario: Scenario | Mapping | str, n_replicates: int | None = None, seed=0, *,
                     replicates: Sequence[int] | None = None, width: int | None = None) -> Instruments:
    """Summary statistics of replicates of ``scenario`` as padded ``Instruments [R, width]``.

    Replicate ``r`` is drawn from the data half of ``split(fold_in(key(seed), r))``; give
    either ``n_replicates`` (replicates 0..R−1) or explicit ``replicates`` indices. ``width``
    defaults to the smallest power of two holding ``n_instruments`` (at least 4).
    """
    scenario = as_scenario(scenario)
    if replicates is None:
        if n_replicates is None or n_replicates < 1:
            raise ValueError(f"n_replicates must be >= 1 (got {n_replicates!r})")
        replicates = np.arange(n_replicates)
    width = width or bucket_width(scenario.n_instruments)
    if width < scenario.n_instruments:
        raise ValueError(f"width {width} is smaller than n_instruments {scenario.n_instruments}")
    replicates = np.asarray(replicates, dtype=np.int64)
    n = len(replicates)
    padded = np.concatenate([replicates, np.full(bucket_width(n, floor=8) - n, replicates[-1])])  # reuse compiled shapes
    data_keys, _ = replicate_keys(seed, padded)
    drawn = engine.map_traits(_draw_one, (data_keys,), (_dynamic(scenario),), width=width,
                              winners_curse=bool(scenario.winners_curse))
    return jax.tree_util.tree_map(lambda a: a[:n], drawn)


# --------------------------------------------------------------------------------------------
# Running the estimators on replicates
# --------------------------------------------------------------------------------------------


# The default panel of simulation studies (issue 6): IVW, MR-Egger, weighted median, weighted mode.
SIMULATION_METHODS = ("ivw", "egger_regression", "weighted_median", "weighted_mode")


def resolve_methods(methods=None) -> tuple[str, ...]:
    """Validated method ids (``mrjax.methods.resolve``); ``None`` gives :data:`SIMULATION_METHODS`,
    a string may list several ids separated by commas."""
    if isinstance(methods, str):
        methods = [m.strip() for m in methods.split(",") if m.strip()]
    return resolve(methods, default=SIMULATION_METHODS)


def default_chunk_size(width: int, methods: Sequence[str], params: Params) -> int:
    """Replicates per device call: a power of two keeping one chunk's largest array near
    :data:`mrjax.batch.MEMORY_BUDGET_ELEMENTS` float64 slots (bootstrap methods hold ``n_boot``
    draws per instrument and replicate)."""
    stochastic = any(METHODS[m].stochastic for m in methods)
    per_replicate = width * (max(int(params.n_boot), 16) if stochastic else 16)
    size = max(1, batching.MEMORY_BUDGET_ELEMENTS // per_replicate)
    return 1 << min(16, size.bit_length() - 1)


def replicate_estimates(data_key, method_key, dyn, *, width: int, winners_curse: bool, methods: tuple[str, ...],
                        params: Params) -> dict:
    """One replicate drawn (:func:`_draw_one`) and estimated: ``{method: (b, se, pval)}``."""
    t = _draw_one(data_key, dyn, width, winners_curse)
    dtype = t.bx.dtype
    results = engine.trait_methods(t, method_key, jnp.asarray(params.phi, dtype), jnp.asarray(params.penk, dtype),
                                   methods=methods, n_boot=int(params.n_boot))
    return {m: (results[m].b, results[m].se, results[m].pval) for m in methods}


class _Moments:
    """Exact-order accumulator of per-replicate values for one method.

    Values are summed in fixed blocks of ``BLOCK`` consecutive replicates (numpy's pairwise
    sum of the same block is the same whatever chunk delivered it) and the block sums combined
    with ``math.fsum`` (correctly rounded), so the host-side totals do not depend on how the
    values were split into chunks.
    """

    BLOCK = 4096
    NAMES = ("n_b", "n_se", "dev", "dev2", "se", "se2", "covered", "rejected", "n_p")

    def __init__(self) -> None:
        self.pending: list[np.ndarray] = []
        self.pending_len = 0
        self.blocks: list[np.ndarray] = []

    @staticmethod
    def _columns(b, se, p, theta, z, alpha) -> np.ndarray:
        ok_b = np.isfinite(b)
        ok_se = ok_b & np.isfinite(se)
        ok_p = np.isfinite(p)
        dev = np.where(ok_b, b - theta, 0.0)
        se0 = np.where(ok_se, se, 0.0)
        covered = ok_se & (np.abs(np.where(ok_se, b, theta) - theta) <= z * se0)
        return np.stack([
            ok_b, ok_se, dev, dev * dev, se0, se0 * se0, covered, ok_p & (np.where(ok_p, p, 1.0) < alpha), ok_p,
        ]).astype(np.float64)

    def add(self, b, se, p, theta, z, alpha) -> None:
        self.pending.append(self._columns(b, se, p, theta, z, alpha))
        self.pending_len += len(b)
        if self.pending_len >= self.BLOCK:
            data = np.concatenate(self.pending, axis=1)
            full = (data.shape[1] // self.BLOCK) * self.BLOCK
            for start in range(0, full, self.BLOCK):
                self.blocks.append(np.ascontiguousarray(data[:, start : start + self.BLOCK]).sum(axis=1))
            rest = data[:, full:]
            self.pending, self.pending_len = ([rest] if rest.shape[1] else []), rest.shape[1]

    def totals(self) -> dict[str, float]:
        parts = list(self.blocks)
        if self.pending:
            parts.append(np.concatenate(self.pending, axis=1).sum(axis=1))
        stacked = np.stack(parts) if parts else np.zeros((1, len(self.NAMES)))
        return {name: math.fsum(stacked[:, i]) for i, name in enumerate(self.NAMES)}


def summarise_moments(totals: Mapping[str, float], theta: float) -> dict[str, float]:
    """Performance measures and Monte-Carlo SEs from accumulated sums (Morris, White &
    Crowther 2019, Stat Med 38:2074, Table 6), over the replicates with a finite estimate:

    ``bias = mean(b) − θ``, MCSE ``emp_sd/√n``; ``emp_sd = sd(b)`` (n − 1), MCSE
    ``emp_sd/√(2(n−1))``; ``mean_se`` = mean reported SE, MCSE ``sd(se)/√n``; coverage of
    ``b ± z₀.₉₇₅·se``, MCSE ``√(c(1−c)/n)``; rejection rate ``P(p < α)``, MCSE ``√(r(1−r)/n)``.
    """
    n, n_se, n_p = totals["n_b"], totals["n_se"], totals["n_p"]
    nan = float("nan")
    bias = totals["dev"] / n if n > 0 else nan
    var_b = (totals["dev2"] - n * bias * bias) / (n - 1) if n > 1 else nan
    emp_sd = math.sqrt(max(var_b, 0.0)) if n > 1 else nan
    mean_se = totals["se"] / n_se if n_se > 0 else nan
    var_se = (totals["se2"] - n_se * mean_se * mean_se) / (n_se - 1) if n_se > 1 else nan
    coverage = totals["covered"] / n_se if n_se > 0 else nan
    rejection = totals["rejected"] / n_p if n_p > 0 else nan
    return {
        "n_estimated": int(n),
        "mean_b": theta + bias,
        "mean_b_mcse": emp_sd / math.sqrt(n) if n > 1 else nan,
        "bias": bias,
        "bias_mcse": emp_sd / math.sqrt(n) if n > 1 else nan,
        "emp_sd": emp_sd,
        "emp_sd_mcse": emp_sd / math.sqrt(2 * (n - 1)) if n > 1 else nan,
        "mean_se": mean_se,
        "mean_se_mcse": math.sqrt(max(var_se, 0.0) / n_se) if n_se > 1 else nan,
        "coverage": coverage,
        "coverage_mcse": math.sqrt(coverage * (1 - coverage) / n_se) if n_se > 0 else nan,
        "rejection_rate": rejection,
        "rejection_rate_mcse": math.sqrt(rejection * (1 - rejection) / n_p) if n_p > 0 else nan,
    }


RESULT_COLUMNS = [
    "method_id", "n_replicates", "n_estimated",
    "mean_b", "mean_b_mcse", "bias", "bias_mcse", "emp_sd", "emp_sd_mcse",
    "mean_se", "mean_se_mcse", "coverage", "coverage_mcse", "rejection_rate", "rejection_rate_mcse",
]


def _simulate_one(scenario: Scenario, n_replicates: int, methods: tuple[str, ...], seed, chunk_size: int | None,
                  params: Params, alpha: float, progress: Callable[[int], None] | None, dtype=jnp.float64) -> pd.DataFrame:
    width = bucket_width(scenario.n_instruments)
    chunk = chunk_size or default_chunk_size(width, methods, params)
    chunk = min(chunk, bucket_width(n_replicates, floor=8))  # powers of two: few compiled shapes
    dyn = _dynamic(scenario, dtype)
    z = NormalDist().inv_cdf(1 - 0.05 / 2)
    accumulators = {m: _Moments() for m in methods}
    starts = list(range(0, n_replicates, chunk))
    n_devices = len(engine.devices())
    for first in range(0, len(starts), n_devices):  # one chunk per device at a time, read back in order
        pending = []
        for i, start in enumerate(starts[first : first + n_devices]):
            data_keys, method_keys = replicate_keys(seed, np.arange(start, start + chunk))
            pending.append((start, engine.map_traits(
                replicate_estimates, (data_keys, method_keys), (dyn,), slot=i, width=width,
                winners_curse=bool(scenario.winners_curse), methods=methods, params=params,
            )))
        for start, out in pending:
            real = min(chunk, n_replicates - start)
            for m in methods:
                b, se, p = (np.asarray(a, dtype=np.float64)[:real] for a in out[m])
                accumulators[m].add(b, se, p, scenario.theta, z, alpha)
            if progress is not None:
                progress(real)
    rows = []
    for m in methods:
        rows.append({"method_id": m, "n_replicates": n_replicates} | summarise_moments(accumulators[m].totals(), scenario.theta))
    return pd.DataFrame(rows, columns=RESULT_COLUMNS)


def simulate(scenario: Scenario | Mapping | str | Sequence, n_replicates: int, methods: Sequence[str] | None = None,
             seed=0, *, chunk_size: int | None = None, params: Params = Params(), alpha: float = 0.05,
             progress: Callable[[int], None] | None = None, dtype="float64") -> pd.DataFrame:
    """Run ``methods`` on ``n_replicates`` simulated datasets of ``scenario`` and summarise.

    ``scenario``: a :class:`Scenario`, a preset name (:data:`PRESETS`), a dict of fields, or a
    list of these (then a ``scenario`` column labels the rows; all scenarios share the seed,
    i.e. common random numbers). ``methods``: method ids of :mod:`mrjax.methods`
    (:data:`SIMULATION_METHODS` when None). Returns one row per method (and scenario) with ``method_id,
    n_replicates, n_estimated, mean_b, bias, emp_sd, mean_se, coverage, rejection_rate`` and a
    ``*_mcse`` column for each (see :func:`summarise_moments`); replicates where a method
    returns NaN are left out of its measures and counted by ``n_estimated``.

    Coverage is of the normal interval ``b ± Φ⁻¹(0.975)·se`` (TwoSampleMR's CI); rejection
    uses each method's own p-value at level ``alpha``. Replicates run in chunks of
    ``chunk_size`` (one device call each; memory is flat in ``n_replicates``); the draws do
    not depend on the chunk size, the summaries only to floating-point rounding. ``progress(k)`` is called after each chunk with the
    number of replicates it finished. ``dtype="float32"`` draws and estimates in single
    precision (the accelerator path; summaries are accumulated in float64).
    """
    if isinstance(n_replicates, bool) or not isinstance(n_replicates, (int, np.integer)) or n_replicates < 2:
        raise ValueError(f"n_replicates must be an integer >= 2 (got {n_replicates!r})")
    if chunk_size is not None and (not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1):
        raise ValueError(f"chunk_size must be a positive integer (got {chunk_size!r})")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must lie strictly between 0 and 1 (got {alpha!r})")
    methods = resolve_methods(methods)
    if str(dtype) not in ("float64", "float32"):
        raise ValueError(f"dtype must be 'float64' or 'float32', got {dtype!r}")
    dtype = jnp.dtype(str(dtype))
    if isinstance(scenario, (Scenario, str, Mapping)):
        return _simulate_one(as_scenario(scenario), int(n_replicates), methods, seed, chunk_size, params, alpha, progress,
                             dtype)
    scenarios = [as_scenario(s) for s in scenario]
    if not scenarios:
        raise ValueError("scenario: the list is empty")
    labels = [s.name or f"scenario_{i}" for i, s in enumerate(scenarios)]
    frames = []
    for label, s in zip(labels, scenarios):
        frame = _simulate_one(s, int(n_replicates), methods, seed, chunk_size, params, alpha, progress, dtype)
        frames.append(frame.assign(scenario=label))
    table = pd.concat(frames, ignore_index=True)
    return table[["scenario"] + RESULT_COLUMNS]


def scenario_grid(base: Scenario | Mapping | str, **axes: Iterable) -> list[Scenario]:
    """The Cartesian product of ``base`` with the listed field values, e.g.
    ``scenario_grid("valid_ivs", theta=[0, 0.05, 0.1], pleiotropy_fraction=[0, 0.3])``.
    Each scenario is named ``field=value, …`` so result rows can be told apart."""
    base = as_scenario(base)
    unknown = sorted(set(axes) - set(SCENARIO_FIELDS))
    if unknown:
        raise ValueError(f"unknown Scenario field(s) {', '.join(map(repr, unknown))}; fields: {', '.join(SCENARIO_FIELDS)}")
    names = list(axes)
    values = [list(axes[n]) for n in names]
    for name, vals in zip(names, values):
        if not vals:
            raise ValueError(f"grid axis {name!r} has no values")
    grid = []
    for combo in itertools.product(*values):
        label = ", ".join(f"{n}={v}" for n, v in zip(names, combo))
        prefix = f"{base.name}: " if base.name else ""
        grid.append(dataclasses.replace(base, **dict(zip(names, combo)), name=prefix + label))
    return grid


def simulate_grid(base: Scenario | Mapping | str, n_replicates: int, methods: Sequence[str] | None = None, seed=0,
                  *, axes: Mapping[str, Iterable], **kwargs) -> pd.DataFrame:
    """:func:`simulate` over :func:`scenario_grid` ``(base, **axes)``; the varied fields are
    added as columns (for power curves: ``theta`` against ``rejection_rate``)."""
    grid = scenario_grid(base, **axes)
    table = simulate(grid, n_replicates, methods, seed, **kwargs)
    per_scenario = {s.name: s for s in grid}
    for position, name in enumerate(axes, start=1):
        table.insert(position, name, [getattr(per_scenario[label], name) for label in table["scenario"]])
    return table
