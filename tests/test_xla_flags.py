"""mrjax.xla_flags: the flags mrjax needs are added to XLA_FLAGS, a user's own choice is kept."""

import os

from mrjax import xla_flags


def test_apply_adds_every_default_once(monkeypatch):
    monkeypatch.delenv("XLA_FLAGS", raising=False)
    xla_flags.apply()
    xla_flags.apply()
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_cpu_enable_concurrency_optimized_scheduler=false", "--xla_cpu_prefer_vector_width=512"]


def test_apply_keeps_the_users_flags_and_values(monkeypatch):
    monkeypatch.setenv("XLA_FLAGS", "--xla_force_host_platform_device_count=4 --xla_cpu_prefer_vector_width=256")
    xla_flags.apply()
    flags = os.environ["XLA_FLAGS"].split()
    assert flags == ["--xla_force_host_platform_device_count=4", "--xla_cpu_prefer_vector_width=256",
                     "--xla_cpu_enable_concurrency_optimized_scheduler=false"]
