"""`python -m chains` on the sample corpus (real Milvus Lite, real local embeddings)."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chains.cli import EXIT_ERROR, EXIT_OK, main
from ingest.cli import main as ingest_main
from tests.openai_standin import OpenAIStandIn

ROOT = Path(__file__).resolve().parents[2]
SAMPLE = ROOT / "data" / "sample"


@pytest.fixture
def sample_kb(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MILVUS_LITE_PATH", str(tmp_path / "kb.db"))
    monkeypatch.setenv("EMBEDDINGS", "local")
    assert ingest_main([str(SAMPLE)], out=io.StringIO()) == 0


def ask(*args: str) -> tuple[int, str]:
    out = io.StringIO()
    return main(list(args), out=out), out.getvalue()


@pytest.mark.integration
def test_json_answer_cites_the_expected_document(sample_kb: None) -> None:
    code, out = ask("Can two processes open the same Milvus Lite data directory?", "--json")
    assert code == EXIT_OK
    result = json.loads(out)
    assert set(result) == {"question", "answer", "search_type", "notice", "sources"}
    assert (result["search_type"], result["notice"]) == ("hybrid", None)
    assert result["question"].startswith("Can two processes")
    assert "No language model is configured" in result["answer"]
    sources = result["sources"]
    assert [s["n"] for s in sources] == [1, 2, 3, 4]
    assert "milvus-overview.md" in {s["source"] for s in sources}
    assert all(
        set(s) == {"n", "source", "page", "score", "ranks", "text", "section", "title"}
        for s in sources
    )
    assert all(isinstance(s["score"], float) and s["ranks"] for s in sources)


@pytest.mark.integration
def test_mmr_and_source_filter(sample_kb: None) -> None:
    code, out = ask(
        "What is MMR?", "--json", "--search-type", "mmr", "--k", "2", "--source", "faq.txt"
    )
    assert code == EXIT_OK
    sources = json.loads(out)["sources"]
    assert {s["source"] for s in sources} == {"faq.txt"}
    assert all(s["score"] is None for s in sources)


@pytest.mark.integration
def test_old_and_new_search_types(sample_kb: None) -> None:
    for search_type, ran in [("similarity", "dense"), ("keyword", "keyword")]:
        code, out = ask("What is MMR?", "--json", "--search-type", search_type, "--k", "2")
        assert code == EXIT_OK
        result = json.loads(out)
        assert result["search_type"] == ran
        assert {tuple(s["ranks"]) for s in result["sources"]} == {(ran,)}


@pytest.mark.integration
def test_fusion_option(sample_kb: None) -> None:
    """Relative score fusion (the default) scores the best passage of a route at least
    0.5; reciprocal rank fusion scores no passage over 2 / 61 (0.0328)."""
    scores = {}
    for fusion in ("relative", "rrf"):
        code, out = ask("What is MMR?", "--json", "--fusion", fusion, "--k", "3")
        assert code == EXIT_OK
        scores[fusion] = [s["score"] for s in json.loads(out)["sources"]]
    assert scores["relative"][0] >= 0.5
    assert all(0 < score <= 0.0328 for score in scores["rrf"])


@pytest.mark.integration
def test_text_output_lists_sources(sample_kb: None) -> None:
    code, out = ask("Do I need an OpenAI key?", "--k", "2")
    assert code == EXIT_OK
    assert "\nSources (hybrid search):\n  [1] " in out


def test_invalid_options_are_reported(capsys: pytest.CaptureFixture[str]) -> None:
    code, _ = ask("q", "--k", "0")
    assert code == EXIT_ERROR
    assert "error:" in capsys.readouterr().err


QUESTIONS = [
    "Can two processes open the same Milvus Lite data directory?",
    "What is MMR?",
    "Do I need an OpenAI key?",
]


@pytest.mark.integration
def test_many_questions_in_one_process_answer_as_one_call_each(
    sample_kb: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    one_by_one = [json.loads(ask(q, "--json", "--k", "2")[1]) for q in QUESTIONS]

    listed = tmp_path / "questions.txt"
    lines = [QUESTIONS[0], "", json.dumps({"question": QUESTIONS[1]}), QUESTIONS[2]]
    listed.write_text("\n".join(lines) + "\n")
    code, out = ask("--questions", str(listed), "--json", "--k", "2")
    assert code == EXIT_OK
    assert [json.loads(line) for line in out.splitlines()] == one_by_one

    monkeypatch.setattr("sys.stdin", io.StringIO("\n".join(QUESTIONS)))
    code, out = ask("--questions", "-", "--k", "2")
    assert code == EXIT_OK
    assert [line for line in out.splitlines() if line.startswith("Q: ")] == [
        f"Q: {q}" for q in QUESTIONS
    ]


def test_a_bad_questions_file_is_reported(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.jsonl"
    for text, error in [
        ('{"question": "fine"}\n{"q": "no question field"}\n', "line 2"),
        ("\n\n", "holds no questions"),
    ]:
        bad.write_text(text)
        assert ask("--questions", str(bad))[0] == EXIT_ERROR
        assert error in capsys.readouterr().err
    with pytest.raises(SystemExit):
        ask("a question", "--questions", str(bad))


# Stacks a question asked from the terminal has no use for: PyTorch (the embeddings run in
# ONNX Runtime), the web app, the chat history's database, the document parsers, and (with
# no model configured) the OpenAI client.
NOT_ON_THE_QUESTION_PATH = (
    "torch",
    "sentence_transformers",
    "transformers",
    "chainlit",
    "fastapi",
    "uvicorn",
    "sqlalchemy",
    "alembic",
    "trafilatura",
    "pypdf",
    "openai",
    "langchain_openai",
)
PROBE = """
import atexit, gc, json, runpy, sys

absent = set(sys.argv[1].split(","))

def report():
    loaded = {name.split(".")[0] for name in sys.modules}
    heavy = sorted(loaded & absent)
    state = {"collecting": gc.isenabled(), "frozen": gc.get_freeze_count() > 0}
    print(json.dumps({"loaded": heavy, **state}), file=sys.stderr)

atexit.register(report)
sys.argv = ["chains", *sys.argv[2:]]
runpy.run_module("chains", run_name="__main__", alter_sys=True)
"""


# With a chat model the OpenAI client loads, but not the aiohttp transport its SDK imports
# whenever aiohttp is installed: this app's clients speak httpx (`core.providers`).
NOT_ON_THE_ANSWER_PATH = (
    *(name for name in NOT_ON_THE_QUESTION_PATH if "openai" not in name),
    "aiohttp",
)


@pytest.mark.integration
@pytest.mark.parametrize("model", [False, True], ids=["retrieval-only", "chat-model"])
def test_a_question_from_the_terminal_loads_only_the_question_path(
    tmp_path: Path, model: bool, openai_standin: OpenAIStandIn
) -> None:
    """A fresh `python -m chains "..."` imports none of the stacks above (with a chat
    model, the OpenAI client but not its aiohttp transport: 80 ms of start-up); garbage
    collection, held while it started, is on again once it answers, and what it loaded
    is out of the collector's sight (`core.process_gc`)."""
    env = {**os.environ, "EMBEDDINGS": "local", "MILVUS_LITE_PATH": str(tmp_path / "kb.db")}
    for name in ("OPENAI_API_KEY", "OPENAI_BASE_URL", "MILVUS_URI"):
        env.pop(name, None)
    # In another process: Milvus Lite's lock on the data lasts as long as the process.
    ingest = [sys.executable, "-m", "ingest", str(SAMPLE)]
    subprocess.run(ingest, cwd=ROOT, env=env, capture_output=True, check=True, timeout=120)
    if model:
        env["OPENAI_BASE_URL"] = openai_standin.base_url
    absent = NOT_ON_THE_ANSWER_PATH if model else NOT_ON_THE_QUESTION_PATH
    done = subprocess.run(
        [sys.executable, "-c", PROBE, ",".join(absent), "What is MMR?", "--json"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == EXIT_OK, done.stderr
    answer = json.loads(done.stdout)
    assert answer["sources"]
    assert ("No language model is configured" in answer["answer"]) is not model
    report = json.loads(done.stderr.strip().splitlines()[-1])
    assert report == {"loaded": [], "collecting": True, "frozen": True}
