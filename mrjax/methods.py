"""The method registry: method ids, labels and properties, TwoSampleMR's in ``mr_method_list()``
order, then those of MendelianRandomization and mr.raps.

A TwoSampleMR method id is the function name without ``mr_`` (``ivw`` for ``mr_ivw``); the label
is TwoSampleMR's ``name`` column. A MendelianRandomization method id is its function name
without the underscore (``mrivw`` for ``mr_ivw``), its label names the package, and its
variants are chosen with settings named after the R arguments (``mrjax.mr(dat,
methods=["mrivw"], robust=True)``; see :class:`~mrjax.estimators.common.Params`).
:data:`R_EQUIVALENTS` maps every R call of the golden files to its id and settings. Every method is a per-trait function
``fn(t: Instruments, key, params: Params) -> Estimate`` (see ``mrjax.estimators.common``);
functions are resolved lazily by module path so that importing the registry is cheap.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

if TYPE_CHECKING:  # the registry itself loads no JAX (the CLI's --help lists the ids)
    from mrjax.estimators.common import Estimate


@dataclass(frozen=True)
class Method:
    """One registered estimator.

    ``min_snps``: fewest instruments it estimates with (fewer gives NaN, "too few
    instruments"); ``stochastic``: uses the PRNG key (bootstrap); ``default``: in TwoSampleMR's
    default set (``use_by_default``); ``heterogeneity``: has a Q statistic in ``mr_heterogeneity``;
    ``package``: the R package it reproduces; ``settings``: the fields of ``Params`` beyond
    ``n_boot``/``phi``/``penk`` that it reads; ``batched``: a form that takes the whole batch
    (``module:function``, see :attr:`batch_fn`), or empty.
    """

    id: str
    label: str
    target: str
    min_snps: int
    stochastic: bool = False
    default: bool = False
    heterogeneity: bool = False
    package: str = "TwoSampleMR"
    settings: tuple[str, ...] = ()
    batched: str = ""

    @property
    def batch_fn(self) -> Callable[..., Estimate]:
        """The batched form ``fn(ts, keys, params)`` (``batched``: ``module:function``), equal to
        ``fn`` trait by trait; the engine runs it on the whole batch (``mrjax.engine.batch_methods``)."""
        module, name = self.batched.split(":")
        return getattr(importlib.import_module(module), name)

    @property
    def fn(self) -> Callable[..., Estimate]:
        """The per-trait function (imported on first use)."""
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


_E = "mrjax.estimators."
_MR = "MendelianRandomization"

METHODS: dict[str, Method] = {
    m.id: m
    for m in [
        Method("wald_ratio", "Wald ratio", _E + "wald:wald_ratio", 1, default=True),
        Method("two_sample_ml", "Maximum likelihood", _E + "ml:two_sample_ml", 2, heterogeneity=True),
        Method("egger_regression", "MR Egger", _E + "egger:egger_regression", 3, default=True, heterogeneity=True),
        Method(
            "egger_regression_bootstrap",
            "MR Egger (bootstrap)",
            _E + "egger:egger_regression_bootstrap",
            3,
            stochastic=True,
        ),
        Method("simple_median", "Simple median", _E + "median:simple_median", 3, stochastic=True),
        Method("weighted_median", "Weighted median", _E + "median:weighted_median", 3, stochastic=True, default=True),
        Method(
            "penalised_weighted_median",
            "Penalised weighted median",
            _E + "median:penalised_weighted_median",
            3,
            stochastic=True,
        ),
        Method("ivw", "Inverse variance weighted", _E + "ivw:ivw", 2, default=True, heterogeneity=True),
        Method("ivw_radial", "IVW radial", _E + "ivw:ivw_radial", 2, heterogeneity=True),
        Method("ivw_mre", "Inverse variance weighted (multiplicative random effects)", _E + "ivw:ivw_mre", 2),
        Method("ivw_fe", "Inverse variance weighted (fixed effects)", _E + "ivw:ivw_fe", 2),
        Method("simple_mode", "Simple mode", _E + "mode:simple_mode", 3, stochastic=True, default=True),
        Method("weighted_mode", "Weighted mode", _E + "mode:weighted_mode", 3, stochastic=True, default=True),
        Method("weighted_mode_nome", "Weighted mode (NOME)", _E + "mode:weighted_mode_nome", 3, stochastic=True),
        Method("simple_mode_nome", "Simple mode (NOME)", _E + "mode:simple_mode_nome", 3, stochastic=True),
        Method("sign", "Sign concordance test", _E + "sign:sign", 6),
        Method("uwr", "Unweighted regression", _E + "ivw:uwr", 2, heterogeneity=True),
        Method("grip", "MR GRIP", _E + "grip:grip", 3),
        # MendelianRandomization 0.10.0
        Method("mrivw", "IVW (MendelianRandomization)", _E + "mendelian_regression:mr_ivw", 2,
               package=_MR, settings=("model", "distribution", "weights", "psi", "penalized", "robust"),
               batched=_E + "mendelian_regression:mr_ivw_batch"),
        Method("mregger", "MR-Egger (MendelianRandomization)", _E + "mendelian_regression:mr_egger", 3,
               package=_MR, settings=("distribution", "penalized", "robust"),
               batched=_E + "mendelian_regression:mr_egger_batch"),
        Method("mregger_intercept", "MR-Egger intercept (MendelianRandomization)",
               _E + "mendelian_regression:mr_egger_intercept", 3, package=_MR,
               settings=("distribution", "penalized", "robust"),
               batched=_E + "mendelian_regression:mr_egger_intercept_batch"),
        Method("mrmedian", "Median (MendelianRandomization)", _E + "mendelian_median:mr_median", 3,
               stochastic=True, package=_MR, settings=("weighting", "iterations")),
        Method("mrmbe", "Mode-based estimate (MendelianRandomization)", _E + "mendelian_median:mr_mbe", 3,
               stochastic=True, package=_MR, settings=("weighting", "stderror", "psi", "iterations")),
        Method("mrmaxlik", "Maximum likelihood (MendelianRandomization)", _E + "maxlik:mr_maxlik", 2,
               package=_MR, settings=("model", "distribution")),
        Method("divw", "Debiased IVW (MendelianRandomization)", _E + "divw:mr_divw", 2,
               package=_MR, settings=("over_dispersion",)),
        Method("pivw", "Penalized IVW (MendelianRandomization)", _E + "divw:mr_pivw", 2, stochastic=True,
               package=_MR, settings=("over_dispersion", "pivw_lambda")),
        Method("cml", "cML-MA-BIC (MendelianRandomization)", _E + "cml:mr_cml", 3, stochastic=True,
               package=_MR, settings=("n", "dp", "k_vec"), batched=_E + "cml:mr_cml_batch"),
        Method("conmix", "Contamination mixture (MendelianRandomization)", _E + "conmix:mr_conmix", 3, package=_MR),
        Method("lasso", "MR-Lasso (MendelianRandomization)", _E + "lasso:mr_lasso", 3, package=_MR),
        Method("raps", "Robust adjusted profile score (RAPS)", _E + "raps:raps_method", 3,
               package="mr.raps", settings=("over_dispersion", "loss")),
        Method("raps_mle", "RAPS (mr.raps.mle)", _E + "raps:raps_mle_method", 3,
               package="mr.raps", settings=("over_dispersion", "loss")),
    ]
}

DEFAULT_METHODS: tuple[str, ...] = tuple(m.id for m in METHODS.values() if m.default)
HETEROGENEITY_METHODS: tuple[str, ...] = tuple(m.id for m in METHODS.values() if m.heterogeneity)
DEFAULT_HETEROGENEITY: tuple[str, ...] = tuple(m for m in HETEROGENEITY_METHODS if METHODS[m].default)


def resolve(methods=None, *, allowed=None, default=DEFAULT_METHODS) -> tuple[str, ...]:
    """Validate a list of method ids (``mr_`` prefixes are accepted and stripped).

    ``None`` gives ``default``; ``"all"`` every allowed method. Unknown or disallowed ids raise
    ``ValueError`` listing the valid ones; duplicates are dropped, the order given is kept.
    """
    if methods is None:
        return tuple(default)
    if isinstance(methods, str):
        methods = [methods]
    if list(methods) == ["all"]:
        return tuple(METHODS) if allowed is None else tuple(allowed)
    allowed = tuple(METHODS) if allowed is None else tuple(allowed)
    out: list[str] = []
    for name in methods:
        mid = str(name)
        mid = mid[3:] if mid.startswith("mr_") else mid
        if mid not in allowed:
            raise ValueError(f"unknown method {name!r}; choose from {', '.join(allowed)}")
        if mid not in out:
            out.append(mid)
    if not out:
        raise ValueError("no methods given")
    return tuple(out)


def check_settings(methods: tuple[str, ...], settings: dict) -> None:
    """``ValueError`` for a setting that none of ``methods`` reads (it would be ignored
    silently otherwise), naming the setting and the methods that do read it."""
    for name in settings:
        if name in ("n_boot", "phi", "penk"):
            continue
        readers = [m for m in METHODS if name in METHODS[m].settings]
        if not any(m in readers for m in methods):
            raise ValueError(
                f"setting {name!r} applies to none of the methods {', '.join(methods)}; "
                f"it is read by {', '.join(readers) or 'no method'}"
            )


#: Each R call of the golden files (``"<section>.<label>"`` of the ``mendelianrandomization``
#: and ``mr_raps`` sections of ``golden_methods_*.json``) -> ``(method_id, settings)`` such that
#: ``mrjax.mr(dat, methods=[method_id], **settings)`` reproduces it.
R_EQUIVALENTS: dict[str, tuple[str, dict]] = {
    "mendelianrandomization.ivw_default": ("mrivw", {}),
    "mendelianrandomization.ivw_fixed": ("mrivw", {"model": "fixed"}),
    "mendelianrandomization.ivw_random": ("mrivw", {"model": "random"}),
    "mendelianrandomization.ivw_tdist": ("mrivw", {"distribution": "t"}),
    "mendelianrandomization.ivw_delta": ("mrivw", {"weights": "delta"}),
    "mendelianrandomization.ivw_penalized": ("mrivw", {"penalized": True}),
    "mendelianrandomization.ivw_robust": ("mrivw", {"robust": True}),
    "mendelianrandomization.ivw_robust_penalized": ("mrivw", {"robust": True, "penalized": True}),
    "mendelianrandomization.egger_default": ("mregger", {}),
    "mendelianrandomization.egger_tdist": ("mregger", {"distribution": "t"}),
    "mendelianrandomization.egger_penalized": ("mregger", {"penalized": True}),
    "mendelianrandomization.egger_robust": ("mregger", {"robust": True}),
    "mendelianrandomization.median_simple": ("mrmedian", {"weighting": "simple"}),
    "mendelianrandomization.median_weighted": ("mrmedian", {"weighting": "weighted"}),
    "mendelianrandomization.median_penalized": ("mrmedian", {"weighting": "penalized"}),
    "mendelianrandomization.mbe_weighted_delta": ("mrmbe", {"weighting": "weighted", "stderror": "delta"}),
    "mendelianrandomization.mbe_weighted_simple_NOME": ("mrmbe", {"weighting": "weighted", "stderror": "simple"}),
    "mendelianrandomization.mbe_unweighted_delta": ("mrmbe", {"weighting": "unweighted", "stderror": "delta"}),
    "mendelianrandomization.mbe_unweighted_simple_NOME": ("mrmbe", {"weighting": "unweighted", "stderror": "simple"}),
    "mendelianrandomization.maxlik_default": ("mrmaxlik", {}),
    "mendelianrandomization.maxlik_fixed": ("mrmaxlik", {"model": "fixed"}),
    "mendelianrandomization.maxlik_random": ("mrmaxlik", {"model": "random"}),
    "mendelianrandomization.divw_default": ("divw", {}),
    "mendelianrandomization.divw_no_overdispersion": ("divw", {"over_dispersion": False}),
    "mendelianrandomization.pivw_default": ("pivw", {}),
    **{
        f"mr_raps.mle_{loss}_od{str(od).upper()}": ("raps_mle", {"loss": loss, "over_dispersion": od})
        for loss in ("l2", "huber", "tukey")
        for od in (False, True)
    },
    **{
        f"mr_raps.mr.raps_{loss}_od{str(od).upper()}": ("raps", {"loss": loss, "over_dispersion": od})
        for loss, od in (("l2", False), ("huber", False), ("l2", True), ("huber", True), ("tukey", True))
    },
    "mendelianrandomization.lasso_default": ("lasso", {}),
    "mendelianrandomization.conmix_default": ("conmix", {}),
    # n: the dataset's n_for_cML (17723 for the lipid sets; bmi_chd's samplesize.* columns give its 184305).
    "mendelianrandomization.cML_default": ("cml", {}),
    "mendelianrandomization.cML_noDP": ("cml", {"dp": False}),
}


from mrjax.mv.equivalents import MV_R_EQUIVALENTS  # noqa: E402,F401  (MV / correlated-instrument R labels)
