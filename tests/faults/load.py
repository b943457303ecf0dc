"""A load test of the real app, bounded in time, on loopback only.

    python -m tests.faults.load [--duration 180] [--users 50] [--browsers 2]
        [--uploaders 5] [--question-timeout 90] [--max-rss-mb 2048]

It starts a `milvus-lite server`, the OpenAI stand-in (`tests.openai_standin`) as the chat
model and the real app (`chainlit run`, as the browser tests do) on that server. Then, for
`duration` seconds: `users` signed-in users ask questions over Chainlit's Socket.IO
protocol, one at a time each with a short pause between; `uploaders` of them attach a
small file to every third message; `browsers` Chromium pages attach files through the
chat's paperclip (the first as soon as the message box shows); and `python -m ingest`
ingests a corpus into the same knowledge base, again and again, changing some files and
adding one each round (so documents are replaced under load too). A sampler reads the
memory of the app's process tree.

At the end (`LoadReport.problems`): every question was answered or given a clear error
within `question_timeout`; every upload was acknowledged as added with the expected
number of chunks; the store holds every document (library, uploads) exactly once, whole,
in its latest version: its chunk ids are exactly those the ingest makes for that content,
no id or text is stored twice, no other version or stray chunk is left; the app's peak
memory stayed under `max_rss_mb`. It prints a summary table.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import socket
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from playwright.async_api import Browser, async_playwright
from pydantic import SecretStr
from pymilvus import MilvusClient

from accounts.database import Database
from accounts.service import Accounts
from bench.common import command_line, percentile
from core.knowledge import LIBRARY_OWNER, DocumentKey
from core.settings import Settings
from ingest.chunking import Origin, chunk_id, content_hash, ingest_version, split_pages
from ingest.loaders import load_bytes
from tests.conftest import free_port
from tests.e2e.conftest import CHROMIUM, CHROMIUM_ARGS, PASSWORD, ROOT, _app_env, serve_app
from tests.e2e.conftest import stop_apps as stop_app
from tests.faults.load_clients import BrowserUpload, ChatClient, Outcome, browser_uploads, judge
from tests.lite_server import LiteServer

QUESTIONS = (
    "What is retrieval-augmented generation?",
    "How does MMR differ from similarity search?",
    "Can two processes share a Milvus Lite database?",
    "Which file types can I upload?",
    "How long should chunks be?",
    "What does the pump service schedule say?",
    "Which valve does the turbine manual mention?",
)
WORDS = (
    "pump valve turbine filter pressure gauge seal bearing rotor shaft flange gasket "
    "coupling impeller housing nozzle sensor relay motor circuit breaker fuse cable "
    "clamp bracket spring piston cylinder lever hinge latch"
).split()
COLLECTION = "docs"
CHUNK_SIZE = Settings.model_fields["chunk_size"].default
CHUNK_OVERLAP = Settings.model_fields["chunk_overlap"].default
MAX_ROWS = 16384  # one Milvus query's limit


@dataclass(frozen=True)
class LoadConfig:
    duration: float = 180.0
    users: int = 50
    browsers: int = 2
    uploaders: int = 5  # socket users attaching a file to every third message, from the first
    corpus_files: int = 12  # the CLI's corpus; each round changes a quarter and adds one
    question_timeout: float = 90.0
    think: tuple[float, float] = (1.0, 3.0)
    ramp: float = 10.0  # users sign in one after another over this many seconds
    max_rss_mb: float = 2048.0
    seed: int = 12


@dataclass(frozen=True)
class IngestRun:
    round: int
    returncode: int
    seconds: float
    output: str


@dataclass
class LoadReport:
    config: LoadConfig
    opens: list[float] = field(default_factory=list)  # seconds from sign-in to the welcome
    outcomes: list[Outcome] = field(default_factory=list)
    socket_uploads: list[tuple[str, str, bool, str]] = field(default_factory=list)
    browser_uploads: list[BrowserUpload] = field(default_factory=list)
    ingest_runs: list[IngestRun] = field(default_factory=list)
    store_problems: list[str] = field(default_factory=list)
    crashes: list[str] = field(default_factory=list)  # a part of the load that failed
    documents: int = 0
    chunks: int = 0
    rss_mb: list[float] = field(default_factory=list)
    startup: float = 0.0  # store, stand-in, users, seed ingest, app
    seconds: float = 0.0  # from the start of the load to the last answer and upload

    @property
    def peak_rss_mb(self) -> float:
        return max(self.rss_mb, default=0.0)

    def problems(self) -> list[str]:
        """Everything the load test promises that did not hold (empty: it all held)."""
        found = [
            f"question by {o.user} {o.verdict} after {o.seconds:.1f} s: {o.detail}"
            for o in self.outcomes
            if o.verdict in ("hung", "no reply")
        ]
        found += [
            f"upload {name} by {user} not acknowledged: {detail}"
            for user, name, ok, detail in self.socket_uploads
            if not ok
        ]
        found += [
            f"browser upload {u.name} by {u.user} not acknowledged: {u.detail}"
            for u in self.browser_uploads
            if not u.acknowledged
        ]
        found += [
            f"ingest round {r.round} exited {r.returncode}: {r.output[-500:]}"
            for r in self.ingest_runs
            if r.returncode != 0
        ]
        if not self.ingest_runs:
            found.append("no ingest ran")
        if self.config.browsers and not self.browser_uploads:
            found.append("no browser upload was made")
        if not any(o.verdict == "answered" for o in self.outcomes):  # by the model
            found.append("no question was answered")
        found += self.store_problems
        found += [f"a load task failed: {crash[:500]}" for crash in self.crashes]
        if self.peak_rss_mb > self.config.max_rss_mb:
            found.append(
                f"the app's memory peaked at {self.peak_rss_mb:.0f} MB "
                f"(bound {self.config.max_rss_mb:.0f} MB)"
            )
        return found

    def table(self) -> str:
        verdicts = Counter(o.verdict for o in self.outcomes)
        answered = [o.seconds for o in self.outcomes if o.verdict == "answered"]
        uploads_ok = sum(ok for _, _, ok, _ in self.socket_uploads)
        browser_ok = sum(u.acknowledged for u in self.browser_uploads)
        rows = [
            ("start-up / load (s)", f"{self.startup:.0f} / {self.seconds:.0f}"),
            ("users (socket) / browser pages", f"{self.config.users} / {self.config.browsers}"),
            (
                "chats opened, p50 / p95 (s)",
                f"{len(self.opens)}, {_pct(self.opens, 50)} / {_pct(self.opens, 95)}",
            ),
            ("questions asked", str(len(self.outcomes))),
            (
                "answered (by the model / passages only)",
                f"{verdicts['answered']} / {verdicts['passages only']}",
            ),
            ("clear errors", str(verdicts["error"])),
            ("no reply / hung", f"{verdicts['no reply']} / {verdicts['hung']}"),
            ("answer time p50 / p95 (s)", f"{_pct(answered, 50)} / {_pct(answered, 95)}"),
            ("socket uploads acknowledged", f"{uploads_ok} / {len(self.socket_uploads)}"),
            ("browser uploads acknowledged", f"{browser_ok} / {len(self.browser_uploads)}"),
            ("ingest rounds (ok / run)", _ingest_summary(self.ingest_runs)),
            ("documents / chunks checked", f"{self.documents} / {self.chunks}"),
            ("store problems", str(len(self.store_problems))),
            ("app RSS start / peak / end (MB)", _rss_summary(self.rss_mb)),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"| {'measure'.ljust(width)} | value |", f"|{'-' * (width + 2)}|---:|"]
        lines += [f"| {k.ljust(width)} | {v} |" for k, v in rows]
        return "\n".join(lines)


def _pct(values: list[float], pct: int) -> str:
    return f"{percentile(values, pct):.2f}" if values else "-"


def _ingest_summary(runs: list[IngestRun]) -> str:
    return f"{sum(r.returncode == 0 for r in runs)} / {len(runs)}"


def _rss_summary(samples: list[float]) -> str:
    if not samples:
        return "-"
    return f"{samples[0]:.0f} / {max(samples):.0f} / {samples[-1]:.0f}"


# ----- content -----------------------------------------------------------------------


def text_document(rng: random.Random, label: str, paragraphs: int) -> bytes:
    """Sentence-shaped text, unique to `label` (every sentence names it)."""
    out = []
    for number in range(paragraphs):
        words = " ".join(rng.choice(WORDS) for _ in range(rng.randint(25, 45)))
        out.append(f"{label} part {number}: the {words}.")
    return "\n\n".join(out).encode()


def expected_ids(document: DocumentKey, data: bytes) -> tuple[str, list[str]]:
    """The version hash and chunk ids the ingest makes of `data` (the app's defaults)."""
    version = ingest_version(CHUNK_SIZE, CHUNK_OVERLAP)
    file_hash = content_hash(data, version)
    loaded = load_bytes(data, document.source)
    chunks = split_pages(
        loaded.pages,
        kind=loaded.kind,
        origin=Origin(document, added_at=0),
        file_hash=file_hash,
        chunk_size=CHUNK_SIZE,
        chunk_overlap=CHUNK_OVERLAP,
    )
    return file_hash, [chunk_id(document, file_hash, c.chunk) for c in chunks]


def upload_files(rng: random.Random, prefix: str) -> Iterator[tuple[str, bytes, int]]:
    """Endless small text files for one uploader: `(name, data, expected chunks)`."""
    number = 0
    while True:
        name = f"{prefix}-{number:03d}.txt"
        data = text_document(rng, name, rng.randint(2, 6))
        number += 1
        yield name, data, len(expected_ids(DocumentKey("x", name), data)[1])


# ----- the parts ---------------------------------------------------------------------


async def add_users(database_url: str, names: list[str]) -> None:
    """Create the simulated users in the app's database (before the app starts)."""
    settings = Settings(_env_file=None, database_url=SecretStr(database_url))
    database = await Database.open(settings)
    try:
        accounts = Accounts(database)
        await asyncio.gather(*(accounts.add(name, PASSWORD) for name in names))
    finally:
        await database.close()


def start_model(port: int) -> subprocess.Popen[bytes]:
    """The OpenAI stand-in in a process of its own: in this one, busy with the users, it
    would answer late and the app would rightly call the model unreachable."""
    process = subprocess.Popen(
        [sys.executable, "-m", "tests.openai_standin", "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the OpenAI stand-in did not start in 30 s")


async def sample_memory(pid: int, samples: list[float], stop: asyncio.Event) -> None:
    """The resident memory of the app and its children, every half second."""
    root = psutil.Process(pid)

    def tree_mb() -> float:
        total = 0
        for process in [root, *root.children(recursive=True)]:
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                pass
        return total / 2**20

    while not stop.is_set():
        try:
            samples.append(await asyncio.to_thread(tree_mb))
        except psutil.NoSuchProcess:
            return
        try:
            await asyncio.wait_for(stop.wait(), 0.5)
        except TimeoutError:
            pass


async def ask_loop(
    url: str,
    user: str,
    config: LoadConfig,
    stop_at: float,
    report: LoadReport,
    uploads: Iterator[tuple[str, bytes, int]] | None,
    expected: dict[DocumentKey, bytes],
    ramp: float,
) -> None:
    """One user: signs in after `ramp` seconds, then asks until `stop_at`, each question
    waited for (at most the deadline)."""
    rng = random.Random(user)
    client = ChatClient(url, user)
    try:
        await asyncio.sleep(ramp)
        opening = time.monotonic()
        try:
            await client.open(config.question_timeout)
            report.opens.append(time.monotonic() - opening)
        except Exception as exc:
            detail = f"could not open a chat: {type(exc).__name__}: {exc}"
            report.outcomes.append(Outcome(user, "no reply", 0.0, detail))
            return
        asked = 0
        while asked == 0 or time.monotonic() < stop_at:  # one question at least
            asked += 1
            question = rng.choice(QUESTIONS)
            files: list[str] = []
            upload: tuple[str, bytes, int] | None = None
            if uploads is not None and asked % 3 == 1:
                upload = next(uploads)
                try:
                    files = [await client.upload(upload[0], upload[1])]
                except Exception as exc:
                    detail = f"upload: {type(exc).__name__}: {exc}"
                    report.socket_uploads.append((user, upload[0], False, detail))
                    upload = None
            turn = await client.say(question, config.question_timeout, files)
            outcome = judge(user, turn)
            report.outcomes.append(outcome)
            if upload is not None:
                name, data, chunks = upload
                added = f"`{name}`: **added**, {chunks} chunks"
                ok = any(added in r for r in turn.upload_reports())
                report.socket_uploads.append((user, name, ok, " | ".join(turn.upload_reports())))
                expected[DocumentKey(user, name)] = data
            if outcome.verdict == "hung":
                return  # the chat is stuck; the failure is recorded
            await asyncio.sleep(rng.uniform(*config.think))
    finally:
        await client.close()


async def ingest_loop(
    env: dict[str, str],
    folder: Path,
    config: LoadConfig,
    stop_at: float,
    report: LoadReport,
    expected: dict[DocumentKey, bytes],
) -> None:
    """`python -m ingest FOLDER` in rounds while another fits before `stop_at` (at least
    one round)."""
    rng = random.Random(config.seed)
    folder.mkdir(parents=True, exist_ok=True)
    files = [folder / f"load-manual-{n:02d}.txt" for n in range(config.corpus_files)]
    for path in files:
        path.write_bytes(text_document(rng, f"{path.name} round 0", rng.randint(8, 24)))
    number = 0
    while True:
        started = time.monotonic()
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "ingest",
            str(folder),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        output, _ = await process.communicate()
        report.ingest_runs.append(
            IngestRun(number, process.returncode or 0, time.monotonic() - started, output.decode())
        )
        for path in folder.iterdir():
            expected[DocumentKey(LIBRARY_OWNER, path.name)] = path.read_bytes()
        if time.monotonic() + report.ingest_runs[-1].seconds >= stop_at:
            return  # another round would run past the end
        number += 1
        for path in rng.sample(files, max(1, len(files) // 4)):  # replaced next round
            path.write_bytes(text_document(rng, f"{path.name} round {number}", rng.randint(8, 24)))
        new = folder / f"load-manual-{len(files):02d}.txt"
        new.write_bytes(text_document(rng, new.name, rng.randint(8, 24)))
        files.append(new)


def check_store(uri: str, expected: dict[DocumentKey, bytes], report: LoadReport) -> None:
    """Every expected document whole and once in its latest version, and nothing else."""
    client = MilvusClient(uri=uri)
    try:
        rows = client.query(
            COLLECTION,
            filter="",
            output_fields=["pk", "owner", "source", "file_hash", "chunk", "chunks", "text"],
            limit=MAX_ROWS,
            consistency_level="Strong",
        )
    finally:
        client.close()
    problems = report.store_problems
    if len(rows) >= MAX_ROWS:
        problems.append(f"the store holds {MAX_ROWS}+ rows: too many to check in one query")
    ids = Counter(str(r["pk"]) for r in rows)
    problems += [f"chunk id {i} stored {n} times" for i, n in ids.items() if n > 1]
    documents: dict[DocumentKey, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        documents[DocumentKey(str(row["owner"]), str(row["source"]))].append(row)
    for document, stored in sorted(documents.items(), key=lambda d: (d[0].owner, d[0].source)):
        problems += document_problems(document, stored, expected.get(document))
    problems += [f"{d} is missing from the store" for d in expected if d not in documents]
    report.documents = len(documents)
    report.chunks = len(rows)


def document_problems(
    document: DocumentKey, rows: list[dict[str, Any]], data: bytes | None
) -> list[str]:
    name = f"{document.owner}/{document.source}"
    hashes = {str(r["file_hash"]) for r in rows}
    if len(hashes) != 1:
        return [f"{name}: {len(hashes)} versions stored ({len(rows)} chunks)"]
    (file_hash,) = hashes
    declared = {int(r["chunks"]) for r in rows}
    indexes = Counter(int(r["chunk"]) for r in rows)
    texts = Counter(str(r["text"]) for r in rows)
    problems = []
    if (
        len(declared) != 1
        or sorted(indexes) != list(range(declared.pop()))
        or len(rows) != len(indexes)
    ):
        problems.append(f"{name}: chunks {sorted(indexes.elements())} of declared {declared}")
    if any(n > 1 for n in texts.values()):
        problems.append(f"{name}: the same text stored twice")
    wanted = {chunk_id(document, file_hash, i) for i in indexes}
    if wanted != {str(r["pk"]) for r in rows}:
        problems.append(f"{name}: chunk ids are not the ingest's own")
    if data is None:
        return [*problems, f"{name}: stored but never ingested or uploaded"]
    expected_hash, expected = expected_ids(document, data)
    if file_hash != expected_hash:
        problems.append(f"{name}: an older version is stored, not the latest")
    elif {str(r["pk"]) for r in rows} != set(expected):
        problems.append(f"{name}: {len(rows)} chunks stored, {len(expected)} expected")
    return problems


# ----- the run -----------------------------------------------------------------------


async def run_load(config: LoadConfig, workdir: Path) -> LoadReport:
    """Start everything in `workdir`, run the load for `config.duration`, check, stop."""
    report = LoadReport(config)
    lite = LiteServer(workdir / "lite.db", free_port())
    model_port = free_port()
    model: subprocess.Popen[bytes] | None = None
    processes: list[subprocess.Popen[str]] = []
    users = [f"load-{n:02d}" for n in range(config.users)]
    pages = [f"page-{n}" for n in range(config.browsers)]
    expected: dict[DocumentKey, bytes] = {}
    stop_sampling = asyncio.Event()
    sampler: asyncio.Task[None] | None = None
    begun = time.monotonic()
    try:
        await asyncio.to_thread(lite.start)
        model = await asyncio.to_thread(start_model, model_port)
        await add_users(f"sqlite+aiosqlite:///{workdir / 'chat.db'}", users + pages)
        app_env: dict[str, str] = {
            "MILVUS_URI": lite.uri,
            "OPENAI_BASE_URL": f"http://127.0.0.1:{model_port}/v1",
            "OPENAI_API_KEY": "sk-standin",
            # Each user waits for an answer and pauses: far under these; the abuse limits
            # have their own tests and must not turn the load into refusals.
            "MESSAGES_PER_MINUTE": "600",
            "MODEL_REQUESTS_PER_MINUTE": "1200",
        }
        url = await asyncio.to_thread(serve_app, workdir, processes, **app_env)
        sampler = asyncio.create_task(sample_memory(processes[0].pid, report.rss_mb, stop_sampling))
        started = time.monotonic()
        report.startup = started - begun
        stop_at = started + config.duration
        rng = random.Random(config.seed)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            tasks = [
                ingest_loop(
                    _app_env(workdir, app_env),
                    workdir / "corpus",
                    config,
                    stop_at,
                    report,
                    expected,
                ),
                *(
                    ask_loop(
                        url,
                        user,
                        config,
                        stop_at,
                        report,
                        upload_files(random.Random(user), user) if n < config.uploaders else None,
                        expected,
                        ramp=n * config.ramp / max(1, config.users),
                    )
                    for n, user in enumerate(users)
                ),
                *(
                    _browse(browser, url, page, rng, workdir, stop_at, config, report, expected)
                    for page in pages
                ),
            ]
            for result in await asyncio.gather(*tasks, return_exceptions=True):
                if isinstance(result, BaseException):
                    report.crashes.append(f"{type(result).__name__}: {result}")
            await browser.close()
        report.seconds = time.monotonic() - started
        stop_sampling.set()
        await sampler
        check_store(lite.uri, expected, report)
    finally:
        stop_sampling.set()
        if sampler is not None:
            await asyncio.gather(sampler, return_exceptions=True)
        await asyncio.to_thread(stop_app, processes)
        if model is not None:
            model.kill()
            model.wait()
        lite.kill()
    return report


async def _browse(
    browser: Browser,
    url: str,
    user: str,
    rng: random.Random,
    workdir: Path,
    stop_at: float,
    config: LoadConfig,
    report: LoadReport,
    expected: dict[DocumentKey, bytes],
) -> None:
    folder = workdir / f"uploads-{user}"
    folder.mkdir()
    files = upload_files(random.Random(rng.random()), user)
    done = await browser_uploads(
        browser, url, user, files, folder, stop_at, config.question_timeout
    )
    report.browser_uploads += done
    for upload in done:
        expected[DocumentKey(user, upload.name)] = upload.data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m tests.faults.load", description=__doc__.split("\n")[0]
    )
    defaults = LoadConfig()
    parser.add_argument("--duration", type=float, default=defaults.duration)
    parser.add_argument("--users", type=int, default=defaults.users)
    parser.add_argument("--browsers", type=int, default=defaults.browsers)
    parser.add_argument("--uploaders", type=int, default=defaults.uploaders)
    parser.add_argument("--question-timeout", type=float, default=defaults.question_timeout)
    parser.add_argument("--max-rss-mb", type=float, default=defaults.max_rss_mb)
    parser.add_argument("--workdir", type=Path, help="a new folder to run in, kept afterwards")
    args = parser.parse_args(argv)
    config = LoadConfig(**{k: v for k, v in vars(args).items() if k != "workdir"})
    os.environ.pop("CI", None)
    if args.workdir is not None:  # kept, with the app's log, for a look afterwards
        args.workdir.mkdir(parents=True)
        report = asyncio.run(run_load(config, args.workdir))
    else:
        with tempfile.TemporaryDirectory(prefix="rag-load-") as tmp:
            report = asyncio.run(run_load(config, Path(tmp)))
    problems = report.problems()
    lines = [command_line(), "", report.table(), *(f"- {p}" for p in problems[:30])]
    sys.stdout.write("\n".join(lines) + "\n")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
