"""Any NLI sequence classifier (``AutoModelForSequenceClassification`` with an "entailment" label, e.g. an MNLI /
ANLI DeBERTa or RoBERTa): P(supported) = the softmax probability of the entailment label for (premise = chunk,
hypothesis = claim), encoded as a text pair and truncated in the premise to 512 tokens. A long document is packed
into chunks of at most 400 tokens at sentence boundaries and the best chunk counts (the SummaC / MiniCheck
aggregation). No published LLM-AggreFact figure: the model is the user's choice.
"""
from __future__ import annotations

from selfalign.errors import ModelError
from selfalign.evals.verifiers.base import FactVerifier, load_pretrained, load_tokenizer, sentence_chunks, softmax

CHUNK_TOKENS = 400
MAX_LENGTH = 512


def entailment_index(id2label: dict, what: str) -> int:
    """The one label whose name starts with "entail" (ENTAILMENT, entailment; not "not_entailment")."""
    labels = {int(i): str(name) for i, name in (id2label or {}).items()}
    hits = [i for i, name in labels.items() if name.lower().startswith("entail")]
    if len(hits) != 1:
        raise ModelError(f"{what}: its labels {[labels[i] for i in sorted(labels)]} hold no single 'entailment' "
                         "label, so it is not an NLI classifier (MiniCheck: --verifier minicheck:MODEL)")
    return hits[0]


class NLI(FactVerifier):
    kind = "nli"

    def __init__(self, spec, model, tokenizer, batch_size: int = 8, entail: int = 0):
        super().__init__(spec, model, tokenizer, batch_size)
        self.entail = entail
        self.max_length = min(MAX_LENGTH, tokenizer.model_max_length or MAX_LENGTH)

    @classmethod
    def build(cls, spec, device="cpu", dtype="auto", batch_size=8, trust_remote_code=False, allow_pickle=False):
        from transformers import AutoModelForSequenceClassification

        what = f"verifier nli:{spec}"
        model = load_pretrained(AutoModelForSequenceClassification, spec, what, device=device, dtype=dtype,
                                trust_remote_code=trust_remote_code, allow_pickle=allow_pickle)
        entail = entailment_index(model.config.id2label, what)
        return cls(spec, model, load_tokenizer(spec, what, trust_remote_code), batch_size, entail)

    def chunks(self, document: str) -> list[str]:
        return sentence_chunks(document, CHUNK_TOKENS,
                               lambda s: len(self.tok(s, add_special_tokens=False)["input_ids"]))

    def score_batch(self, documents, claims):
        enc = self.tok(list(documents), list(claims), truncation="only_first", max_length=self.max_length,
                       padding=True, return_tensors="pt").to(self.model.device)
        return softmax(self.model(**enc).logits)[:, self.entail].tolist()
