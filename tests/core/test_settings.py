from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Settings, load_settings


def test_defaults_are_the_embedded_ones() -> None:
    s = Settings(_env_file=None)
    assert s.uses_milvus_lite
    assert s.milvus_lite_path == Path("data/milvus.db")
    assert s.milvus_collection == "docs"
    assert s.embedding_provider == "local"
    assert s.embedding_model_name == "all-MiniLM-L6-v2"
    assert not s.chat_model_configured


def test_openai_key_switches_embeddings_and_chat_model_on() -> None:
    s = Settings(_env_file=None, openai_api_key="sk-test")
    assert s.embedding_provider == "openai"
    assert s.embedding_model_name == "text-embedding-3-small"
    assert s.chat_model_configured


def test_explicit_local_embeddings_win_over_a_key() -> None:
    s = Settings(_env_file=None, openai_api_key="sk-test", embeddings="local")
    assert s.embedding_provider == "local"


def test_compatible_server_needs_no_key() -> None:
    s = Settings(_env_file=None, openai_base_url="http://127.0.0.1:11434/v1", llm_model="llama3")
    assert s.chat_model_configured
    assert s.embedding_provider == "local"


def test_file_path_in_milvus_uri_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MILVUS_URI", "./data/milvus.db")
    with pytest.raises(ConfigError) as info:
        load_settings(_env_file=None)
    message = str(info.value)
    assert "MILVUS_URI" in message
    assert "MILVUS_LITE_PATH=./data/milvus.db" in message


def test_server_uri_is_accepted_and_address_hides_credentials() -> None:
    s = Settings(_env_file=None, milvus_uri="https://user:pw@milvus.example:443")
    assert not s.uses_milvus_lite
    assert s.milvus_address == "https://milvus.example:443"


def test_overlap_must_be_below_chunk_size() -> None:
    with pytest.raises(ConfigError, match="CHUNK_OVERLAP"):
        load_settings(_env_file=None, chunk_size=200, chunk_overlap=200)


def test_settings_come_from_dotenv(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / ".env").write_text("MILVUS_COLLECTION=from_dotenv\nEMBEDDINGS=local\n")
    monkeypatch.chdir(tmp_path)
    assert load_settings().milvus_collection == "from_dotenv"


def test_secrets_do_not_show_in_repr() -> None:
    s = Settings(_env_file=None, openai_api_key="sk-very-secret", milvus_token="root:Milvus")
    assert "sk-very-secret" not in repr(s)
    assert "root:Milvus" not in repr(s)
