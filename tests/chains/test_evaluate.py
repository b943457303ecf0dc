"""The evaluation command: golden sets read strictly, grading and metrics on the fake
knowledge base, and the whole command on the sample corpus (Milvus Lite, local model)."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest

from chains.evaluate import (
    GoldenQuestion,
    Graded,
    evaluate,
    main,
    read_golden,
    render_table,
    summarize,
)
from chains.options import SearchOptions
from core.errors import UserFacingError
from ingest.cli import main as ingest_main
from tests.fakes import InMemoryKnowledgeBase

ROOT = Path(__file__).resolve().parents[2]
SAMPLE_GOLDEN = ROOT / "bench" / "golden_sample.jsonl"


def test_golden_sets_are_read_strictly(tmp_path: Path) -> None:
    questions = read_golden(SAMPLE_GOLDEN)
    assert len(questions) == 12
    assert questions[8].source == ("faq.txt", "about-this-app.md")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "q", "source": "a"}\n\n{"question": "", "source": "a"}\n')
    with pytest.raises(UserFacingError, match=r"bad.jsonl:3: question"):
        read_golden(bad)
    bad.write_text('{"question": "q", "sources": "a"}\n')
    with pytest.raises(UserFacingError, match=r"bad.jsonl:1"):
        read_golden(bad)


def test_metrics() -> None:
    graded = [
        Graded("a", "dense", None, 1, True, 10.0, []),
        Graded("b", "dense", None, 2, False, 20.0, []),
        Graded("c", "dense", None, None, None, 30.0, []),
        Graded("a", "hybrid", None, 1, True, 5.0, []),
    ]
    dense = summarize("dense", graded)
    assert (dense.questions, dense.hit_at_1, dense.hit_at_k) == (3, 1 / 3, 2 / 3)
    assert dense.mrr == pytest.approx((1 + 0.5) / 3)
    assert (dense.answer_at_k, dense.milliseconds) == (0.5, 20.0)
    table = render_table([dense], k=4)
    assert table.splitlines()[2] == "| dense | 3 | 33% | 67% | 0.500 | 50% | 20 |"


async def test_grading_on_the_fake_knowledge_base(memory_kb: InMemoryKnowledgeBase) -> None:
    questions = [
        GoldenQuestion(question="gamma text about grapes", source=("c.pdf",), answer="GRAPES"),
        GoldenQuestion(question="beta text about bananas", source=("nowhere.txt",)),
    ]
    graded = await evaluate(memory_kb, questions, ["dense"], SearchOptions(k=2), progress=False)
    assert [(g.rank, g.answer_found) for g in graded] == [(1, True), (None, None)]
    assert graded[0].passages[0]["source"] == "c.pdf"
    assert {r.scope.owners for r in memory_kb.searches} == {None}  # the whole knowledge base


def test_metrics_by_kind_of_question() -> None:
    graded = [
        Graded("a", "hybrid", "identifier", 1, True, 10.0, []),
        Graded("b", "hybrid", "paraphrase", None, False, 20.0, []),
        Graded("c", "hybrid", "paraphrase", 2, True, 30.0, []),
    ]
    rows = [summarize("hybrid", graded, kind) for kind in ("identifier", "paraphrase")]
    assert (rows[1].questions, rows[1].mrr, rows[1].answer_at_k) == (2, 0.25, 0.5)
    table = render_table(rows, k=4).splitlines()
    assert table[0] == "| mode | kind | questions | hit@1 | hit@4 | MRR | answer@4 | ms/question |"
    assert table[3] == "| hybrid | paraphrase | 2 | 0% | 50% | 0.250 | 50% | 25 |"


@pytest.mark.integration
def test_the_command_on_the_sample_corpus(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_LITE_PATH", str(tmp_path / "kb.db"))
    monkeypatch.setenv("EMBEDDINGS", "local")
    assert ingest_main([str(ROOT / "data" / "sample")], out=io.StringIO()) == 0
    out = io.StringIO()
    report = tmp_path / "report.json"
    code = main([str(SAMPLE_GOLDEN), "--json", str(report)], out=out)
    assert code == 0, out.getvalue()
    lines = out.getvalue().splitlines()
    assert lines[0].endswith("golden_sample.jsonl, k=4")
    rows = {line.split(" | ")[0].strip("| "): line for line in lines[3:]}
    assert set(rows) == {"dense", "keyword", "hybrid", "mmr"}
    record = json.loads(report.read_text())
    hybrid = next(s for s in record["summary"] if s["mode"] == "hybrid")
    assert hybrid["questions"] == 12
    assert hybrid["hit_at_k"] >= 0.9  # the sample corpus is small: nearly every answer is found
    assert len(record["questions"]) == 48

    # kinds get a second table; a reranker that is not configured is an error, not a
    # silent plain search
    kinds = tmp_path / "kinds.jsonl"
    lines = SAMPLE_GOLDEN.read_text().splitlines()[:2]
    kinds.write_text(
        "\n".join(
            json.dumps({**json.loads(line), "kind": kind})
            for line, kind in zip(lines, ["identifier", "paraphrase"], strict=True)
        )
    )
    out = io.StringIO()
    assert main([str(kinds), "--modes", "hybrid"], out=out) == 0
    assert "| hybrid | paraphrase | 1 |" in out.getvalue()
    assert main([str(kinds), "--rerank", "cross-encoder"], out=io.StringIO()) == 2
    assert "needs RERANKER_MODEL" in capsys.readouterr().err
