"""End-to-end fixtures: a real `chainlit run` on a free port, and Debian's Chromium.

The app runs in its own process against a fresh Milvus Lite directory seeded with the
sample corpus by the real `python -m ingest`, and a fresh SQLite history with two users
added by the real `python -m accounts` (`USERS`): both are made once per test run and
copied for each app (`sample_seed`). A failed test leaves a screenshot in
`test-artifacts/`.
"""

from __future__ import annotations

import atexit
import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.conftest import free_port

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

StartApp = Callable[..., str]

PASSWORD = "correct horse battery"
USERS = ("ada", "bob")

expect.set_options(timeout=60_000)  # the first answer loads the embedding model


def _app_env(tmp_path: Path, extra: dict[str, str]) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("OPENAI_", "MILVUS_"))}
    env.pop("CI", None)  # `chainlit run` treats CI=true as --ci and fakes OPENAI_API_KEY
    env.update(
        {
            "MILVUS_LITE_PATH": str(tmp_path / "milvus.db"),
            "EMBEDDINGS": "local",
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
            "DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'chat.db'}",
            "CHAINLIT_AUTH_SECRET": "e2e-secret-" + "x" * 40,
        }
    )
    env.update(extra)
    return env


def launch_app(tmp_path: Path, processes: list[subprocess.Popen[str]], **extra_env: str) -> str:
    """Seed the sample corpus and `USERS` into `tmp_path` (a copy of `sample_seed` where
    it holds neither store yet), start the app (added to `processes`) and return its URL
    once it is healthy."""
    stores = (tmp_path / "milvus.db", tmp_path / "chat.db")
    if not any(store.exists() for store in stores):
        tmp_path.mkdir(parents=True, exist_ok=True)
        seed = sample_seed()
        shutil.copytree(seed / "milvus.db", stores[0])
        shutil.copy2(seed / "chat.db", stores[1])
    else:
        seed_sample(tmp_path)
    return serve_app(tmp_path, processes, **extra_env)


@functools.cache
def sample_seed() -> Path:
    """A folder holding the sample corpus in Milvus Lite and `USERS` in SQLite, made
    once per test run by the real CLIs (8 s of subprocesses saved for every app after
    the first); removed when the run ends."""
    seed = Path(tempfile.mkdtemp(prefix="e2e-seed-"))
    atexit.register(shutil.rmtree, seed, ignore_errors=True)
    seed_sample(seed)
    return seed


def seed_sample(folder: Path) -> None:
    """Ingest the sample corpus into `folder`'s stores and add the `USERS` missing there,
    with the real `python -m ingest` and `python -m accounts`."""
    env = _app_env(folder, {})
    seeded = _run_module(env, "ingest", "data/sample", timeout=300)
    assert seeded.returncode == 0, seeded.stdout + seeded.stderr
    existing = _user_names(env) if (folder / "chat.db").exists() else set()
    for user in USERS:
        if user in existing:
            continue
        added = _run_module(env, "accounts", "add", user, stdin=PASSWORD + "\n")
        assert added.returncode == 0, added.stdout + added.stderr


def serve_app(tmp_path: Path, processes: list[subprocess.Popen[str]], **extra_env: str) -> str:
    """Start the app on `tmp_path` as it is, nothing seeded (added to `processes`), and
    return its URL once it is healthy."""
    env = _app_env(tmp_path, extra_env)
    port = free_port()
    log = (tmp_path / f"app-{port}.log").open("w")
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chainlit",
            "run",
            "app.py",
            "--headless",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        text=True,
    )
    processes.append(process)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the app exited: {(tmp_path / f'app-{port}.log').read_text()}")
        try:
            with urllib.request.urlopen(f"{url}/health", timeout=2) as response:
                if response.status == 200:
                    return url
        except OSError:
            time.sleep(0.3)
    raise RuntimeError("the app did not become healthy in 120 s")


def stop_apps(processes: list[subprocess.Popen[str]]) -> None:
    for process in processes:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()


@pytest.fixture
def start_app(tmp_path: Path) -> Iterator[StartApp]:
    """`start_app(**env)` seeds the sample corpus, starts the app and returns its URL."""
    processes: list[subprocess.Popen[str]] = []
    yield lambda **extra_env: launch_app(tmp_path, processes, **extra_env)
    stop_apps(processes)


def _user_names(env: dict[str, str]) -> set[str]:
    listed = _run_module(env, "accounts", "list").stdout
    return {line.split("\t", 1)[0] for line in listed.splitlines() if line}


def _run_module(
    env: dict[str, str], *args: str, stdin: str | None = None, timeout: float = 60
) -> subprocess.CompletedProcess[str]:
    """`python -m ARGS` of this project, as the app's environment would run it."""
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=ROOT,
        env=env,
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def sign_in(page: Page, url: str, user: str = USERS[0]) -> str:
    """Sign `page`'s browser context in as `user` (through the login route, as the form
    does) and return `url`, for `page.goto(sign_in(page, start_app()))`."""
    response = page.context.request.post(
        f"{url}/login", form={"username": user, "password": PASSWORD}
    )
    assert response.ok, response.text()
    return url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    """Module-scoped: Playwright's sync API holds an event loop on this thread while it
    runs, which the asyncio tests after this module must not find."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Iterator[None]:
    outcome = yield
    report = outcome.get_result()  # type: ignore[attr-defined]
    setattr(item, f"report_{report.when}", report)


def new_page(browser: Browser) -> Page:
    """A page in a browser context of its own (its own cookies: its own signed-in user)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    return page


@pytest.fixture
def page(browser: Browser, request: pytest.FixtureRequest) -> Iterator[Page]:
    page = new_page(browser)
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        name = re.sub(r"[^\w.-]", "_", request.node.nodeid)
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)
    page.context.close()
