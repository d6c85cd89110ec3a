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

        texts = [f"<Instruct>: {instruction or TASK}\n<Query>: {q}\n<Document>: {d}" for q, d in pairs]
        inputs = self.tokenizer(
            texts,
            padding=False,
            truncation="longest_first",
            return_attention_mask=False,
            max_length=self.max_length - len(self.prefix_tokens) - len(self.suffix_tokens),
        )
        for i, ele in enumerate(inputs["input_ids"]):
            inputs["input_ids"][i] = self.prefix_tokens + ele + self.suffix_tokens
        inputs = self.tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=self.max_length)
        with torch.no_grad():
            batch = self.model(**inputs).logits[:, -1, :]
            scores = torch.stack([batch[:, self.false_id], batch[:, self.true_id]], dim=1)
            return torch.nn.functional.log_softmax(scores, dim=1)[:, 1].exp().tolist()

    def with_max_length(self, max_length: int) -> Oracle:
        """The same model and tokenizer with another ``max_length``."""
        other = copy.copy(self)
        other.max_length = max_length
        return other
