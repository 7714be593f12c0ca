"""MiniCheck (Tang, Laban & Durrett, EMNLP 2024): fact-checkers of a claim against a grounding document.

Called as the authors call them (github Liyan06/MiniCheck, minicheck/inference.py ``Inferencer`` and
minicheck/minicheck.py ``MiniCheck.score``):

- ``lytang/MiniCheck-Flan-T5-Large``, a seq2seq model: input ``"predict: " + chunk + eos + claim`` (eos ``</s>``),
  at most 2048 tokens (truncated); one decoder step from the start token (MiniCheck passes zeros, T5's pad = start);
  P(supported) = softmax over the logits of the tokens that begin "0" and "1", the "1" column. For T5's vocabulary
  those are ids 3 (``▁``: T5 has no ``▁0``) and 209 (``▁1``), the ids MiniCheck hard-codes; here they are read from
  the tokenizer. Chunks of at most 500 whitespace words.
- ``lytang/MiniCheck-RoBERTa-Large`` and ``lytang/MiniCheck-DeBERTa-v3-Large``, sequence classifiers (2 labels,
  1 = supported): input ``chunk + eos + claim`` as one text (eos ``</s>`` / ``[SEP]``), at most 512 (RoBERTa) or
  2048 (DeBERTa) tokens; P(supported) = softmax(logits)[1]. Chunks of at most 400 tokenizer tokens.

A long document is split into sentences and packed into chunks (``base.pack``); a claim's score is its best
chunk's (max), which is ``max_support_prob``; MiniCheck labels a claim supported when it is above 0.5.

Weights: all three hub repositories hold ``pytorch_model.bin`` (a pickle) rather than safetensors, so loading them
from the hub needs ``--allow-pickle``; or convert them once (``save_pretrained`` writes safetensors) and pass the
directory.
"""
from __future__ import annotations

from selfalign.errors import ModelError
from selfalign.evals.verifiers.base import (FactVerifier, Published, load_config, load_pretrained, load_tokenizer,
                                            sentence_chunks, softmax)

# LLM-AggreFact leaderboard (llm-aggrefact.github.io, 11 datasets): its Average column is the mean of the per-dataset
# balanced accuracies to one decimal (read from a copy of the site's source, github rin2401/llm-aggrefact,
# src/app/data.tsx and src/components/Leaderboard.tsx ``calculateAverage``). Third-party tables cite 72.6 for
# DeBERTa-L (likely the paper's 10-dataset figure); the leaderboard page's own 11-dataset mean is used here.
LEADERBOARD = "leaderboard, mean of its 11 datasets"
PUBLISHED = {
    "lytang/MiniCheck-Flan-T5-Large": Published("MiniCheck-Flan-T5-L", 75.0, LEADERBOARD),
    "lytang/MiniCheck-RoBERTa-Large": Published("MiniCheck-RoBERTa-L", 73.5, LEADERBOARD),
    "lytang/MiniCheck-DeBERTa-v3-Large": Published("MiniCheck-DeBERTa-L", 73.1, LEADERBOARD),
}
MAX_LENGTH = {"t5": 2048, "roberta": 512, "deberta-v2": 2048}  # MiniCheck's max_model_len defaults
CHUNK_WORDS = 500   # Flan-T5: whitespace words per chunk
CHUNK_TOKENS = 400  # RoBERTa / DeBERTa: tokenizer tokens per chunk


def first_token(tok, text: str) -> int:
    ids = tok(text, add_special_tokens=False)["input_ids"]
    if not ids:
        raise ModelError(f"the tokenizer encodes {text!r} as nothing: not MiniCheck's T5 vocabulary")
    return ids[0]


class MiniCheck(FactVerifier):
    kind = "minicheck"
    DEFAULT = "lytang/MiniCheck-Flan-T5-Large"
    PUBLISHED = PUBLISHED

    def __init__(self, spec, model, tokenizer, batch_size: int = 8):
        super().__init__(spec, model, tokenizer, batch_size)
        self.seq2seq = bool(model.config.is_encoder_decoder)
        self.max_length = MAX_LENGTH.get(model.config.model_type, 512)
        # (id of "0"'s first token, id of "1"'s first token): the not-supported and supported columns
        self.label_ids = (first_token(tokenizer, "0"), first_token(tokenizer, "1")) if self.seq2seq else None

    @classmethod
    def build(cls, spec, device="cpu", dtype="auto", batch_size=8, trust_remote_code=False, allow_pickle=False):
        from transformers import AutoModelForSeq2SeqLM, AutoModelForSequenceClassification

        what = f"verifier minicheck:{spec}"
        seq2seq = bool(getattr(load_config(spec, what, trust_remote_code), "is_encoder_decoder", False))
        model = load_pretrained(AutoModelForSeq2SeqLM if seq2seq else AutoModelForSequenceClassification, spec, what,
                                device=device, dtype=dtype, trust_remote_code=trust_remote_code,
                                allow_pickle=allow_pickle)
        if not seq2seq and model.config.num_labels != 2:
            raise ModelError(f"{what}: a MiniCheck classifier has 2 labels (1 = supported), this one has "
                             f"{model.config.num_labels}; for an NLI model use --verifier nli:{spec}")
        return cls(spec, model, load_tokenizer(spec, what, trust_remote_code), batch_size)

    def _tokens(self, sentence: str) -> int:
        return len(self.tok(sentence, add_special_tokens=False, truncation=True,
                            max_length=self.max_length)["input_ids"])

    def chunks(self, document: str) -> list[str]:
        if self.seq2seq:
            return sentence_chunks(document, CHUNK_WORDS, lambda s: len(s.split()))
        return sentence_chunks(document, CHUNK_TOKENS, self._tokens)

    def score_batch(self, documents, claims):
        import torch

        texts = [d + self.tok.eos_token + c for d, c in zip(documents, claims)]
        if self.seq2seq:
            texts = ["predict: " + t for t in texts]
        enc = self.tok(texts, max_length=self.max_length, truncation=True, padding=True,
                       return_tensors="pt").to(self.model.device)
        if not self.seq2seq:
            return softmax(self.model(**enc).logits)[:, 1].tolist()
        cfg = self.model.config
        start = cfg.decoder_start_token_id if cfg.decoder_start_token_id is not None else (cfg.pad_token_id or 0)
        dec = torch.full((len(texts), 1), start, dtype=torch.long, device=self.model.device)
        logits = self.model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"],
                            decoder_input_ids=dec).logits[:, 0, :]
        return softmax(logits, self.label_ids)[:, 1].tolist()
