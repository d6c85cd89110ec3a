"""The model card's transformers recipe, written plainly: full forward, full logits, log-softmax over [no, yes].

It is the score oracle: qrr must agree with it on the same weights.
"""

from __future__ import annotations

import copy

PREFIX = (
    "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
    'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n'
)
SUFFIX = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
TASK = "Given a web search query, retrieve relevant passages that answer the query"


class Oracle:
    def __init__(self, path, max_length: int = 8192):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(path, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(path, dtype=torch.float32).eval()
        self.max_length = max_length
        self.prefix_tokens = self.tokenizer.encode(PREFIX, add_special_tokens=False)
        self.suffix_tokens = self.tokenizer.encode(SUFFIX, add_special_tokens=False)
        self.true_id = self.tokenizer.convert_tokens_to_ids("yes")
        self.false_id = self.tokenizer.convert_tokens_to_ids("no")

    def score(self, pairs, instruction=None):
        import torch

        ids = recipe_ids(self.tokenizer, pairs, instruction, self.max_length, self.prefix_tokens, self.suffix_tokens)
        inputs = {"input_ids": ids}
        inputs = self.tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=self.max_length)
        with torch.no_grad():
            batch = self.model(**inputs).logits[:, -1, :]
            scores = torch.stack([batch[:, self.false_id], batch[:, self.true_id]], dim=1)
            return torch.nn.functional.log_softmax(scores, dim=1)[:, 1].exp().tolist()

    @classmethod
    def sharing(cls, other: Oracle) -> Oracle:
        """An oracle of this class on ``other``'s model and tokenizer (no second load)."""
        twin = copy.copy(other)
        twin.__class__ = cls
        return twin

    def with_max_length(self, max_length: int) -> Oracle:
        """The same model and tokenizer with another ``max_length``."""
        other = copy.copy(self)
        other.max_length = max_length
        return other


class VllmOracle(Oracle):
    """The model card's vLLM path run with transformers: system and user messages rendered and tokenized by the
    tokenizer's chat template, the token list cut to ``max_length - len(suffix)``, the suffix appended, and the
    next token's log-probabilities restricted to yes and no (vLLM's ``allowed_token_ids``) turned into
    ``exp(lp_yes) / (exp(lp_yes) + exp(lp_no))``."""

    SYSTEM = (
        "Judge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the "
        'answer can only be "yes" or "no".'
    )

    def score(self, pairs, instruction=None):
        import math

        import torch

        prompts = vllm_recipe_ids(self.tokenizer, pairs, instruction, self.max_length)
        inputs = self.tokenizer.pad({"input_ids": prompts}, padding=True, return_tensors="pt")
        with torch.no_grad():
            logits = self.model(**inputs).logits[:, -1, :].float()
        allowed = torch.full_like(logits, float("-inf"))
        allowed[:, [self.true_id, self.false_id]] = 0
        logprobs = torch.log_softmax(logits + allowed, dim=-1)
        scores = []
        for row in logprobs:
            true_score, false_score = math.exp(row[self.true_id]), math.exp(row[self.false_id])
            scores.append(true_score / (true_score + false_score))
        return scores


def recipe_ids(tokenizer, pairs, instruction=None, max_length: int = 8192, prefix_tokens=None, suffix_tokens=None):
    """The card's transformers recipe up to the model: each pair's token ids, the body cut to fit (the prefix's
    and suffix's tokens may be given: a test swaps the suffix)."""
    if prefix_tokens is None:
        prefix_tokens = tokenizer.encode(PREFIX, add_special_tokens=False)
    if suffix_tokens is None:
        suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)
    texts = [
        f"<Instruct>: {TASK if instruction is None else instruction}\n<Query>: {q}\n<Document>: {d}" for q, d in pairs
    ]
    inputs = tokenizer(
        texts,
        padding=False,
        truncation="longest_first",
        return_attention_mask=False,
        max_length=max_length - len(prefix_tokens) - len(suffix_tokens),
    )
    return [prefix_tokens + ele + suffix_tokens for ele in inputs["input_ids"]]


def vllm_recipe_ids(tokenizer, pairs, instruction=None, max_length: int = 8192) -> list[list[int]]:
    """The card's vLLM path up to the model: the messages rendered and tokenized by the chat template, cut to
    ``max_length - len(suffix)``, the suffix appended."""
    task = TASK if instruction is None else instruction  # the card's test: an empty instruction stays empty
    messages = [
        [
            {"role": "system", "content": VllmOracle.SYSTEM},
            {"role": "user", "content": f"<Instruct>: {task}\n\n<Query>: {q}\n\n<Document>: {d}"},
        ]
        for q, d in pairs
    ]
    rendered = tokenizer.apply_chat_template(
        messages, tokenize=True, add_generation_prompt=False, enable_thinking=False
    )
    # transformers 5 returns a BatchEncoding where the card's transformers 4 returned the id lists
    rendered = rendered["input_ids"] if hasattr(rendered, "keys") else rendered
    suffix_tokens = tokenizer.encode(SUFFIX, add_special_tokens=False)
    return [ele[: max_length - len(suffix_tokens)] + suffix_tokens for ele in rendered]
