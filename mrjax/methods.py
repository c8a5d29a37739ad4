"""The method registry: TwoSampleMR method ids, labels and properties, in ``mr_method_list()`` order.

A method id is the TwoSampleMR function name without ``mr_`` (``ivw`` for ``mr_ivw``); the label
is TwoSampleMR's ``name`` column. Every method is a per-trait function
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
    default set (``use_by_default``); ``heterogeneity``: has a Q statistic in ``mr_heterogeneity``.
    """

    id: str
    label: str
    target: str
    min_snps: int
    stochastic: bool = False
    default: bool = False
    heterogeneity: bool = False

    @property
    def fn(self) -> Callable[..., Estimate]:
        """The per-trait function (imported on first use)."""
        module, name = self.target.split(":")
        return getattr(importlib.import_module(module), name)


_E = "mrjax.estimators."

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
    ]
}

DEFAULT_METHODS: tuple[str, ...] = tuple(m.id for m in METHODS.values() if m.default)
HETEROGENEITY_METHODS: tuple[str, ...] = tuple(m.id for m in METHODS.values() if m.heterogeneity)
DEFAULT_HETEROGENEITY: tuple[str, ...] = tuple(m for m in HETEROGENEITY_METHODS if METHODS[m].default)


def resolve(methods=None, *, allowed=None, default=DEFAULT_METHODS) -> tuple[str, ...]:
    """Validate a list of method ids (``mr_`` prefixes are accepted and stripped).

    ``None`` gives ``default``. Unknown or disallowed ids raise ``ValueError`` listing the
    valid ones; duplicates are dropped, the order given is kept.
    """
    if methods is None:
        return tuple(default)
    if isinstance(methods, str):
        methods = [methods]
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

from mrjax.mv.equivalents import MV_R_EQUIVALENTS  # noqa: E402,F401  (MV / correlated-instrument R labels)
