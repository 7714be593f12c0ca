"""Vectara's HHEM-2.1-Open (``vectara/hallucination_evaluation_model``): a Flan-T5-base token classifier that
reads (premise, hypothesis) and gives P(consistent).

It ships its own model code (``modeling_hhem_v2.py``, ``HHEMv2ForSequenceClassification``), so loading it runs
code from the hub: only with ``--trust-remote-code``, never by default. Called as its model card and that code do
(``predict``): the pair is rendered into its config's prompt, by default
``"<pad> Determine if the hypothesis is true given the premise?\\n\\nPremise: {text1}\\n\\nHypothesis: {text2}"``,
tokenized by the tokenizer of its ``foundation`` (google/flan-t5-base) without truncation (HHEM-2.1 has no
context limit), the T5 token-classification logits of the first position are softmaxed and column 1 (consistent)
is the score. One chunk: the whole document. Read in the model's code (hub repository
vectara/hallucination_evaluation_model, ``modeling_hhem_v2.py``: ``HHEMv2ForSequenceClassification.predict`` and
``forward``) and its model card (README.md there).

Offline: the hub repository, and google/flan-t5-base whose config and tokenizer its code loads, must be in the HF
cache (``HF_HUB_OFFLINE=1``); or copy the repository to a directory, set ``foundation`` in its config.json to a
local flan-t5-base directory and pass ``--verifier hhem:DIR``.
"""
from __future__ import annotations

from selfalign.errors import ModelError
from selfalign.evals.verifiers.base import FactVerifier, Published, load_pretrained, load_tokenizer, softmax

PROMPT = "<pad> Determine if the hypothesis is true given the premise?\n\nPremise: {text1}\n\nHypothesis: {text2}"
# as stated in issue 31 and cited from the LLM-AggreFact leaderboard by third-party comparisons (not found in the
# leaderboard source copy read for MiniCheck's figures, which predates HHEM's row)
PUBLISHED = {"vectara/hallucination_evaluation_model": Published("HHEM-2.1-Open", 71.8, "leaderboard")}


class HHEM(FactVerifier):
    kind = "hhem"
    DEFAULT = "vectara/hallucination_evaluation_model"
    PUBLISHED = PUBLISHED
    needs_remote_code = True

    def __init__(self, spec, model, tokenizer, batch_size: int = 8, prompt: str = PROMPT):
        super().__init__(spec, model, tokenizer, batch_size)
        self.prompt = prompt

    @classmethod
    def build(cls, spec, device="cpu", dtype="auto", batch_size=8, trust_remote_code=False, allow_pickle=False):
        from transformers import AutoModelForSequenceClassification

        what = f"verifier hhem:{spec}"
        if not trust_remote_code:
            raise ModelError(f"{what} runs the model's own code from its repository: pass --trust-remote-code if "
                             "you trust it")
        model = load_pretrained(AutoModelForSequenceClassification, spec, what, device=device, dtype=dtype,
                                trust_remote_code=True, allow_pickle=allow_pickle)
        tok = getattr(model, "tokenzier", None)  # (sic) HHEM's code loads its foundation's tokenizer under this name
        if tok is None:
            foundation = getattr(model.config, "foundation", None)
            if not isinstance(foundation, str) or not foundation:
                raise ModelError(f"{what}: its config names no foundation model (whose tokenizer HHEM uses)")
            tok = load_tokenizer(foundation, f"{what} foundation")
        tok.padding_side = "right"  # the score is read at the first position
        prompt = getattr(model.config, "prompt", None)
        return cls(spec, model, tok, batch_size, prompt if isinstance(prompt, str) and prompt else PROMPT)

    def score_batch(self, documents, claims):
        texts = [self.prompt.format(text1=d, text2=c) for d, c in zip(documents, claims)]
        enc = self.tok(texts, padding=True, return_tensors="pt").to(self.model.device)
        logits = self.model(**enc).logits
        if logits.dim() == 3:  # the bare T5 token classifier: HHEM's forward keeps the first position
            logits = logits[:, 0, :]
        return softmax(logits)[:, 1].tolist()
