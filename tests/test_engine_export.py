"""Kernels kept between processes (``jax.export`` files in the compilation cache folder): the
loaded kernel gives the bits of the plain jit, traces nothing, and a bad file is re-exported."""

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest

from mrjax import engine
from mrjax.batch import make_instruments, trait_keys
from mrjax.estimators.common import Params

# Methods with and without bootstrap draws, in an order no other test uses.
METHODS = ("weighted_median", "ivw")


@pytest.fixture
def instruments():
    rng = np.random.default_rng(3)
    bx = rng.normal(0.1, 0.03, (4, 8))
    return make_instruments(bx, rng.uniform(0.01, 0.02, bx.shape), 0.3 * bx + rng.normal(0, 0.01, bx.shape),
                            rng.uniform(0.01, 0.02, bx.shape))


class _Traces:
    """Names of the functions JAX traces while the block runs."""

    def __init__(self):
        self.names = []

    def __call__(self, event, duration, **kwargs):
        if event == "/jax/core/compile/jaxpr_trace_duration":
            self.names.append(kwargs.get("fun_name"))

    def __enter__(self):
        jax.monitoring.register_event_duration_secs_listener(self)
        return self

    def __exit__(self, *exc):
        jax.monitoring.unregister_event_duration_listener(self)


def _panel(instruments):
    out = engine.run_methods(instruments, trait_keys(5, np.arange(4)), METHODS, Params(n_boot=20))
    return jax.tree_util.tree_leaves(jax.device_get(out))


def _same_bits(a, b):
    assert len(a) == len(b)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))
        assert np.asarray(x).dtype == np.asarray(y).dtype


def _new_process(monkeypatch, folder):
    """What a new process sees: no kernel in memory, the export folder ``folder``."""
    monkeypatch.setattr(engine, "_KERNELS", {})
    monkeypatch.setattr(engine, "_export_folder", lambda: folder)


def test_loaded_kernel_traces_nothing_and_gives_the_same_bits(instruments, tmp_path, monkeypatch):
    _new_process(monkeypatch, None)
    plain = _panel(instruments)
    _new_process(monkeypatch, tmp_path)
    exported = _panel(instruments)
    files = list(tmp_path.glob("*.pickle"))
    assert len(files) == 1
    _new_process(monkeypatch, tmp_path)
    with _Traces() as traces:
        loaded = _panel(instruments)
    assert "trait_methods" not in traces.names
    assert list(tmp_path.glob("*.pickle")) == files
    _same_bits(plain, exported)
    _same_bits(plain, loaded)


def test_unreadable_file_is_exported_again(instruments, tmp_path, monkeypatch):
    _new_process(monkeypatch, tmp_path)
    first = _panel(instruments)
    (path,) = tmp_path.glob("*.pickle")
    path.write_bytes(b"not a kernel")
    _new_process(monkeypatch, tmp_path)
    _same_bits(first, _panel(instruments))
    _new_process(monkeypatch, tmp_path)
    with _Traces() as traces:
        _same_bits(first, _panel(instruments))
    assert "trait_methods" not in traces.names


def _scaled(x, factor):
    return x * factor


def test_python_scalars_keep_their_weak_type(tmp_path, monkeypatch):
    x = jnp.ones((3, 2), dtype=jnp.float32)
    _new_process(monkeypatch, tmp_path)
    first = engine.map_traits(_scaled, (x,), (0.5,))
    _new_process(monkeypatch, tmp_path)
    loaded = engine.map_traits(_scaled, (x,), (0.5,))
    assert first.dtype == loaded.dtype == jnp.float32  # a Python float does not promote float32
    np.testing.assert_array_equal(np.asarray(loaded), 0.5)
    other = engine.map_traits(_scaled, (x,), (0.25,))  # the scalar is an argument, not compiled in
    np.testing.assert_array_equal(np.asarray(other), 0.25)
    assert len(list(tmp_path.glob("*.pickle"))) == 1
