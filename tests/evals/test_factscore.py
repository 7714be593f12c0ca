"""BioGEN / FActScore-style evaluation: knowledge sources, retrieval, verification, penalty, abstention, resume."""
import json
import math
import re
import sqlite3
from pathlib import Path

import pytest

from selfalign import prompts as P

from selfalign import answering as prompting
from selfalign.data import data_root, load_prompts
from selfalign.engines.base import Generation
from selfalign.errors import InputError, SelfAlignError
from selfalign.evals.factscore import NO_KNOWLEDGE, BioGenEvalConfig, is_abstained, length_penalty, run_biogen_eval
from selfalign.evals.knowledge import SPECIAL_SEPARATOR, KnowledgeSource, chunk
from selfalign.selfeval.consistency import content_words

ASSETS = Path(__file__).parents[1] / "assets"
KNOWLEDGE = ASSETS / "bio_knowledge.jsonl"
ANSWERS = ASSETS / "bio_answers.jsonl"


class OverlapVerifier:
    """Deterministic stand-in verifier: P(True) = 1 when every content word of the fact occurs in the retrieved
    passages of the FActScore prompt, else 0.2 * the overlap fraction."""
    info = {"model": "overlap-verifier"}

    def has_chat_template(self):
        return False

    def choice_probs(self, prompts, choices):
        assert list(choices) == ["True", "False"]
        out = []
        for p in prompts:
            fact = re.search(r"\n\nInput: (.*) True or False\?\nOutput:$", p, re.S).group(1)
            ctx = " ".join(re.findall(r"Text: (.*?)(?=\n\nTitle: |\n\nInput: )", p, re.S))
            fw, cw = content_words(fact), content_words(ctx)
            ov = len(fw & cw) / len(fw) if fw else 0.0
            pt = 1.0 if ov == 1 else 0.2 * ov
            out.append([pt, 1 - pt])
        return out

    def generate(self, prompts, cfg, seed):  # self-consistency fallback: always answers "Yes"
        return [[Generation("Yes", 1)] * cfg.n for _ in prompts]


def _sqlite(path, rows, prebuilt=False):
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE documents (title PRIMARY KEY, text)")
    for r in rows:
        text = r["text"]
        if prebuilt or isinstance(text, list):  # FActScore's DB stores passages joined by its separator
            text = SPECIAL_SEPARATOR.join(chunk(text))
        conn.execute("INSERT INTO documents VALUES (?, ?)", (r["title"], text))
    conn.commit()
    conn.close()
    return path


@pytest.fixture
def sqlite_kb(tmp_path):
    return _sqlite(tmp_path / "kb.db", [json.loads(line) for line in KNOWLEDGE.read_text().splitlines()])


def _eval(tmp_path, name, engine, **kw):
    cfg = BioGenEvalConfig(output=str(tmp_path / f"{name}.json"), answers=str(ANSWERS), **kw)
    summary = run_biogen_eval(cfg, engine=engine)
    rows = [json.loads(line) for line in (tmp_path / f"{name}.rows.jsonl").read_text().splitlines()]
    return summary, rows


# --- FActScore's formulas and rules ---------------------------------------------------------------------------
def test_length_penalty_hand_values():
    assert length_penalty(5, 10) == pytest.approx(math.exp(-1))  # exp(1 - 10/5)
    assert length_penalty(4, 10) == pytest.approx(math.exp(1 - 2.5))
    assert length_penalty(1, 10) == pytest.approx(math.exp(-9))
    assert length_penalty(10, 10) == 1.0 and length_penalty(11, 10) == 1.0 and length_penalty(3, 0) == 1.0


def test_abstain_rules():
    assert is_abstained("I'm sorry, I don't know who that is.")
    assert is_abstained("Could you provide more context?")
    assert not is_abstained("Ann Lee is a painter. I'm sorry to say she died.")
    assert not is_abstained("I'm sorry.", "none")
    assert is_abstained("I could not find any information on Ann Lee.", "perplexity_ai")
    assert is_abstained("Ann Lee [1]. There is no information about her.\n\nMore.", "perplexity_ai")
    assert not is_abstained("Ann Lee is a painter [2].\n\nThere is no information on her youth.", "perplexity_ai")


def test_verify_prompt_matches_factscore_format():
    got = P.factscore_verify_prompt("Ann", [{"title": "Ann", "text": "best <s>one</s>"},
                                            {"title": "Ann", "text": "second one"}], " Ann sings. ")
    assert got == ("Answer the question about Ann based on the given context.\n\nTitle: Ann\nText: second one\n\n"
                   "Title: Ann\nText: best one.\n\nInput: Ann sings. True or False?\nOutput:")


# --- knowledge sources ----------------------------------------------------------------------------------------
def test_chunk_packs_like_factscore():
    words = [f"w{i}" for i in range(600)]
    assert [len(p.split()) for p in chunk(" ".join(words))] == [256, 256, 88]
    sents = [" ".join(words[i * 100:(i + 1) * 100]) for i in range(3)]
    got = chunk(sents)
    assert [len(p.split()) for p in got] == [256, 44] and got[1].split()[0] == "w256"


def test_sqlite_and_jsonl_sources_identical(tmp_path, sqlite_kb):
    j, s = KnowledgeSource(KNOWLEDGE), KnowledgeSource(sqlite_kb)
    assert (j.kind, s.kind) == ("jsonl", "sqlite")
    for title in ("Marta Ellingsen", "Tobias Quennell", "Aiko Varga", "Rafael Oduya"):
        assert j.passages(title) == s.passages(title) and j.passages(title)
        for fact in ("She was born in Tromsø.", "He played for Yorkshire.", "won 2012"):
            assert j.retrieve(title, fact, 2) == s.retrieve(title, fact, 2)
    assert j.passages("Nobody") == [] and s.retrieve("Nobody", "x") == []


def test_bm25_retrieval_order(tmp_path):
    kb = tmp_path / "kb.jsonl"
    kb.write_text(json.dumps({"title": "T", "text": ["alpha beta " * 130, "gamma delta " * 128, "gamma zeta"]}) + "\n")
    ks = KnowledgeSource(kb)
    # 260 words -> 256 + 4; the next 256 fill that passage up to 256 and spill 4; the last 2 join those 4
    assert [len(p["text"].split()) for p in ks.passages("T")] == [256, 256, 6]
    assert ks.retrieve("T", "zeta gamma", 1)[0]["idx"] == 2


def test_bad_knowledge_files(tmp_path):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"title": "A", "text": "x"}\n{"title": "B"}\n')
    with pytest.raises(InputError, match=r"bad.jsonl:2: missing field 'text'"):
        KnowledgeSource(bad)
    db = tmp_path / "other.db"
    sqlite3.connect(db).execute("CREATE TABLE t (a)").connection.commit()
    with pytest.raises(InputError, match="documents"):
        KnowledgeSource(db)
    with pytest.raises(InputError, match="not found"):
        KnowledgeSource(tmp_path / "none.db")


# --- the evaluator ----------------------------------------------------------------------------------------------
def test_truthful_bios_rank_higher_with_overlap_verifier(tmp_path):
    summary, rows = _eval(tmp_path, "jsonl", OverlapVerifier(), knowledge=str(KNOWLEDGE))
    by_id = {r["id"]: r for r in rows}
    for person in ("ellingsen", "quennell", "varga", "oduya"):
        t, f = by_id[f"{person}-true"], by_id[f"{person}-false"]
        assert t["score"] > f["score"] and t["init_score"] >= 0.75 and f["init_score"] == 0.0
    for r in rows:  # FActScore's per-response numbers, recomputed by hand from the decisions
        n = len(r["decisions"])
        ok = sum(d["is_supported"] for d in r["decisions"])
        assert (r["num_facts"], r["n_correct"], r["n_incorrect"]) == (n, ok, n - ok)
        assert r["init_score"] == pytest.approx(ok / n)
        assert r["score"] == pytest.approx(ok / n * (math.exp(1 - 10 / n) if n <= 10 else 1.0))
        assert all(d["is_supported"] == (d["p_true"] > 0.5) and len(d["passages"]) <= 5 for d in r["decisions"])
    fs = summary  # run's summary carries FActScore's aggregate fields
    assert fs["respond_ratio"] == 1.0 and fs["num_facts_per_response"] == pytest.approx(
        sum(r["num_facts"] for r in rows) / len(rows))
    assert fs["score"] == pytest.approx(sum(r["score"] for r in rows) / len(rows))
    saved = json.loads((tmp_path / "jsonl.json").read_text())
    assert saved["task"] == "biogen-factscore" and saved["metrics"]["score"]["value"] == pytest.approx(fs["score"])
    assert saved["factscore"]["score"] == pytest.approx(fs["score"]) and saved["gamma"] == 10
    assert saved["score_method"].startswith("factscore") and "versions" in saved["meta"]


def test_sqlite_and_jsonl_give_identical_rows(tmp_path, sqlite_kb):
    _, a = _eval(tmp_path, "a", OverlapVerifier(), knowledge=str(KNOWLEDGE))
    _, b = _eval(tmp_path, "b", OverlapVerifier(), knowledge=str(sqlite_kb))
    assert a == b


def test_resume_matches_fresh_run(tmp_path):
    kw = dict(knowledge=str(KNOWLEDGE), batch_size=2)
    first = run_biogen_eval(BioGenEvalConfig(output=str(tmp_path / "r.json"), answers=str(ANSWERS), limit=3, **kw),
                            engine=OverlapVerifier())
    assert first["new_responses"] == 3
    rest = run_biogen_eval(BioGenEvalConfig(output=str(tmp_path / "r.json"), answers=str(ANSWERS), **kw),
                           engine=OverlapVerifier())
    assert rest["new_responses"] == 5 and rest["responses"] == 8
    fresh, _ = _eval(tmp_path, "fresh", OverlapVerifier(), **kw)
    assert rest["score"] == pytest.approx(fresh["score"])
    assert len((tmp_path / "r.rows.jsonl").read_text().splitlines()) == 8


def test_abstained_and_missing_topics(tmp_path):
    ans = tmp_path / "a.jsonl"
    ans.write_text("\n".join(json.dumps(r) for r in [
        {"id": "a", "topic": "Aiko Varga", "response": "I'm sorry, I have no information about her."},
        {"id": "b", "question": "Tell me a bio of Nobody Known.", "response": "Nobody Known was a baker."},
        {"id": "c", "topic": "Aiko Varga", "response": "Aiko Varga is a Hungarian architect."}]) + "\n")
    s = run_biogen_eval(BioGenEvalConfig(output=str(tmp_path / "o.json"), answers=str(ans), knowledge=str(KNOWLEDGE)),
                        engine=OverlapVerifier())
    rows = {r["id"]: r for r in map(json.loads, (tmp_path / "o.rows.jsonl").read_text().splitlines())}
    assert rows["a"]["abstained"] and rows["a"]["respond"] == 0 and rows["a"]["score"] is None
    assert rows["b"]["knowledge_missing"] and rows["b"]["respond"] is None
    assert rows["c"]["score"] == pytest.approx(math.exp(1 - 10 / 1))
    assert s["respond_ratio"] == 0.5 and s["knowledge_missing"] == 1


def test_no_knowledge_falls_back_to_labelled_self_consistency(tmp_path, capsys):
    summary, rows = _eval(tmp_path, "nok", OverlapVerifier(), consistency_k=3)
    assert summary["score_method"] == NO_KNOWLEDGE and all(r["score_method"] == NO_KNOWLEDGE for r in rows)
    assert "no --knowledge" in capsys.readouterr().err
    assert all(d["is_supported"] for r in rows for d in r["decisions"])  # the fake always answers "Yes"
    assert json.loads((tmp_path / "nok.json").read_text())["score_method"] == NO_KNOWLEDGE


def test_bad_answers_file_names_line(tmp_path):
    ans = tmp_path / "a.jsonl"
    ans.write_text('{"id": "x", "topic": "A", "response": "r"}\n{"id": "y", "question": "Who?", "response": "r"}\n')
    with pytest.raises(InputError, match=r"a.jsonl:2: no topic"):
        run_biogen_eval(BioGenEvalConfig(output=str(tmp_path / "o.json"), answers=str(ans)), engine=OverlapVerifier())


def test_tiny_engine_mechanics_answers_and_generation(tiny_engine, tmp_path):
    summary, rows = _eval(tmp_path, "tiny", tiny_engine, knowledge=str(KNOWLEDGE), limit=2)
    assert len(rows) == 2 and summary["score_method"].startswith("factscore")
    for r in rows:
        assert r["decisions"] and all(0 <= d["p_true"] <= 1 and d["is_supported"] == (d["p_true"] > 0.5)
                                      for d in r["decisions"])
        assert 0 <= r["score"] <= r["init_score"] <= 1
    people = tmp_path / "people.jsonl"
    people.write_text("".join(json.dumps({"id": f"p{i}", "topic": t}) + "\n"
                              for i, t in enumerate(["Aiko Varga", "Rafael Oduya"])))
    cfg = BioGenEvalConfig(output=str(tmp_path / "gen.json"), input=str(people), knowledge=str(KNOWLEDGE),
                           max_new_tokens=12, chat_template="off")
    s = run_biogen_eval(cfg, engine=tiny_engine)
    gen = [json.loads(line) for line in (tmp_path / "gen.rows.jsonl").read_text().splitlines()]
    assert s["new_responses"] == 2 and all(r["template"] == "biogen" and "response" in r for r in gen)
    assert gen[0]["question"] == "Tell me a bio of Aiko Varga."


# --- BioGEN data ----------------------------------------------------------------------------------------------
needs_data = pytest.mark.skipif(data_root() is None or not (data_root() / "biogen").is_dir(),
                                reason="shared BioGEN data not available")


@needs_data
def test_biogen_splits_and_templates():
    from selfalign.data.biogen import fewshot_demos

    train, test, fs = (load_prompts("biogen", s) for s in ("train", "test", "factscore"))
    assert (len(train), len(test), len(fs)) == (50, 100, 500)
    assert train[0]["question"] == "Tell me a bio of Ko Itakura." and train[0]["topic"] == "Ko Itakura"
    assert P.answer_template("biogen").render(train[0]["question"]) == "Question: Tell me a bio of Ko Itakura."
    demos = fewshot_demos()
    people = {r["topic"] for r in train + test}
    assert len(demos) == 5 and not any(q[len("Tell me a bio of "):-1] in people for q, _ in demos)
    text = prompting.answer_template("biogen-5shot").render(test[0]["question"])
    assert text.count("Question: Tell me a bio of") == 6 and text.endswith("Jesse Foppert.\nAnswer:")
    with pytest.raises(SelfAlignError, match="unknown BioGEN split"):
        load_prompts("biogen", "valid")
