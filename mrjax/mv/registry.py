"""MV method ids, labels and per-analysis functions (resolved lazily, like ``mrjax.methods``).

A method spec is ``(method_id, options)``: ``options`` a sorted tuple of ``(name, value)``
pairs passed to the function as static keyword arguments, so one id can run with several
settings (``("mv_egger", (("orientate", 2),))``) in one engine call.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass

import jax

_M = "mrjax.mv."


@dataclass(frozen=True)
class MVMethod:
    id: str
    label: str
    target: str
    stochastic: bool = False
    batched: str | None = None  # a function of the whole [A, ...] batch, equal to target's vmap

    @property
    def fn(self):
        return _resolve(self.target)

    @property
    def batch_fn(self):
        """``fn(instruments [A, ...], keys [A], **options)``: the batched function, or ``fn``'s ``vmap``."""
        if self.batched is None:
            return lambda ts, keys, **opts: jax.vmap(lambda t, k: self.fn(t, k, **opts))(ts, keys)
        return _resolve(self.batched)


def _resolve(target: str):
    module, name = target.split(":")
    return getattr(importlib.import_module(module), name)


MV_METHODS: dict[str, MVMethod] = {
    m.id: m
    for m in [
        MVMethod("mv_ivw", "MV-IVW", _M + "regression:mv_ivw"),
        MVMethod("mv_ivw_lm", "MV-IVW (lm SE)", _M + "regression:mv_ivw_lm"),
        MVMethod("mv_egger", "MV-Egger", _M + "regression:mv_egger"),
        MVMethod("mv_median", "MV-median", _M + "median:mv_median", stochastic=True, batched=_M + "median:mv_median_batch"),
        MVMethod("mv_basic", "MV residual (mv_basic)", _M + "regression:mv_basic"),
        MVMethod("mv_ivwme", "MV-IVW (measurement error)", _M + "ivwme:mv_ivwme"),
        MVMethod("mv_lasso", "MV-lasso", _M + "lasso:mv_lasso"),
        MVMethod("mv_cml", "MVMR-cML-BIC", _M + "cml:mv_cml", stochastic=True, batched=_M + "cml:mv_cml_batch"),
        MVMethod("mv_qhet", "Q minimisation with heterogeneity (qhet_mvmr)", _M + "qhet:mv_qhet", batched=_M + "qhet:mv_qhet_batch"),
        MVMethod("mv_gmm", "MV-GMM", _M + "gmm:mv_gmm", batched=_M + "gmm:mv_gmm_batch"),
        MVMethod("mv_pcgmm", "MV-PC-GMM", _M + "pcgmm:mv_pcgmm", batched=_M + "pcgmm:mv_pcgmm_batch"),
        MVMethod("maxlik", "Maximum likelihood", _M + "ml:maxlik"),
    ]
}

DEFAULT_MV_METHODS = ("mv_ivw", "mv_egger", "mv_median")

Spec = tuple  # (method_id, ((option, value), ...))


def resolve_specs(methods=None) -> tuple[Spec, ...]:
    """Normalise ``methods`` — ids, or ``(id, {option: value})`` pairs — into hashable specs;
    unknown ids raise ``ValueError`` listing the valid ones."""
    if methods is None:
        methods = DEFAULT_MV_METHODS
    if isinstance(methods, (str, tuple)) and (isinstance(methods, str) or (len(methods) == 2 and isinstance(methods[1], dict))):
        methods = [methods]
    specs = []
    for m in methods:
        mid, opts = (m, {}) if isinstance(m, str) else (m[0], dict(m[1]))
        if mid not in MV_METHODS:
            raise ValueError(f"unknown MV method {mid!r}; choose from {', '.join(MV_METHODS)}")
        known = _options(MV_METHODS[mid])
        unknown = sorted(set(opts) - set(known))
        if unknown:
            raise ValueError(f"unknown option(s) {', '.join(map(repr, unknown))} for MV method {mid!r}; "
                             f"its options: {', '.join(known) or 'none'}")
        missing = [name for name in _required(MV_METHODS[mid]) if name not in opts]
        if missing:
            raise ValueError(f"MV method {mid!r} needs the option(s) {', '.join(map(repr, missing))}, "
                             f"e.g. ({mid!r}, {{{', '.join(f'{name!r}: ...' for name in missing)}}})")
        spec = (mid, tuple(sorted((name, _hashable(value)) for name, value in opts.items())))
        if spec not in specs:
            specs.append(spec)
    if not specs:
        raise ValueError("no methods given")
    return tuple(specs)


def _options(method: MVMethod) -> tuple[str, ...]:
    """The keyword options of a method's function (after ``t`` and ``key``)."""
    import inspect

    return tuple(name for name, p in inspect.signature(method.fn).parameters.items() if p.kind is p.KEYWORD_ONLY)


def _hashable(value):
    """An option value as the static (hashable) argument it becomes: arrays and lists as nested tuples."""
    if hasattr(value, "tolist") and not isinstance(value, (str, bytes)):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(v) for v in value)
    return value


def _top_level_items(body: str) -> list[str]:
    """``body`` split at the commas outside brackets (an option's value may be a tuple)."""
    items, depth, start = [], 0, 0
    for i, ch in enumerate(body):
        depth += ch in "([{"
        depth -= ch in ")]}"
        if ch == "," and depth == 0:
            items.append(body[start:i])
            start = i + 1
    return items + [body[start:]]


def _required(method: MVMethod) -> tuple[str, ...]:
    """The keyword options a method cannot run without (no default: sample sizes)."""
    import inspect

    return tuple(name for name, p in inspect.signature(method.fn).parameters.items()
                 if p.kind is p.KEYWORD_ONLY and p.default is p.empty)


def spec_name(spec: Spec) -> str:
    """``method_id`` of a spec in results: the id, with its options when it has any."""
    mid, opts = spec
    return mid if not opts else mid + "[" + ",".join(f"{k}={v}" for k, v in opts) + "]"


def parse_spec_name(text: str) -> tuple[str, dict]:
    """The inverse of :func:`spec_name`: ``"mv_ivw[robust=True,model=fixed]"`` ->
    ``("mv_ivw", {"robust": True, "model": "fixed"})`` (values read as Python literals, else
    kept as text), so a ``method_id`` of the results can be asked for again (the CLI's
    ``--method``). Raises ``ValueError`` naming the text when it is malformed."""
    import ast

    text = text.strip()
    if "[" not in text:
        return text, {}
    if not text.endswith("]"):
        raise ValueError(f"method {text!r}: expected id[option=value,...]")
    mid, body = text[:-1].split("[", 1)
    options = {}
    for item in filter(None, (part.strip() for part in _top_level_items(body))):
        name, eq, value = item.partition("=")
        if not eq or not name.strip():
            raise ValueError(f"method {text!r}: {item!r} is not option=value")
        try:
            options[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            options[name.strip()] = value.strip()
    return mid.strip(), options
