"""Types shared by every estimator: the per-trait result, failure reasons and parameters.

Convention: an estimator is a pure function of ONE trait,
``fn(t: Instruments, key: PRNGKey, params: Params) -> Estimate``, whose ``t`` fields are
``[width]`` with a prefix ``mask``. It never raises on data: a trait it cannot estimate gets
NaN with a non-zero ``reason`` code. ``mrjax.engine`` vmaps and jits these functions once.
"""

from __future__ import annotations

import numbers
from collections.abc import Hashable
from typing import NamedTuple

import jax
import jax.numpy as jnp


class Reason:
    """Integer codes for why an estimate is NaN (0 = estimated)."""

    OK = 0
    TOO_FEW_SNPS = 1
    ZERO_WEIGHT = 2
    NOT_CONVERGED = 3
    NON_FINITE = 4
    NOT_APPLICABLE = 5
    ESTIMATE_ONLY = 6  # b estimated; the method (as called) gives no standard error

    TEXT = {
        0: "",
        1: "too few instruments",
        2: "zero or degenerate weights",
        3: "did not converge",
        4: "non-finite result",
        5: "not applicable",
        6: "estimate only (no standard error)",
    }


class Params(NamedTuple):
    """Method settings: TwoSampleMR ``default_parameters()`` and the arguments of the
    MendelianRandomization / mr.raps functions, with defaults that reproduce each R
    function called with its own defaults.

    The engine passes ``phi`` (mode bandwidth factor) and ``penk`` (penalty constant) as traced
    numbers and every other field as a static (hashable) jit argument: ``n_boot`` and
    ``iterations`` set array shapes, the string and boolean settings select code paths.

    MendelianRandomization settings (R argument names in brackets):

    - ``model`` (``model``): ``"default"`` (fixed below 4 instruments, random otherwise),
      ``"fixed"`` or ``"random"``;
    - ``distribution`` (``distribution``): ``"normal"`` or ``"t"`` (R's ``"t-dist"``) for
      p-values and CIs;
    - ``weights`` (``mr_ivw``'s ``weights``): ``"simple"`` (first order) or ``"delta"``
      (second order, with ``psi``);
    - ``psi`` (``psi``): correlation between the exposure and outcome associations;
    - ``penalized`` / ``robust`` (``penalized`` / ``robust``): penalised weights and
      ``robustbase::lmrob`` regression in ``mr_ivw`` / ``mr_egger``;
    - ``weighting`` (``weighting``): ``mr_median``'s ``"simple"``, ``"weighted"``,
      ``"penalized"``; ``mr_mbe``'s ``"weighted"``, ``"unweighted"``;
    - ``stderror`` (``mr_mbe``'s ``stderror``): ``"delta"`` or ``"simple"`` (NOME);
    - ``iterations`` (``iterations``): bootstrap draws of ``mr_median`` and ``mr_mbe``.

    ``over_dispersion`` and ``loss`` (mr.raps / ``mr_divw`` / ``mr_pivw``): ``None`` means the
    R function's own default. ``n`` and ``dp`` (``mr_cML``'s ``n`` and ``DP``): the GWAS sample
    size for every trait (``None``: each trait's ``Instruments.samplesize``, from the
    ``samplesize.*`` columns) and data perturbation. ``k_vec`` (``mr_cML``'s ``K_vec``): the
    numbers of invalid instruments to average over (``None``: R's ``0:(length(Bx) - 2)``; values
    above a trait's ``nsnp - 2`` are skipped for that trait). ``pivw_lambda`` (``mr_pivw``'s
    ``lambda``): the penalty in the penalised IVW denominator.
    """

    n_boot: int = 1000
    phi: float = 1.0
    penk: float = 20.0
    model: str = "default"
    distribution: str = "normal"
    weights: str = "simple"
    psi: float = 0.0
    penalized: bool = False
    robust: bool = False
    weighting: str = "weighted"
    stderror: str = "delta"
    iterations: int = 10000
    over_dispersion: bool | None = None
    loss: str | None = None
    n: float | None = None
    dp: bool = True
    k_vec: tuple[int, ...] | None = None
    pivw_lambda: float = 1.0


#: Allowed values of the string settings of :class:`Params` (R's spelling accepted as an alias).
SETTING_CHOICES = {
    "model": ("default", "fixed", "random"),
    "distribution": ("normal", "t"),
    "weights": ("simple", "delta"),
    "weighting": ("simple", "weighted", "penalized", "unweighted"),
    "stderror": ("delta", "simple"),
    "loss": (None, "l2", "huber", "tukey"),
}
SETTING_ALIASES = {("distribution", "t-dist"): "t"}


def make_params(**settings) -> Params:
    """:class:`Params` from keyword settings, checked: an unknown name or a value outside
    :data:`SETTING_CHOICES` raises ``ValueError`` naming it and what is allowed."""
    unknown = sorted(set(settings) - set(Params._fields))
    if unknown:
        raise ValueError(f"unknown method setting(s) {', '.join(unknown)}; known settings: {', '.join(Params._fields)}")
    for name, value in list(settings.items()):
        if name not in SETTING_CHOICES:
            continue
        if not isinstance(value, Hashable):  # a list or array where one choice is expected
            raise ValueError(f"setting {name}={value!r} is not one of {SETTING_CHOICES[name]}")
        value = SETTING_ALIASES.get((name, value), value)
        if value not in SETTING_CHOICES[name]:
            raise ValueError(f"setting {name}={value!r} is not one of {SETTING_CHOICES[name]}")
        settings[name] = value
    defaults = Params()
    for name in ("n_boot", "iterations"):
        if name in settings:
            settings[name] = int(settings[name])
            if settings[name] < 0:
                raise ValueError(f"setting {name} must be >= 0, not {settings[name]}")
    if settings.get("n") is not None:
        settings["n"] = float(settings["n"])
        if not settings["n"] > 0:
            raise ValueError(f"setting n (sample size) must be > 0, not {settings['n']}")
    for name in ("phi", "penk", "psi"):
        if name in settings:
            settings[name] = float(settings[name])
    if "pivw_lambda" in settings:
        lam = settings["pivw_lambda"]
        if isinstance(lam, bool) or not isinstance(lam, numbers.Real) or not lam > 0:
            raise ValueError(f"setting pivw_lambda (mr_pivw's lambda) must be a number > 0, not {lam!r}")
        settings["pivw_lambda"] = float(lam)
    if settings.get("k_vec") is not None:
        settings["k_vec"] = _k_vec(settings["k_vec"])
    for name in ("penalized", "robust", "dp"):
        if name in settings and not isinstance(settings[name], (bool,)):
            raise ValueError(f"setting {name} must be True or False, not {settings[name]!r}")
    return defaults._replace(**settings)


def _k_vec(value) -> tuple[int, ...]:
    """``mr_cML``'s ``K_vec`` as a sorted tuple of distinct integers >= 0 (hashable: a static setting)."""
    scalar = isinstance(value, str) or not hasattr(value, "__iter__")
    values = [value] if scalar else list(value)
    try:
        ok = bool(values) and all(not isinstance(k, (bool, str)) and float(k).is_integer() and k >= 0 for k in values)
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"setting k_vec (mr_cML's K_vec) must be one or more non-negative integers, not {value!r}")
    return tuple(sorted({int(k) for k in values}))


class Estimate(NamedTuple):
    """One method's result for one trait (scalars; ``[traits]`` once vmapped): estimate,
    SE, p-value, instruments used, reason code, and the method's own 95% CI. ``ci_disjoint``
    (``mr_conmix`` only; ``None`` for every other method): the CI is a union of intervals and
    ``lo_ci``/``up_ci`` its hull."""

    b: jax.Array
    se: jax.Array
    pval: jax.Array
    nsnp: jax.Array
    reason: jax.Array
    lo_ci: jax.Array
    up_ci: jax.Array
    ci_disjoint: jax.Array | None = None


#: ``qnorm(0.975)``: the half-width of a normal 95% CI in SEs.
Z_975 = 1.959963984540054


def estimate(b, se, pval, nsnp, ok=True, reason=Reason.TOO_FEW_SNPS, lo_ci=None, up_ci=None) -> Estimate:
    """Assemble an :class:`Estimate`, replacing values by NaN where ``ok`` is False.

    The CI defaults to the normal ``b ∓ qnorm(0.975) se``; methods with another CI (t,
    likelihood, Fieller) pass ``lo_ci`` and ``up_ci``. Where ``ok`` holds but b is not
    finite, the reason becomes ``NON_FINITE``.
    """
    ok = jnp.asarray(ok)
    lo_ci = b - Z_975 * se if lo_ci is None else lo_ci
    up_ci = b + Z_975 * se if up_ci is None else up_ci
    b, se, pval, lo_ci, up_ci = (jnp.where(ok, v, jnp.nan) for v in (b, se, pval, lo_ci, up_ci))
    code = jnp.where(ok, jnp.where(jnp.isfinite(b), Reason.OK, Reason.NON_FINITE), reason)
    return Estimate(b=b, se=se, pval=pval, nsnp=jnp.asarray(nsnp, dtype=jnp.int32), reason=code.astype(jnp.int32),
                    lo_ci=lo_ci, up_ci=up_ci)


def family_members(panel, methods, family: str) -> tuple[str, ...]:
    """The requested ``methods`` of a family of estimators computed together (``panel`` is
    its NamedTuple of results, e.g. ``MedianPanel``), in the panel's field order; a
    ``ValueError`` names any method that is not a member."""
    unknown = [m for m in methods if m not in panel._fields]
    if unknown:
        raise ValueError(f"unknown {family} method(s) {unknown}; expected some of {list(panel._fields)}")
    return tuple(m for m in panel._fields if m in methods)

