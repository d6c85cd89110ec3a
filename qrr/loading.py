"""Loading a transformers checkpoint: one clear error for what cannot load or loads wrong, and no loading bar."""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path

from qrr.errors import ModelCheckError, QrrError, plural
from qrr.family import CAUSAL, SEQ_CLS


def load_transformer(path: Path, dtype, attn: str = "sdpa", kind: str = CAUSAL):
    """The transformers model at ``path`` (a causal LM, or with ``kind="seq-cls"`` a sequence classifier) in
    ``dtype``, with one clear error if it cannot load."""
    import transformers

    auto = transformers.AutoModelForSequenceClassification if kind == SEQ_CLS else transformers.AutoModelForCausalLM
    version = tuple(int(p) for p in transformers.__version__.split(".")[:2] if p.isdigit())
    dtype_kw = "dtype" if version >= (4, 56) else "torch_dtype"
    try:
        with _no_loading_bar():
            # transformers 5: mismatched tensors loaded as random numbers, then refused below with their shapes
            # (its own error pointed to a report it had logged, which qrr keeps quiet); transformers 4 lists names
            # only, and its error says the shapes
            model, info = auto.from_pretrained(
                path, **{dtype_kw: dtype}, attn_implementation=attn, output_loading_info=True,
                ignore_mismatched_sizes=version >= (5, 0),
            )  # fmt: skip
    except (OSError, ValueError, KeyError) as exc:
        raise QrrError(f"cannot load the model at {path}: {str(exc).splitlines()[0]}") from exc
    except RuntimeError as exc:
        if "mismatch" not in str(exc):  # out of memory, say: not the checkpoint's fault
            raise
        # transformers 4 says the mismatch on a line after "Error(s) in loading state_dict for Linear:"
        lines = [line.strip() for line in str(exc).strip().splitlines()]
        said = next((line for line in lines if "mismatch" in line), lines[0])
        raise ModelCheckError(f"{path}: the weights do not fit the shapes config.json gives ({said})") from exc
    mismatched = sorted(info.get("mismatched_keys") or ())
    if mismatched:
        first = mismatched[0]
        said = (f"{first[0]} is {list(first[1])} in the weights, {list(first[2])} by config.json"
                if isinstance(first, tuple) and len(first) == 3 else f"{first}")  # fmt: skip
        more = f" (and {len(mismatched) - 1} more)" if len(mismatched) > 1 else ""
        raise ModelCheckError(f"{path}: the weights do not fit the shapes config.json gives: {said}{more}")
    # transformers fills a missing tensor with random numbers and only logs it: the scores would mean nothing
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        # a model saved from inside its training wrapper: every name under the wrapper's attribute
        first = min(info.get("unexpected_keys") or [""])
        prefix = ""
        while first.partition(".")[0] in WRAPPERS:  # DistributedDataParallel around a compiled model: both
            prefix += first.partition(".")[0] + "."
            first = first.partition(".")[2]
        why = (f"its tensors' names start with '{prefix}' (saved from a training wrapper: DistributedDataParallel's "
               "module, torch.compile's _orig_mod): save the model it wraps (model.module, model._orig_mod)"
               if prefix else "an incomplete or wrongly converted checkpoint")  # fmt: skip
        raise ModelCheckError(
            f"{path}: the weights lack {plural(len(missing), 'tensor')} the model needs ({', '.join(missing[:3])}"
            f"{', ...' if len(missing) > 3 else ''}): {why}"
        )
    return model


# the attributes training wrappers keep their model under, which a state dict saved from a wrapper prefixes
WRAPPERS = ("module", "_orig_mod")


_LOADING = threading.Lock()
_loading = {"count": 0, "bar_was_on": False}


@contextlib.contextmanager
def _no_loading_bar():
    """transformers' "Loading weights" bar off while qrr loads a model: in an application's log it is a line of
    carriage returns per load, and the commands show loading themselves. Restored once the last concurrent load
    ends, so a caller's own setting outlives loads in several threads. Only transformers' own flag is turned:
    its ``disable_progress_bar()`` turns huggingface_hub's bars too, and enabling them again loses a caller's."""
    from transformers.utils import logging as hf_logging

    if not hasattr(hf_logging, "_tqdm_active"):  # another transformers: its bar stays as it is
        yield
        return
    with _LOADING:
        if _loading["count"] == 0:
            _loading["bar_was_on"] = hf_logging._tqdm_active
            hf_logging._tqdm_active = False
        _loading["count"] += 1
    try:
        yield
    finally:
        with _LOADING:
            _loading["count"] -= 1
            if _loading["count"] == 0:
                hf_logging._tqdm_active = _loading["bar_was_on"]
