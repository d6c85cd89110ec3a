"""The Qwen3-Reranker family: its template, the checkpoints that hold it, its sizes."""

from __future__ import annotations

import pytest

from qrr.errors import ModelCheckError
from qrr.family import ALIASES, CAUSAL, QWEN3, SEQ_CLS


def test_template_and_answer_tokens():
    assert QWEN3.format_body("q", "d", "task") == "<Instruct>: task\n<Query>: q\n<Document>: d"
    assert QWEN3.format_body("q", "d").startswith(f"<Instruct>: {QWEN3.default_instruction}\n")
    # the model card's task, word for word: another changes every score
    assert QWEN3.default_instruction == "Given a web search query, retrieve relevant passages that answer the query"
    assert (QWEN3.yes, QWEN3.no) == ("yes", "no")
    assert QWEN3.suffix == "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"


def test_a_text_formatted_as_the_prompt_is_told_by_its_markers_at_its_ends():
    # vLLM's example: the query after the prefix, the document before the suffix
    assert QWEN3.framed("<|im_start|>system\nJudge whether ...<Query>: capital?\n") == "<|im_start|>"
    assert QWEN3.framed("<Document>: Beijing.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n") == (
        "<Document>:"
    )
    assert QWEN3.framed("Beijing.<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n") == "</think>"
    assert QWEN3.framed("Beijing.<|im_end|> ") == "<|im_end|>"
    assert QWEN3.framed("\n <Query>: capital?") == "<Query>:"
    assert QWEN3.framed(" " * 100 + "\ufeff<|im_start|>system") == "<|im_start|>"  # a byte order mark is no text
    assert QWEN3.framed("d<|im_end|>\n<|im_start|>assistant\n" + " " * 100) == "<|im_start|>assistant"
    # a marker inside a text is one it speaks of (a page about chat templates), not its frame
    for text in ("Qwen's chat template closes each turn with <|im_end|>, and opens one with <|im_start|>.",
                 "the prompt ends <Document>: and the document", "<think>", "Beijing", ""):  # fmt: skip
        assert QWEN3.framed(text) is None, text


def test_checkpoint_kinds():
    assert QWEN3.head({"model_type": "qwen3", "architectures": ["Qwen3ForCausalLM"]}) == CAUSAL
    converted = {"model_type": "qwen3", "architectures": ["Qwen3ForSequenceClassification"], "id2label": {"0": "L"}}
    assert QWEN3.head(converted) == SEQ_CLS
    with pytest.raises(ModelCheckError, match="a sequence classifier with 2 labels"):
        QWEN3.head({**converted, "id2label": {"0": "a", "1": "b"}})
    # transformers 5 saves a two-label classifier with neither field (2 is its default): its "no" row was scored
    two = {"model_type": "qwen3", "architectures": ["Qwen3ForSequenceClassification"]}
    with pytest.raises(ModelCheckError) as caught:
        QWEN3.head(two)
    assert str(caught.value) == ("config.json: a sequence classifier with 2 labels; a converted reranker has one "
                                 "score row (num_labels=1), lm_head[yes] - lm_head[no]")  # fmt: skip
    assert QWEN3.head({**two, "num_labels": 1}) == SEQ_CLS
    with pytest.raises(ModelCheckError) as caught:  # a fine-tune's config without its architecture: the fix named
        QWEN3.head({"model_type": "qwen3"})
    assert str(caught.value) == ('config.json describes qwen3 (no architecture), not a Qwen3-Reranker causal LM or '
                                 'converted sequence classifier; where its weights hold no score.weight, set '
                                 '"architectures": ["Qwen3ForCausalLM"] in it')  # fmt: skip
    with pytest.raises(ModelCheckError, match=r"describes llama \(LlamaForCausalLM\), not a Qwen3-Reranker"):
        QWEN3.head({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})


def test_max_positions_reads_the_config_unless_rope_scaling_stretches_it():
    assert QWEN3.max_positions({"max_position_embeddings": 40960}) == 40960
    yarn = {"max_position_embeddings": 40960, "rope_scaling": {"rope_type": "yarn", "factor": 4.0}}
    assert QWEN3.max_positions(yarn) is None  # YaRN: longer prompts than the config names
    plain = {"max_position_embeddings": 40960, "rope_scaling": None, "rope_parameters": {"rope_type": "default"}}
    assert QWEN3.max_positions(plain) == 40960  # as the hub's configs and transformers 5's say "none"
    assert QWEN3.max_positions({}) is None


def test_aliases_point_at_the_family_sizes():
    assert {alias: size.repo for alias, (family, size) in ALIASES.items() if family is QWEN3} == {
        "0.6b": "Qwen/Qwen3-Reranker-0.6B",
        "4b": "Qwen/Qwen3-Reranker-4B",
        "8b": "Qwen/Qwen3-Reranker-8B",
    }


def test_shapes_match_the_reference():
    # REFERENCE.md: 0.596 B, 4.02 B, 8.19 B parameters; 0.88, 7.3, 13.9 GFLOP per token
    for size, params, gflop in (("0.6b", 0.596e9, 0.88), ("4b", 4.02e9, 7.3), ("8b", 8.19e9, 13.9)):
        assert QWEN3.total_params(size) == pytest.approx(params, rel=0.01)
        assert 2 * QWEN3.sizes[size].non_embedding_params() / 1e9 == pytest.approx(gflop, rel=0.02)


def test_config_of_a_size():
    config = QWEN3.config("8b")
    assert (config.model_type, config.hidden_size, config.num_hidden_layers, config.tie_word_embeddings) == (
        "qwen3",
        4096,
        36,
        False,
    )
    assert config.vocab_size == 151_669 and config.rope_parameters["rope_theta"] == 1_000_000.0
