"""Tokenization rules shared by the engines that hold a local tokenizer (hf, vllm)."""
from __future__ import annotations

from typing import Callable, Sequence


def encode(tok, text: str) -> list[int]:
    """Token ids of a prompt; a chat-templated string already carries its special tokens."""
    bos = tok.bos_token
    special = not (bos and text.startswith(bos))
    return tok(text, add_special_tokens=special)["input_ids"]


TAIL = 64  # characters of a prompt's end that decide how a following letter tokenizes


def choice_ids(tok, prompt: str, choice: str) -> list[int]:
    """The token ids of ``choice`` as it follows ``prompt`` in context: the last token of encode(prompt + choice) and
    of encode(prompt + " " + choice), deduplicated, each kept only when the choice adds exactly one token and leaves
    the prompt's own tokens unchanged. This one definition serves every P(True) reader and SK-Tuning's training.

    Only the prompt's last ``TAIL`` characters are encoded: a letter's tokenization depends on the text just before it.
    A SentencePiece (Metaspace) tokenizer encodes "A" and " A" alike out of context; in context they differ."""
    tail = prompt[-TAIL:]
    base = tok.encode(tail, add_special_tokens=False)
    ids: list[int] = []
    for s in (choice, " " + choice):
        full = tok.encode(tail + s, add_special_tokens=False)
        if len(full) == len(base) + 1 and full[:len(base)] == base and full[-1] not in ids:
            ids.append(full[-1])
    if not ids:
        from selfalign.errors import SelfAlignError

        raise SelfAlignError(f"{choice!r} is not a single token after the prompt's end ({tail[-20:]!r}) for this "
                             "tokenizer: P(True) needs one-token answer letters")
    return ids


def token_variants(tok, choice: str) -> list[int]:
    """Single-token ids of a choice with and without a leading space (" A" and "A")."""
    ids: list[int] = []
    for s in (choice, " " + choice):
        enc = tok.encode(s, add_special_tokens=False)
        if len(enc) == 1 and enc[0] not in ids:
            ids.append(enc[0])
    if not ids:
        raise ValueError(f"choice {choice!r} is not a single token for this tokenizer")
    return ids


def continuation_split(encode_fn: Callable[[str], list[int]], pairs: Sequence[tuple[str, str]]):
    """(full token ids, number of continuation tokens) per (context, continuation) pair.

    lm-evaluation-harness's rule: trailing spaces of the context belong to the continuation, the pair is tokenized
    jointly, and the continuation is what lies past the context's own tokens."""
    seqs, n_cont = [], []
    for ctx, cont in pairs:
        n_space = len(ctx) - len(ctx.rstrip(" "))
        if n_space:
            ctx, cont = ctx[:-n_space], ctx[-n_space:] + cont
        full = encode_fn(ctx + cont)
        n = len(full) - len(encode_fn(ctx))
        if n <= 0:
            raise ValueError(f"empty continuation for context ending {ctx[-30:]!r}")
        seqs.append(full)
        n_cont.append(n)
    return seqs, n_cont


class TextMixin:
    """Text helpers shared by engines that hold a HF tokenizer as ``self.tok`` and a ``self._variant_cache`` dict."""

    def has_chat_template(self) -> bool:
        return bool(getattr(self.tok, "chat_template", None))

    def chat_prompt(self, user_message: str) -> str:
        return self.tok.apply_chat_template([{"role": "user", "content": user_message}], tokenize=False,
                                            add_generation_prompt=True)

    def encode(self, text: str) -> list[int]:
        return encode(self.tok, text)

    def token_variants(self, choice: str) -> list[int]:
        if choice not in self._variant_cache:
            self._variant_cache[choice] = token_variants(self.tok, choice)
        return self._variant_cache[choice]

    def choice_ids(self, prompt: str, choice: str) -> list[int]:
        """``choice_ids`` (the in-context definition), cached by the prompt's tail."""
        key = (prompt[-TAIL:], choice)
        if key not in self._variant_cache:
            self._variant_cache[key] = choice_ids(self.tok, prompt, choice)
        return self._variant_cache[key]
