"""Masked weighted least squares for one trait: the two fits every regression estimator uses.

R's ``summary(lm(y ~ x, weights = w))`` (with intercept) and ``summary(lm(y ~ -1 + x,
weights = w))`` (through the origin), written as closed-form sums over the masked entries so
that they vmap over traits and padding never contributes. ``sigma`` is R's residual standard
error ``sqrt(sum(w * resid^2) / df)`` and the SEs are R's "lm SE", which already contain it.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp


class OriginFit(NamedTuple):
    """``lm(y ~ -1 + x, weights = w)``: slope ``b``, ``se`` (lm SE), ``sigma``, ``rss``
    (``sum(w * resid^2)``), ``df`` (n − 1) and ``sxx = sum(w x^2)``."""

    b: jax.Array
    se: jax.Array
    sigma: jax.Array
    rss: jax.Array
    df: jax.Array
    sxx: jax.Array


class InterceptFit(NamedTuple):
    """``lm(y ~ x, weights = w)``: intercept ``a`` and slope ``b`` with their lm SEs,
    ``sigma``, ``rss`` and ``df`` (n − 2)."""

    a: jax.Array
    se_a: jax.Array
    b: jax.Array
    se_b: jax.Array
    sigma: jax.Array
    rss: jax.Array
    df: jax.Array
    sxx: jax.Array


def _safe(x):
    """``x`` where it is non-zero, else 1 (the caller masks the result with NaN)."""
    return jnp.where(x != 0, x, 1.0)


def wls_origin(x, y, w, mask) -> OriginFit:
    """Weighted least squares through the origin over the masked entries.

    ``b = sum(w x y) / sum(w x^2)``, ``rss = sum(w (y - b x)^2)``, ``sigma = sqrt(rss / (n-1))``,
    ``se = sigma / sqrt(sum(w x^2))`` — R ``summary(lm(y ~ -1 + x, weights = w))``.
    Where ``sum(w x^2) = 0`` the outputs are NaN.
    """
    w = jnp.where(mask, w, 0.0)
    n = jnp.sum(mask)
    sxx = jnp.sum(w * x * x)
    b = jnp.sum(w * x * y) / _safe(sxx)
    resid = jnp.where(mask, y - b * x, 0.0)
    rss = jnp.sum(w * resid * resid)
    df = n - 1
    sigma = jnp.sqrt(rss / jnp.where(df > 0, df, jnp.nan))
    se = sigma / jnp.sqrt(_safe(sxx))
    bad = sxx == 0
    nan = jnp.nan
    return OriginFit(
        b=jnp.where(bad, nan, b),
        se=jnp.where(bad, nan, se),
        sigma=jnp.where(bad, nan, sigma),
        rss=jnp.where(bad, nan, rss),
        df=df,
        sxx=sxx,
    )


def wls_intercept(x, y, w, mask) -> InterceptFit:
    """Weighted least squares with intercept over the masked entries.

    With weighted means ``xm, ym``, ``Sxx = sum(w (x-xm)^2)``: ``b = sum(w (x-xm)(y-ym)) / Sxx``,
    ``a = ym - b xm``, ``sigma^2 = sum(w (y - a - b x)^2) / (n-2)``,
    ``se_b = sigma / sqrt(Sxx)``, ``se_a = sigma * sqrt(1/sum(w) + xm^2/Sxx)`` — R
    ``summary(lm(y ~ x, weights = w))``. NaN where the design is collinear (``Sxx = 0``).
    """
    w = jnp.where(mask, w, 0.0)
    n = jnp.sum(mask)
    sw = jnp.sum(w)
    xm = jnp.sum(w * x) / _safe(sw)
    ym = jnp.sum(w * y) / _safe(sw)
    dx = jnp.where(mask, x - xm, 0.0)
    dy = jnp.where(mask, y - ym, 0.0)
    sxx = jnp.sum(w * dx * dx)
    b = jnp.sum(w * dx * dy) / _safe(sxx)
    a = ym - b * xm
    resid = jnp.where(mask, dy - b * dx, 0.0)
    rss = jnp.sum(w * resid * resid)
    df = n - 2
    sigma = jnp.sqrt(rss / jnp.where(df > 0, df, jnp.nan))
    se_b = sigma / jnp.sqrt(_safe(sxx))
    se_a = sigma * jnp.sqrt(1.0 / _safe(sw) + xm * xm / _safe(sxx))
    bad = (sxx == 0) | (sw == 0)
    nan = jnp.nan
    return InterceptFit(
        a=jnp.where(bad, nan, a),
        se_a=jnp.where(bad, nan, se_a),
        b=jnp.where(bad, nan, b),
        se_b=jnp.where(bad, nan, se_b),
        sigma=jnp.where(bad, nan, sigma),
        rss=jnp.where(bad, nan, rss),
        df=df,
        sxx=sxx,
    )
