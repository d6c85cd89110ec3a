"""The Qwen3-Reranker model family in one place: its prompt recipes, its answer tokens, the checkpoints that can
hold it and the shapes of its sizes. Aliases (``0.6b``, ``4b``, ``8b``) point at the family's sizes.

The model card gives two recipes, which score differently:

- ``transformers`` (the default): the prompt written by hand, ``prefix + body + suffix``, single newlines between
  the instruction, query and document; only the body is cut to fit ``max_length``.
- ``vllm``: a system and a user message rendered by the tokenizer's chat template, double newlines in the user
  message; the whole token list is cut to ``max_length - len(suffix)`` and the same suffix appended (so the user
  turn's end marker appears twice, as the card writes it). Qwen's published MTEB-R figures were computed this way.

A third, ``vllm-template``, is the prompt of vLLM's ``qwen3_reranker.jinja`` template (its score API with that
template, and its MTEB regression check): the ``transformers`` prompt, but Jinja drops the template file's
trailing newline, so the suffix ends ``</think>\n`` instead of ``</think>\n\n``.

Two kinds of checkpoint hold the same scorer:

- ``causal``: the published ``Qwen3ForCausalLM``; the score is ``sigmoid(logit_yes - logit_no)`` at the last
  position, from the rows ``yes`` and ``no`` of ``lm_head``.
- ``seq-cls``: the converted ``Qwen3ForSequenceClassification`` that vLLM and others publish
  (``tomaarsen/Qwen3-Reranker-0.6B-seq-cls``): one score row, ``lm_head[yes] - lm_head[no]``, read as
  ``sigmoid(logit)``. Same prompt, same scores.

Nothing here imports torch.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from qrr.errors import InputError, NotAModelError

CAUSAL, SEQ_CLS = "causal", "seq-cls"


@dataclass(frozen=True)
class Size:
    """One published size: its hub repo and the config fields that differ between sizes."""

    repo: str
    shape: Mapping[str, Any]

    def non_embedding_params(self) -> int:
        """Weights that every token multiplies through (attention and MLP)."""
        s = self.shape
        h, inter, layers = s["hidden_size"], s["intermediate_size"], s["num_hidden_layers"]
        q = s["num_attention_heads"] * s["head_dim"]
        kv = s["num_key_value_heads"] * s["head_dim"]
        return layers * (h * (q + 2 * kv) + q * h + 3 * h * inter)


@dataclass(frozen=True)
class Recipe:
    """How a pair becomes a prompt. ``body`` holds ``{instruction}``, ``{query}`` and ``{document}``. Without
    ``chat`` it stands between the family's prefix and suffix and alone is cut to fit; with ``chat`` it is the user
    message after the family's system message, the tokenizer's chat template renders both, and the rendered tokens
    are cut to fit before the suffix."""

    name: str
    body: str
    chat: bool = False
    suffix: str | None = None  # where it differs from the family's


@dataclass(frozen=True)
class Family:
    """A family of yes/no rerankers: how a pair becomes a prompt, and which checkpoints hold the scorer."""

    name: str
    model_type: str
    system: str  # the system message: what the model is asked to judge
    recipes: Mapping[str, Recipe]
    suffix: str
    default_instruction: str
    yes: str
    no: str
    vocab_size: int
    common_config: Mapping[str, Any]
    sizes: Mapping[str, Size] = field(default_factory=dict)
    special_tokens: tuple[str, ...] = ()  # the prompt's markers, each one token of a whole tokenizer
    # what a text formatted as the prompt already starts or ends with
    start_markers: tuple[str, ...] = ()
    end_markers: tuple[str, ...] = ()

    @property
    def causal_architecture(self) -> str:
        """The causal LM's class name, as config.json's ``architectures`` gives it."""
        return self.common_config["architectures"][0]

    @property
    def prefix(self) -> str:
        """What comes before the body in a hand-written prompt: the system turn and the start of the user turn."""
        return f"<|im_start|>system\n{self.system}<|im_end|>\n<|im_start|>user\n"

    def framed(self, text: str) -> str | None:
        """The marker of this family's prompt that ``text`` (a query or document) starts or ends with, as one
        formatted as the prompt already does (vLLM's Qwen3-Reranker example formats its own); ``None`` for none. A
        marker inside a text is one it speaks of (a page about chat templates), not its frame."""
        # a document of megabytes is not copied; a byte order mark is no text either
        head, tail = text[:256].lstrip().lstrip("\ufeff").lstrip(), text[-256:].rstrip()
        return next((m for m in self.start_markers if head.startswith(m)), None) or next(
            (m for m in self.end_markers if tail.endswith(m)), None
        )

    def recipe(self, name: str) -> Recipe:
        """The recipe called ``name`` (``InputError`` naming the recipes there are)."""
        if name not in self.recipes:
            *others, last = self.recipes
            raise InputError(f"{{recipe}} {name!r} is unknown: use {', '.join(others)} or {last}", "recipe")
        return self.recipes[name]

    def format_body(
        self, query: str, document: str, instruction: str | None = None, recipe: str = "transformers"
    ) -> str:
        """The body (or user message) of ``recipe``, exactly as the model card formats it."""
        return self.recipe(recipe).body.format(
            instruction=self.default_instruction if instruction is None else instruction, query=query, document=document
        )

    def head(self, config: Mapping[str, Any], where: str = "config.json") -> str:
        """Which kind of checkpoint ``config`` (a parsed config.json) describes: ``causal`` or ``seq-cls``;
        ``NotAModelError`` for anything else."""
        model_type = config.get("model_type")
        architectures = config.get("architectures")  # a list of names; anything else names none
        architectures = [a for a in architectures if isinstance(a, str)] if isinstance(architectures, list) else []
        if model_type == self.model_type:
            if any(a.endswith("ForCausalLM") for a in architectures):
                return CAUSAL
            if any(a.endswith("ForSequenceClassification") for a in architectures):
                # transformers' default is 2 labels, and version 5 saves neither field for 2: its row 0 ("no"'s, in a
                # two-row conversion) was taken for the one score row, unsaid
                labels = len(config.get("id2label") or {}) or config.get("num_labels", 2)
                if labels != 1:
                    raise NotAModelError(f"{where}: a sequence classifier with {labels} labels; a converted reranker "
                                          "has one score row (num_labels=1), lm_head[yes] - lm_head[no]")  # fmt: skip
                return SEQ_CLS
        # a fine-tune's config written by hand, or by a tool that drops the field: its fix
        fix = (f'; where its weights hold no score.weight, set "architectures": ["{self.causal_architecture}"] in it'
               if model_type == self.model_type and not architectures else "")  # fmt: skip
        raise NotAModelError(
            f"{where} describes {model_type or 'an unknown model'} ({', '.join(architectures) or 'no architecture'}), "
            f"not a {self.name} causal LM or converted sequence classifier{fix}"
        )

    @staticmethod
    def max_positions(config: Mapping[str, Any]) -> int | None:
        """The longest prompt ``config`` (a parsed config.json) allows: its ``max_position_embeddings``; ``None``
        where unsaid, or where ``rope_scaling`` (or transformers 5's ``rope_parameters``) stretches the positions
        past it (YaRN, say) rather than leaving them as trained (``default``, or none)."""
        for key in ("rope_scaling", "rope_parameters"):
            rope = config.get(key)
            if isinstance(rope, Mapping) and rope.get("rope_type", rope.get("type", "default")) != "default":
                return None
        value = config.get("max_position_embeddings")
        return value if isinstance(value, int) else None

    def total_params(self, size: str) -> int:
        """Every weight of a size: the non-embedding ones, the embeddings and, where it is not tied, the head."""
        shape = self.sizes[size].shape
        head = 0 if shape["tie_word_embeddings"] else self.vocab_size * shape["hidden_size"]
        return self.sizes[size].non_embedding_params() + self.vocab_size * shape["hidden_size"] + head

    def size_of(self, config: Mapping) -> str | None:
        """Which of the sizes a config.json's fields (``config``) have the shape of; ``None`` for none."""
        fields = ("hidden_size", "num_hidden_layers", "intermediate_size")
        return next((n for n, s in self.sizes.items() if all(config.get(f) == s.shape[f] for f in fields)), None)

    def config(self, size: str, **overrides):
        """The transformers config of one of the family's sizes (random weights at the real shapes)."""
        from transformers import AutoConfig

        values = {"vocab_size": self.vocab_size, **self.common_config, **self.sizes[size].shape, **overrides}
        return AutoConfig.for_model(self.model_type, **values)


QWEN3 = Family(
    name="Qwen3-Reranker",
    model_type="qwen3",
    system=(
        "Judge whether the Document meets the requirements based on the Query and the Instruct provided. Note that "
        'the answer can only be "yes" or "no".'
    ),
    recipes={
        "transformers": Recipe("transformers", "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}"),
        "vllm": Recipe("vllm", "<Instruct>: {instruction}\n\n<Query>: {query}\n\n<Document>: {document}", chat=True),
        "vllm-template": Recipe("vllm-template", "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
                                suffix="<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n"),
    },
    suffix="<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",
    special_tokens=("<|im_start|>", "<|im_end|>", "<think>", "</think>"),
    start_markers=("<|im_start|>", "<Instruct>:", "<Query>:", "<Document>:"),
    end_markers=("<|im_end|>", "</think>", "<|im_start|>assistant"),
    default_instruction="Given a web search query, retrieve relevant passages that answer the query",
    yes="yes",
    no="no",
    vocab_size=151_669,
    # config.json of every size (REFERENCE.md): bf16 on disk, 40,960 positions, rope theta 1e6
    common_config={"max_position_embeddings": 40_960, "rope_theta": 1_000_000.0, "rms_norm_eps": 1e-6,
                   "architectures": ["Qwen3ForCausalLM"]},
    sizes={
        "0.6b": Size("Qwen/Qwen3-Reranker-0.6B", {
            "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28, "num_attention_heads": 16,
            "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": True}),
        "4b": Size("Qwen/Qwen3-Reranker-4B", {
            "hidden_size": 2560, "intermediate_size": 9728, "num_hidden_layers": 36, "num_attention_heads": 32,
            "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": True}),
        "8b": Size("Qwen/Qwen3-Reranker-8B", {
            "hidden_size": 4096, "intermediate_size": 12288, "num_hidden_layers": 36, "num_attention_heads": 32,
            "num_key_value_heads": 8, "head_dim": 128, "tie_word_embeddings": False}),
    },
)  # fmt: skip


def run_settings(model: str | None, instruction: str | None, max_length: int, recipe: str,
                 dtype: str | None = None) -> dict:  # fmt: skip
    """How a run scores, as a --resume file's record keeps it (``Reranker.settings``, the commands' before a model
    loads): the model's key, the instruction as its text (the default's too, so that giving it changes nothing),
    max length, recipe and dtype (its name: ``bf16``; ``None`` where not known)."""
    instruction = QWEN3.default_instruction if instruction is None else instruction
    return {"model": model, "instruction": instruction, "max_length": max_length, "recipe": recipe, "dtype": dtype}


DEFAULT_MAX_LENGTH = 8192
DEFAULT_RECIPE = "transformers"
# Aliases name a (family, size); one family today.
ALIASES: dict[str, tuple[Family, Size]] = {alias: (QWEN3, size) for alias, size in QWEN3.sizes.items()}
