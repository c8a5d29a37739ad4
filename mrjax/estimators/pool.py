"""Many independent iterations run in a fixed number of slots, each slot taking the next item
as soon as its own finishes.

``jax.vmap`` of a ``lax.while_loop`` steps every lane until the slowest has finished: where a
few of many fits need 60 steps and most need 2, nearly all the work is spent on lanes that are
already done. :func:`pooled_while` keeps ``slots`` lanes busy instead (the pattern of
:func:`mrjax.estimators.cml.pooled_fits_across`, written once for any loop): the work is about
the total number of steps taken plus ``slots`` times the longest, not ``items`` times it.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def _where(flag, new, old):
    """``new`` where ``flag`` (one per lane), else ``old``: a pytree select along the lane axis."""
    return jax.tree_util.tree_map(lambda n, o: jnp.where(flag.reshape(flag.shape + (1,) * (n.ndim - 1)), n, o), new, old)


def pooled_while(load, going, step, n_items: int, slots: int, total=None, keep=lambda s: s):
    """``keep(s)`` of the final state of ``while going(s): s = step(s)`` from ``s = load(i)``,
    for every item ``i < total`` (``total`` may be traced; default ``n_items``, the static
    bound): a pytree with leading axis ``n_items``, zeros for items at or past ``total``.

    ``load``, ``going``, ``step`` and ``keep`` are functions of one item (vmapped here);
    ``load`` and ``keep`` run for every slot each turn, so their cost counts like a step's
    (gathers are cheap; a Newton start, as in mv_cml, costs about a step). Item by item the result is
    that of its own loop, as under ``jax.vmap`` of ``lax.while_loop``: a step is applied only
    while its item's ``going`` holds, so caps and counters carried in the state keep their
    meaning. Every turn steps the ``slots`` lanes; a finished lane writes its item out and
    loads the next unstarted one.
    """
    slots = max(1, min(slots, n_items))
    total = jnp.asarray(n_items if total is None else total)
    lane = jnp.arange(slots)
    vgoing, vstep, vload, vkeep = jax.vmap(going), jax.vmap(step), jax.vmap(load), jax.vmap(keep)
    state = vload(jnp.minimum(lane, jnp.maximum(total - 1, 0)))
    out = jax.tree_util.tree_map(lambda a: jnp.zeros((n_items,) + a.shape[1:], a.dtype), vkeep(state))

    def turn(c):
        state, item, active, following, out = c
        state = _where(active & vgoing(state), vstep(state), state)
        done = active & ~vgoing(state)
        write_at = jnp.where(done, item, n_items)  # n_items: dropped
        out = jax.tree_util.tree_map(lambda o, v: o.at[write_at].set(v, mode="drop"), out, vkeep(state))
        fresh = following + jnp.cumsum(done) - 1
        take = done & (fresh < total)
        state = _where(take, vload(jnp.where(take, fresh, 0)), state)
        return state, jnp.where(take, fresh, item), (active & ~done) | take, following + jnp.sum(done), out

    start = (state, lane, lane < total, jnp.asarray(slots), out)
    return jax.lax.while_loop(lambda c: jnp.any(c[2]), turn, start)[4]
