"""Faster forwards switched into a model's layer classes for qrr's own passes only: torch's fused RMSNorm, and
decoder layers compiled by ``torch.compile`` with their code cached on disk. Every other call to the model (the
recipe, a caller's own) runs the plain forward."""

from __future__ import annotations

import contextlib
import contextvars
import functools
from pathlib import Path

# Set while qrr's own forward passes run (per thread): the model's RMSNorms then take torch's fused kernel.
_FUSED_NORMS = contextvars.ContextVar("qrr_fused_norms", default=False)
# Set while qrr's row passes run on an engine that compiled its layers: the decoder layers then run compiled.
_COMPILED = contextvars.ContextVar("qrr_compiled", default=False)


@contextlib.contextmanager
def switched_on(fused_norms: bool, compiled: bool):
    """Within this block (in this thread), the model's RMSNorms take the fused kernel where ``fused_norms``, and its
    decoder layers run compiled where ``compiled`` (and ``compile_layers`` compiled them)."""
    token = _FUSED_NORMS.set(fused_norms)
    layers = _COMPILED.set(compiled)
    try:
        yield
    finally:
        _COMPILED.reset(layers)
        _FUSED_NORMS.reset(token)


def compile_cache_dir() -> Path:
    """Where ``TransformerEngine.compile`` keeps compiled code by default: ``$XDG_CACHE_HOME/qrr/compile``."""
    import os

    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "qrr" / "compile"


def inductor_cache_chosen() -> bool:
    """Whether ``TORCHINDUCTOR_CACHE_DIR`` names a folder someone chose: importing ``torch._dynamo`` (transformers
    does, loading a model) writes torch's own default there, a folder in the temporary directory that is often
    wiped, which must not count."""
    import os

    chosen = os.environ.get("TORCHINDUCTOR_CACHE_DIR")
    if not chosen:
        return False
    try:
        from torch._inductor.runtime.cache_dir_utils import default_cache_dir

        default = default_cache_dir()
    except ImportError:  # another torch: its default as torch 2.5-2.13 make it
        import getpass
        import tempfile

        default = os.path.join(tempfile.gettempdir(), f"torchinductor_{getpass.getuser()}")
    return os.path.abspath(chosen) != os.path.abspath(default)


def compile_layers(body) -> None:
    """Give the decoder layer classes of ``body`` a compiled forward for qrr's row passes (while ``_COMPILED`` is
    set); every other call runs the plain one. One compiled function per class takes the layer as an argument, and
    its index is a number rather than a constant (``allow_unspec_int_on_nn_module``), so all layers share its
    graphs."""
    import torch

    def switched(plain):
        compiled = torch.compile(plain, dynamic=True)
        return lambda self, *args, **kwargs: (compiled if _COMPILED.get() else plain)(self, *args, **kwargs)

    for cls in {type(layer) for layer in body.layers}:
        _wrap_forward(cls, "_qrr_compiled", switched)


def uncompile_layers(body) -> None:
    """Undo ``compile_layers``: the decoder layer classes of ``body`` get their plain forward back."""
    for cls in {type(layer) for layer in body.layers}:
        _unwrap_forward(cls, "_qrr_compiled")


def fuse_norms(body) -> None:
    """Give the RMSNorm classes of ``body`` torch's fused kernel for qrr's forward passes (while ``_FUSED_NORMS`` is
    set); every other call (the recipe, a caller's own) runs transformers' own norm."""
    import torch

    def switched(plain):
        def forward(self, hidden):
            # torch.compile fuses the plain norm itself, and cannot trace the ContextVar
            if torch.compiler.is_compiling():
                return plain(self, hidden)
            if _FUSED_NORMS.get() and hasattr(self, "variance_epsilon"):
                return torch.nn.functional.rms_norm(hidden, (hidden.shape[-1],), self.weight, self.variance_epsilon)
            return plain(self, hidden)

        return forward

    for cls in {type(m) for m in body.modules() if type(m).__name__.endswith("RMSNorm")}:
        _wrap_forward(cls, "_qrr_fused_norms", switched)


def _wrap_forward(cls, mark: str, switched) -> None:
    """Give ``cls`` the forward ``switched(plain)`` (qrr's passes choose, every other call runs ``plain``), once:
    ``mark`` says it is done. Per class, not per instance, so models stay copyable and picklable."""
    if mark in vars(cls):
        return
    cls.forward = functools.wraps(cls.forward)(switched(cls.forward))
    setattr(cls, mark, True)


def _unwrap_forward(cls, mark: str) -> None:
    """Undo ``_wrap_forward``: ``cls`` gets its plain forward back."""
    if mark in vars(cls):
        cls.forward = cls.forward.__wrapped__
        delattr(cls, mark)
