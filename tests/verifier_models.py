"""Tiny models of the fact-check verifiers' architectures, built offline for tests/evals/test_verifiers.py: a
character tokenizer, a Flan-T5 (MiniCheck-T5, HHEM's foundation), RoBERTa / DeBERTa-v2 sequence classifiers, and an
HHEM-shaped token classifier shipped with its own code (loaded only with trust_remote_code)."""
import json
import string

import torch

CHARS = string.ascii_letters + string.digits + string.punctuation + " "

def _char_tokenizer(specials: dict, eos: str, template: str, **named):
    """A character-level BPE tokenizer with a Metaspace pre-tokenizer ("▁" starts a word) and one merge, ▁ + 1
    -> ▁1, so that "1" is the single token ▁1 and "0" is ▁ then 0: T5's layout (ids 209 and 3 there)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = dict(specials)
    for ch in ["▁", *CHARS.replace(" ", ""), "▁1"]:
        vocab.setdefault(ch, len(vocab))
    tk = Tokenizer(models.BPE(vocab=vocab, merges=[("▁", "1")], unk_token=named.get("unk_token", "<unk>")))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    tk.post_processor = processors.TemplateProcessing(
        single=template, pair=template.replace("$A", "$A $B") if "$B" not in template else template,
        special_tokens=[(t, vocab[t]) for t in specials if t in template])
    return PreTrainedTokenizerFast(tokenizer_object=tk, eos_token=eos, **named), vocab


def build_t5(path, seed=0):
    """A tiny Flan-T5-shaped seq2seq model (pad 0 = decoder start, eos 1) and its tokenizer (eos appended)."""
    from transformers import T5Config, T5ForConditionalGeneration

    tok, vocab = _char_tokenizer({"<pad>": 0, "</s>": 1, "<unk>": 2}, "</s>", "$A </s>", pad_token="<pad>",
                                 unk_token="<unk>")
    torch.manual_seed(seed)
    cfg = T5Config(vocab_size=len(vocab), d_model=16, d_kv=4, d_ff=32, num_layers=1, num_decoder_layers=1,
                   num_heads=2, pad_token_id=0, eos_token_id=1, decoder_start_token_id=0)
    T5ForConditionalGeneration(cfg).save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), vocab


def build_encoder(path, arch="roberta", labels=None, seed=0):
    """A tiny RoBERTa or DeBERTa-v2 sequence classifier (``labels``: its id2label; default MiniCheck's 0 / 1)."""
    from transformers import (DebertaV2Config, DebertaV2ForSequenceClassification, RobertaConfig,
                              RobertaForSequenceClassification)

    labels = labels or {0: "0", 1: "1"}
    common = dict(hidden_size=16, num_hidden_layers=1, num_attention_heads=2, intermediate_size=32,
                  num_labels=len(labels), id2label=labels, label2id={v: k for k, v in labels.items()})
    torch.manual_seed(seed)
    if arch == "roberta":
        tok, vocab = _char_tokenizer({"<s>": 0, "<pad>": 1, "</s>": 2, "<unk>": 3}, "</s>", "<s> $A </s>",
                                     bos_token="<s>", pad_token="<pad>", unk_token="<unk>")
        model = RobertaForSequenceClassification(RobertaConfig(vocab_size=len(vocab), max_position_embeddings=600,
                                                               pad_token_id=1, bos_token_id=0, eos_token_id=2,
                                                               **common))
    else:
        tok, vocab = _char_tokenizer({"[PAD]": 0, "[CLS]": 1, "[SEP]": 2, "[UNK]": 3}, "[SEP]", "[CLS] $A [SEP]",
                                     cls_token="[CLS]", sep_token="[SEP]", pad_token="[PAD]", unk_token="[UNK]")
        model = DebertaV2ForSequenceClassification(DebertaV2Config(vocab_size=len(vocab), pad_token_id=0,
                                                                   max_position_embeddings=512, **common))
    model.save_pretrained(path)
    tok.save_pretrained(path)
    return str(path), vocab


CONFIG_PY = '''from transformers import PretrainedConfig


class TinyHHEMConfig(PretrainedConfig):
    model_type = "tinyhhem"

    def __init__(self, foundation="", **kwargs):
        super().__init__(**kwargs)
        self.foundation = foundation
'''
MODELING_PY = '''from transformers import AutoConfig, PreTrainedModel, T5ForTokenClassification

from .configuration_tinyhhem import TinyHHEMConfig


class TinyHHEMForSequenceClassification(PreTrainedModel):
    """HHEM's shape: a T5 token classifier under ``t5``; forward keeps the first position's 2 logits."""
    config_class = TinyHHEMConfig

    def __init__(self, config):
        super().__init__(config)
        inner = AutoConfig.from_pretrained(config.foundation)
        inner.num_labels = 2
        self.t5 = T5ForTokenClassification(inner)
        self.post_init()

    def forward(self, **kwargs):
        out = self.t5(**kwargs)
        out.logits = out.logits[:, 0, :]
        return out
'''


def build_hhem(path, foundation):
    from safetensors.torch import save_file
    from transformers import AutoConfig, T5ForTokenClassification

    path.mkdir()
    (path / "configuration_tinyhhem.py").write_text(CONFIG_PY)
    (path / "modeling_tinyhhem.py").write_text(MODELING_PY)
    (path / "config.json").write_text(json.dumps({
        "model_type": "tinyhhem", "architectures": ["TinyHHEMForSequenceClassification"], "foundation": foundation,
        "auto_map": {"AutoConfig": "configuration_tinyhhem.TinyHHEMConfig",
                     "AutoModelForSequenceClassification": "modeling_tinyhhem.TinyHHEMForSequenceClassification"}}))
    inner = AutoConfig.from_pretrained(foundation)
    inner.num_labels = 2
    torch.manual_seed(0)
    sd = T5ForTokenClassification(inner).state_dict()
    save_file({f"t5.{k}": v.clone().contiguous() for k, v in sd.items()}, str(path / "model.safetensors"))
    return str(path)
