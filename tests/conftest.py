"""Offline test assets: a tiny random Llama and a byte-level BPE tokenizer, built once per session."""
from __future__ import annotations

import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")

# tiny models: one thread is ~20x faster than two on a shared 2-core machine (thread sync dominates)
import torch  # noqa: E402

torch.set_num_threads(1)

CORPUS = [
    "Question: What is the capital of France?\nProposed Answer: Paris.\nIs the proposed answer:\n A. True\n B. False\n"
    "The proposed answer is: A",
    "The quick brown fox jumps over the lazy dog. A B C D True False Answer Question",
    "Interpret each question literally, and answer a question about the real world.",
] * 20
CHAT_TEMPLATE = ("{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
                 "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")


def build_tiny(path, seed: int = 0, chat: bool = True):
    """Save a tiny random LlamaForCausalLM + tokenizer to ``path`` (a valid model spec)."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE())
    tk.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tk.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=400, special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    tk.train_from_iterator(CORPUS, trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, eos_token="<|im_end|>", pad_token="<|endoftext|>",
                                  bos_token="<|endoftext|>")
    if chat:
        tok.chat_template = CHAT_TEMPLATE
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
                      tie_word_embeddings=True)
    model = LlamaForCausalLM(cfg)
    model.save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny(tmp_path_factory.mktemp("tiny-llama"))


@pytest.fixture(scope="session")
def tiny_engine(tiny_model_dir):
    from selfalign.engines.hf import HFEngine

    return HFEngine.from_spec(tiny_model_dir, batch_size=3, device="cpu")


@pytest.fixture
def prompts_file(tmp_path):
    import json

    path = tmp_path / "prompts.jsonl"
    qs = ["What is the capital of France?", "Who wrote Hamlet?", "What is two plus two?",
          "Which planet is largest?", "What color is the sky on a clear day?"]
    path.write_text("".join(json.dumps({"id": f"q{i}", "question": q}) + "\n" for i, q in enumerate(qs)))
    return path


@pytest.fixture
def tmp_data_root(tmp_path, monkeypatch):
    """The test's folder as the data root ($SELFALIGN_DATA): the input files a recipe names there may be read
    (run.confine: a recipe reads files in its run folder or the data root only)."""
    monkeypatch.setenv("SELFALIGN_DATA", str(tmp_path))
    return tmp_path


class Cli:
    """`selfalign …` as a child process (offline), and the kill -9 the resume tests need."""

    def __init__(self):
        self.env = {**os.environ, "HF_HUB_OFFLINE": "1"}  # the environment now (a test's SELFALIGN_DATA included)

    @staticmethod
    def cmd(*args) -> list[str]:
        import sys

        return [sys.executable, "-m", "selfalign.cli", *map(str, args)]

    def kill_when(self, cmd: list[str], ready, timeout: float = 120.0) -> None:
        """Start ``cmd``; SIGKILL it as soon as ``ready()`` is true (polled every 20 ms) or after ``timeout``."""
        import subprocess
        import time

        proc = subprocess.Popen(cmd, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + timeout
        while time.time() < deadline and proc.poll() is None and not ready():
            time.sleep(0.02)
        proc.kill()
        proc.wait()

    def run(self, cmd: list[str]):
        import subprocess

        return subprocess.run(cmd, env=self.env, capture_output=True, text=True)


@pytest.fixture
def cli():
    return Cli()


def n_lines(path) -> int:
    """Lines in a file (0 when it does not exist yet)."""
    return len(path.read_text().splitlines()) if path.exists() else 0


def build_metaspace(path, seed=0):
    """A tiny Llama with a SentencePiece-style tokenizer (Metaspace pre-tokenizer, '▁' marks a word start)."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    tk = Tokenizer(models.BPE(unk_token="<unk>"))
    tk.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    tk.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="first")
    trainer = trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "<s>", "</s>"])
    tk.train_from_iterator(CORPUS + ["A", "B", " A", " B", "▁A ▁B"], trainer)
    tok = PreTrainedTokenizerFast(tokenizer_object=tk, bos_token="<s>", eos_token="</s>", pad_token="</s>",
                                  unk_token="<unk>")
    torch.manual_seed(seed)
    cfg = LlamaConfig(vocab_size=len(tok), hidden_size=32, intermediate_size=64, num_hidden_layers=3,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=2048,
                      bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)
    LlamaForCausalLM(cfg).save_pretrained(path, safe_serialization=True)
    tok.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="session")
def metaspace_dir(tmp_path_factory):
    return build_metaspace(tmp_path_factory.mktemp("metaspace"))


@pytest.fixture
def filled_cache(tmp_path, monkeypatch):
    """$SELFALIGN_CACHE in tmp_path with one entry of each kind; (root, the content-keyed model folder)."""
    import json

    from selfalign import model_cache as C

    root = tmp_path / "cache"
    monkeypatch.setenv("SELFALIGN_CACHE", str(root))
    src = tmp_path / "m.Q4_1.gguf"
    src.write_bytes(b"GGUF-content")
    good = C.dequantized_dir(src)
    good.mkdir(parents=True)
    (good / "config.json").write_text("{}")
    (good / C.SOURCE_FILE).write_text(json.dumps(C.source_record(src)))
    legacy = root / "models" / "m.Q4_1-0123456789ab"  # keyed by a path, by an older selfalign
    legacy.mkdir()
    (legacy / "config.json").write_text("{}")
    (legacy / C.SOURCE_FILE).write_text(json.dumps({"gguf": "/old/venv/m.Q4_1.gguf"}))
    (root / "models" / "m.Q4_1-0123456789ab.tmp4242").mkdir()  # a conversion that did not finish
    (root / "gguf" / "abcdef123456").mkdir(parents=True)
    (root / "gguf" / "abcdef123456" / "q.gguf").write_bytes(b"q" * 10)
    (root / "data" / "truthfulqa").mkdir(parents=True)
    return root, good


def pytest_terminal_summary(terminalreporter):
    """The property suite's case count (tests/test_property_inputs.py), when it ran."""
    import sys

    props = sys.modules.get("test_property_inputs")
    if props is not None and props.COUNTS:
        terminalreporter.write_line(props.summary())
