"""The one jit/vmap edge: every compiled device call of mrjax starts here.

Estimators, diagnostics, MR-PRESSO, the permutation test and the simulation generator are
written per trait (or per replicate): ``fn(row..., shared..., **static)`` on ``[width]``
arrays. :func:`map_traits` vmaps such a function over the leading trait axis and jits it once
per (function, static settings, shapes, dtype, device); nothing else in the library calls
``jax.jit``. A method may also have a batched form (``Method.batched``: cML pools its fits
across the traits of a call, robust IVW/Egger their lmrob refinements), equal to its per-trait
function trait by trait; :func:`batch_methods` runs those on the whole batch, through :func:`map_batch`.

Methods: each method draws from ``fold_in(trait_key, method_salt(method_id))`` — except the
median and the mode families, whose members share one draw set keyed by
``method_salt("median")`` / ``method_salt("mode")`` and are computed in one pass (TwoSampleMR's
``mr_mode`` likewise uses one set of bootstrap draws for the simple and weighted mode). Either
way, adding or removing a method never changes another method's random numbers, and a trait's
key depends only on the seed and the trait.

Float64: :func:`ensure_x64` turns on ``jax_enable_x64`` the first time the engine (or
:mod:`mrjax.batch`, which makes the device arrays) runs, not when ``mrjax`` is imported.

Devices: when JAX sees several devices (:func:`devices`, limited by :func:`set_devices`),
whole calls are spread over them. A call keeps the shape it has on one device, so its results
are the same bit for bit whatever the number of devices; splitting one call's trait axis
across devices would not be (XLA's CPU code for the incomplete beta and gamma functions,
whose continued fractions iterate until the whole array has converged, differs in the last
bit between a ``[T, K]`` and a ``[T/4, K]`` array: measured). The unit spread is the bucket
(panel, diagnostics, MR-PRESSO; :class:`mrjax.batch.BucketPolicy` splits large scans into
buckets of bounded size) and the chunk (simulation replicates, permutations). A call goes to
device ``slot % n`` when the caller numbers its calls (``slot=``), otherwise each new shape
takes the next device, so repeated calls reuse their compiled code.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import os
import pickle
import tempfile
import threading
import zlib
from pathlib import Path
from typing import Callable

import jax
import jax.numpy as jnp

from mrjax import diagnostics
from mrjax.batch import Instruments
from mrjax.estimators.common import Estimate, Params
from mrjax.estimators.median import MedianPanel, median_estimates
from mrjax.estimators.mode import ModePanel, mode_estimates
from mrjax.methods import METHODS, resolve

# Families computed in one pass from one shared draw set: (per-trait function, member ids).
FAMILIES = {
    "median": (median_estimates, MedianPanel._fields),
    "mode": (mode_estimates, ModePanel._fields),
}


def method_salt(method_id: str) -> int:
    """Stable 32-bit integer of a method id (CRC-32), folded into the trait key."""
    return zlib.crc32(method_id.encode("utf-8"))


# --------------------------------------------------------------------------------------------
# Float64 and devices


def ensure_x64() -> None:
    """Turn on ``jax_enable_x64`` (results must agree with R in float64; float32 is asked for
    per call). Idempotent and cheap; called before any device array is made."""
    if not jax.config.jax_enable_x64:
        jax.config.update("jax_enable_x64", True)


_device_limit: int | None = None
_shape_devices: dict = {}
_lock = threading.Lock()


def set_devices(n: int | None) -> None:
    """Use at most the first ``n`` local devices (``None``: every device JAX sees)."""
    global _device_limit
    if n is not None:
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise ValueError(f"devices must be a positive integer or None, got {n!r}")
        available = len(jax.local_devices())
        if n > available:
            raise ValueError(f"devices={n} but JAX sees {available} device(s): {jax.local_devices()}")
    _device_limit = n


def devices() -> tuple:
    """The local devices the engine spreads its calls over."""
    return tuple(jax.local_devices()[:_device_limit])


def _place(per_trait, static, args, slot):
    """``args`` on the device of this call (unchanged when there is one device)."""
    devs = devices()
    if len(devs) == 1:
        return args
    if slot is None:
        shapes = tuple((a.shape, str(a.dtype)) for a in jax.tree_util.tree_leaves(args) if hasattr(a, "shape"))
        with _lock:
            slot = _shape_devices.setdefault((per_trait, static, shapes, len(devs)), len(_shape_devices))
    device = devs[slot % len(devs)]
    # Python scalars stay weakly typed (as on one device): only arrays are committed
    return jax.tree_util.tree_map(lambda a: jax.device_put(a, device) if hasattr(a, "shape") else a, args)


# --------------------------------------------------------------------------------------------
# The edge


_KERNELS: dict = {}  # (per_trait, in_axes, static) -> _Kernel


def _compiled(per_trait: Callable, in_axes: tuple, static: tuple):
    key = (per_trait, in_axes, static)
    with _lock:
        if key not in _KERNELS:
            _KERNELS[key] = _Kernel(per_trait, in_axes, static)
        return _KERNELS[key]


def _export_folder() -> Path | None:
    """Where traced-and-lowered kernels are kept between processes: ``mrjax-exported`` in JAX's
    persistent compilation cache folder when that cache is on (``mrjax_cli`` turns it on by
    default), otherwise nowhere."""
    folder = jax.config.jax_compilation_cache_dir
    return Path(folder) / "mrjax-exported" if folder else None


@functools.cache
def _code_version() -> str:
    """SHA-256 of the versions of JAX and mrjax and of every source file of the ``mrjax``
    package: a kernel exported by other code is never loaded."""
    import jaxlib

    from mrjax import __version__

    digest = hashlib.sha256(f"{jax.__version__} {jaxlib.__version__} {__version__}".encode())
    root = Path(__file__).resolve().parent
    for path in sorted(root.rglob("*.py")):
        digest.update(str(path.relative_to(root)).encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


class _Kernel:
    """``jax.jit(jax.vmap(per_trait))``, kept across processes when :func:`_export_folder` is set.

    The persistent compilation cache skips XLA's compilation, not the tracing and lowering of
    the Python function (seconds for the method panel). With a folder, the first call of each
    argument signature exports the kernel (``jax.export``: the lowered StableHLO, serialised)
    to a file named by the SHA-256 of the function, its static settings, the argument tree,
    shapes, dtypes and weak types, the JAX configuration that changes the lowering, and
    :func:`_code_version`; later processes load the file and only compile it (a cache hit) —
    the same module, so the same bits (tests/test_engine_export.py). Files are written
    atomically (temporary file, then ``os.replace``), so processes may share the folder; a
    file that cannot be read is exported again.
    """

    def __init__(self, per_trait: Callable, in_axes: tuple, static: tuple):
        fn = functools.partial(per_trait, **dict(static)) if static else per_trait
        self.name = f"{per_trait.__module__}.{per_trait.__qualname__}"
        self.in_axes, self.static = in_axes, static
        self.jitted = jax.jit(fn if in_axes is None else jax.vmap(fn, in_axes=in_axes))  # None: fn takes the batch
        self._loaded: dict = {}  # signature -> (jitted Exported.call, output tree)

    def __call__(self, *args):
        folder = _export_folder()
        if folder is None:
            return self.jitted(*args)
        leaves, tree = jax.tree_util.tree_flatten(args)
        avals = tuple(jax.typeof(leaf) for leaf in leaves)
        signature = (tree, tuple((a.shape, a.dtype, a.weak_type) for a in avals))
        with _lock:
            entry = self._loaded.get(signature, False)
        if entry is False:
            entry = self._load(folder, tree, avals)
            with _lock:
                self._loaded[signature] = entry
        if entry is None:
            return self.jitted(*args)
        call, out_tree = entry
        return jax.tree_util.tree_unflatten(out_tree, call(*leaves))

    def _load(self, folder: Path, tree, avals) -> tuple | None:
        """``(jitted Exported.call, output tree)`` from the folder, exported first if absent;
        ``None`` where the kernel cannot be exported (then it runs as a plain jit)."""
        from jax import export

        settings = (self.name, self.in_axes, self.static, str(tree), avals, jax.config.jax_enable_x64,
                    jax.config.jax_default_matmul_precision, jax.default_backend(), _code_version())
        path = folder / f"{hashlib.sha256(repr(settings).encode()).hexdigest()}.pickle"
        try:
            blob, out_tree = pickle.loads(path.read_bytes())
            exported = export.deserialize(blob)
        except Exception:  # absent, or written by something else: export it (again)
            jitted, trees = self.jitted, []

            def flat(*leaves):
                out, out_tree = jax.tree_util.tree_flatten(jitted(*jax.tree_util.tree_unflatten(tree, leaves)))
                trees.append(out_tree)
                return out

            structs = [jax.ShapeDtypeStruct(a.shape, a.dtype, weak_type=a.weak_type) for a in avals]
            try:
                exported = export.export(jax.jit(flat))(*structs)
                blob = exported.serialize()
            except Exception:  # e.g. an operation jax.export does not serialise
                return None
            out_tree = trees[0]
            _write_atomically(path, pickle.dumps((blob, out_tree)))
        return jax.jit(exported.call), out_tree

    def _cache_size(self) -> int:
        with _lock:
            loaded = list(self._loaded.values())
        return self.jitted._cache_size() + sum(entry[0]._cache_size() for entry in loaded if entry)


def _write_atomically(path: Path, data: bytes) -> None:
    """``data`` to ``path`` through a temporary file and ``os.replace``; a folder that cannot be
    written is no error (the kernel is exported again next time)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError, UnboundLocalError):
            os.unlink(tmp)


def map_traits(per_trait: Callable, batched: tuple, shared: tuple = (), *, slot: int | None = None, **static):
    """``per_trait(*row, *shared, **static)`` for every row of the leading axis of the
    ``batched`` arguments (pytrees such as :class:`~mrjax.batch.Instruments` or key arrays),
    in one jitted device call; ``shared`` arguments are traced but the same for every row,
    ``static`` ones (hashable) are compiled in. ``slot`` numbers the call within its caller's
    loop and picks its device (see the module docstring). Returns the outputs stacked over rows.
    """
    ensure_x64()
    static_items = tuple(sorted(static.items()))
    kernel = _compiled(per_trait, (0,) * len(batched) + (None,) * len(shared), static_items)
    return kernel(*_place(per_trait, static_items, (*batched, *shared), slot))


def map_batch(batch_fn: Callable, args: tuple, *, slot: int | None = None, **static):
    """``batch_fn(*args, **static)`` on the whole batch in one jitted device call: for the
    functions that vmap over traits themselves (:func:`batch_methods`); otherwise as
    :func:`map_traits` (devices, exported kernels)."""
    ensure_x64()
    static_items = tuple(sorted(static.items()))
    return _compiled(batch_fn, None, static_items)(*_place(batch_fn, static_items, args, slot))


def compiled_shapes(per_trait: Callable) -> int:
    """How many executables the engine holds for ``per_trait`` (over every static setting,
    shape and device; ``jax.jit``'s cache size): a test's window on compilation."""
    with _lock:
        kernels = [fn for (fn_of, _, _), fn in _KERNELS.items() if fn_of is per_trait]
    return sum(fn._cache_size() for fn in kernels)


def _as_batch(instruments: Instruments, keys: jax.Array | None):
    """Lift a single trait (``[width]`` fields) to a batch of one."""
    if instruments.bx.ndim == 1:
        instruments = jax.tree_util.tree_map(lambda a: a[None], instruments)
        if keys is not None and keys.ndim == 0:
            keys = keys[None]
        return instruments, keys, True
    if instruments.bx.ndim != 2:
        raise ValueError(f"instruments must be [traits, width] or [width]; got shape {instruments.bx.shape}")
    return instruments, keys, False


# --------------------------------------------------------------------------------------------
# Methods


def trait_methods(t: Instruments, key, phi, penk, *, methods: tuple[str, ...], n_boot: int,
                  settings: Params = Params()) -> dict[str, Estimate]:
    """Every method of ``methods`` for one trait (``[width]`` fields): ``{method_id: Estimate}``.
    ``settings`` (static) carries every other method setting; ``phi`` and ``penk`` are traced."""
    params = settings._replace(n_boot=n_boot, phi=phi, penk=penk)
    families = {
        name: (fn, tuple(m for m in methods if m in members))
        for name, (fn, members) in FAMILIES.items()
    }
    in_family = {m for _, wanted in families.values() for m in wanted}
    out = {}
    for name, (fn, wanted) in families.items():
        if wanted:
            out.update(fn(t, jax.random.fold_in(key, method_salt(name)), params, wanted))
    for m in methods:
        if m not in in_family:
            out[m] = METHODS[m].fn(t, jax.random.fold_in(key, method_salt(m)), params)
    return {m: out[m] for m in methods}


def batch_methods(instruments: Instruments, keys, phi, penk, *, methods: tuple[str, ...], n_boot: int,
                  settings: Params = Params()) -> dict[str, Estimate]:
    """Every method of ``methods`` for a batch of traits (``[T, width]`` fields): those with a
    batched form (``Method.batched``) on the whole batch — equal to their per-trait function
    trait by trait, but free to pool work across traits — and the others as
    ``vmap(trait_methods)``. Each draws from ``fold_in(trait_key, method_salt(method))``."""
    params = settings._replace(n_boot=n_boot, phi=phi, penk=penk)
    pooled = tuple(m for m in methods if METHODS[m].batched)
    rest = tuple(m for m in methods if m not in pooled)
    out = {}
    if rest:
        per_trait = functools.partial(trait_methods, methods=rest, n_boot=n_boot, settings=settings)
        out.update(jax.vmap(per_trait, in_axes=(0, 0, None, None))(instruments, keys, phi, penk))
    for m in pooled:
        out[m] = METHODS[m].batch_fn(instruments, jax.vmap(jax.random.fold_in, (0, None))(keys, method_salt(m)), params)
    return {m: out[m] for m in methods}


def _run(instruments, keys, phi, penk, *, methods, n_boot, slot=None, settings=Params()):
    if any(METHODS[m].batched for m in methods):
        return map_batch(batch_methods, (instruments, keys, phi, penk), slot=slot, methods=methods, n_boot=n_boot,
                         settings=settings)
    return map_traits(trait_methods, (instruments, keys), (phi, penk), slot=slot, methods=methods, n_boot=n_boot,
                      settings=settings)


def run_methods(
    instruments: Instruments,
    keys: jax.Array,
    methods: tuple[str, ...],
    params: Params = Params(),
    *,
    slot: int | None = None,
) -> dict[str, Estimate]:
    """Run ``methods`` on every trait of ``instruments`` in one jitted call.

    ``instruments`` fields are ``[T, K]`` (or ``[K]`` for one trait), ``keys`` ``[T]`` per-trait
    PRNG keys (``mrjax.batch.trait_keys``). Returns ``{method_id: Estimate}`` with ``[T]``
    arrays (scalars for a single trait). ``params`` carries every method setting (see
    :class:`~mrjax.estimators.common.Params`). The computation runs in the dtype of the instruments
    (cast them with ``Instruments.astype(jnp.float32)`` for the float32 path).
    """
    ensure_x64()
    methods = resolve(methods)
    instruments, keys, single = _as_batch(instruments, keys)
    if keys.shape[0] != instruments.bx.shape[0]:
        raise ValueError(f"{keys.shape[0]} keys for {instruments.bx.shape[0]} traits; give one key per trait")
    dtype = instruments.bx.dtype
    out = _run(
        instruments,
        keys,
        jnp.asarray(params.phi, dtype=dtype),
        jnp.asarray(params.penk, dtype=dtype),
        methods=methods,
        n_boot=int(params.n_boot),
        slot=slot,
        # Every other setting is static; phi and penk (traced) are reset so they never recompile.
        settings=params._replace(phi=Params().phi, penk=Params().penk),
    )
    if single:
        out = jax.tree_util.tree_map(lambda a: a[0], out)
    return out


def run_diagnostics(instruments: Instruments, *, slot: int | None = None) -> diagnostics.Diagnostics:
    """Every per-trait diagnostic (heterogeneity of the five Q methods, Egger intercept,
    I²_GX, leave-one-out, single-SNP) for ``[T, K]`` instruments in one jitted call; see
    :class:`mrjax.diagnostics.Diagnostics` for the fields (``[T]`` or ``[T, K]``)."""
    instruments, _, single = _as_batch(instruments, None)
    out = map_traits(diagnostics.trait_diagnostics, (instruments,), slot=slot)
    if single:
        out = jax.tree_util.tree_map(lambda a: a[0], out)
    return out


# --- Multivariable MR (mrjax.mv): every analysis of a padded [A, S, K] batch in one call. ---


@functools.partial(jax.jit, static_argnames=("specs",))
def _run_mv(instruments, keys, *, specs):
    from mrjax.mv.registry import MV_METHODS

    # A method with a batched form (MVMethod.batched) takes the whole batch: equal to its
    # per-analysis function's vmap, but free to pool work across analyses.
    return tuple(MV_METHODS[s[0]].batch_fn(instruments, jax.vmap(jax.random.fold_in, (0, None))(keys, method_salt(s[0])),
                                           **dict(s[1]))
                 for s in specs)


def run_mv(instruments, keys: jax.Array, specs: tuple) -> dict:
    """Run MV method ``specs`` (``mrjax.mv.registry.resolve_specs``) on every analysis of a
    batched :class:`mrjax.mv.data.MVInstruments` (``[A, S, K]``) with ``[A]`` keys in one jitted
    call; returns ``{method_id: MVEstimate}`` with ``[A, K + 1]`` fields. Each method draws from
    ``fold_in(analysis_key, method_salt(method))``."""
    from mrjax.mv.registry import spec_name

    if keys.shape[0] != instruments.bx.shape[0]:
        raise ValueError(f"{keys.shape[0]} keys for {instruments.bx.shape[0]} analyses; give one key per analysis")
    # Named here, not in the jitted function: specs that compare equal (n=17723 and n=17723.0)
    # share its compiled form, and would share the first caller's names with it.
    return {spec_name(s): est for s, est in zip(specs, _run_mv(instruments, keys, specs=tuple(specs)))}


@functools.partial(jax.jit, static_argnames=("components",))
def _run_mv_strength(instruments, sigma, inv_nx, cor_x, components=None):
    from mrjax.mv import strength
    from mrjax.mv.fit import uncorrelated
    from mrjax.mv.pcgmm import pc_cond_f

    def one(t, s, u, c):
        st = strength.strength(t, s, u, c)
        if components is not None:
            pc, pcs = pc_cond_f(t, u, thres=components[0], r=components[1], cor_x=c)
            independent = uncorrelated(t)
            st = st._replace(cond_f=jnp.where(independent, st.cond_f, pc), pcs=jnp.where(independent, 0, pcs))
        return st, strength.pleiotropy(t, s)

    return jax.vmap(one)(instruments, sigma, inv_nx, cor_x)


def run_mv_strength(instruments, sigma: jax.Array, inv_nx=None, cor_x=None, components=None):
    """Conditional F (MVMR and the conditional-F minimum) and the MVMR Q of every analysis;
    ``sigma [A, S, K, K]`` the per-SNP covariance of the exposure effects; ``inv_nx [A, K]``
    (1 / exposure sample size, 0 = unknown) and ``cor_x [A, K, K]`` (default identity) for
    MendelianRandomization's ``CondFstat`` (``mrjax.mv.strength.condfstat_sigma``).
    ``components = (thres, r)``: analyses whose instruments are correlated (``rho`` not the
    identity) get ``mr_mvpcgmm``'s ``CondFstat`` on their principal components instead
    (``mrjax.mv.pcgmm.pc_cond_f``) and ``pcs``, the number of components (0 elsewhere)."""
    a, _, k = instruments.bx.shape
    inv_nx = jnp.zeros((a, k), instruments.bx.dtype) if inv_nx is None else jnp.asarray(inv_nx, instruments.bx.dtype)
    cor_x = jnp.broadcast_to(jnp.eye(k, dtype=instruments.bx.dtype), (a, k, k)) if cor_x is None else jnp.asarray(cor_x)
    return _run_mv_strength(instruments, sigma, inv_nx, cor_x, components=components)
