"""Where compiled code is cached (the compiled layers themselves are tested through the engine, in test_engine.py)."""

from __future__ import annotations


def test_the_inductor_cache_counts_as_chosen_only_where_it_is_not_torchs_default(monkeypatch, tmp_path):
    import os

    from torch._inductor.runtime.cache_dir_utils import default_cache_dir

    from qrr.compiling import inductor_cache_chosen

    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", os.path.abspath(default_cache_dir()))
    assert not inductor_cache_chosen()
    monkeypatch.delenv("TORCHINDUCTOR_CACHE_DIR")
    assert not inductor_cache_chosen()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", "")
    assert not inductor_cache_chosen()
    monkeypatch.setenv("TORCHINDUCTOR_CACHE_DIR", str(tmp_path))
    assert inductor_cache_chosen()
