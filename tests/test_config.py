"""Settings: environment, heron.toml, the OpenAI variables, and errors that explain."""

from __future__ import annotations

from pathlib import Path

import pytest

from heron.agent.config import load_settings
from heron.agent.errors import ConfigError


def test_defaults_are_offline_with_the_bundled_model(heron_env: Path) -> None:
    settings = load_settings()
    assert not settings.vlm.enabled
    assert settings.stt.model == "tiny.en"
    assert settings.camera.source == "0"
    assert settings.data_dir == heron_env / "heron-data"


def test_environment_variables_reach_nested_settings(
    heron_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERON_VLM_BASE_URL", "http://127.0.0.1:11434/v1")
    monkeypatch.setenv("HERON_VLM_MODEL", "llava")
    monkeypatch.setenv("HERON_CAMERA_SOURCE", "http://127.0.0.1:8080/video")
    monkeypatch.setenv("HERON_VAD_MIN_SILENCE_MS", "350")
    monkeypatch.setenv("HERON_TTS_RATE", "200")
    settings = load_settings()
    assert settings.vlm.enabled and settings.vlm.model == "llava"
    assert settings.camera.source == "http://127.0.0.1:8080/video"
    assert settings.vad.min_silence_ms == 350
    assert settings.tts.rate == 200


def test_toml_file_and_environment_priority(
    heron_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (heron_env / "heron.toml").write_text(
        '[vlm]\nmodel = "from-toml"\nbase_url = "http://127.0.0.1:1/v1"\n'
        '[stt]\nmodel = "/models/whisper"\n[microphone]\ndevice = 3\n'
    )
    settings = load_settings()
    assert settings.vlm.model == "from-toml"
    assert settings.stt.model == "/models/whisper"
    assert settings.microphone.device == 3
    monkeypatch.setenv("HERON_VLM_MODEL", "from-env")
    assert load_settings().vlm.model == "from-env"


def test_openai_variables_are_used_when_heron_ones_are_absent(
    heron_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-123")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9999/v1")
    settings = load_settings()
    assert settings.vlm.enabled
    assert settings.vlm.api_key is not None
    assert settings.vlm.api_key.get_secret_value() == "sk-test-123"
    assert settings.vlm.base_url == "http://127.0.0.1:9999/v1"
    assert "sk-test-123" not in repr(settings)
    monkeypatch.setenv("HERON_VLM_BASE_URL", "http://127.0.0.1:1234/v1")
    assert load_settings().vlm.base_url == "http://127.0.0.1:1234/v1"


def test_a_wrong_value_names_the_key_the_value_and_what_is_accepted(
    heron_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERON_VAD_THRESHOLD", "1.7")
    with pytest.raises(ConfigError) as err:
        load_settings()
    message = str(err.value)
    assert "HERON_VAD_THRESHOLD" in message and "'1.7'" in message and "less than 1" in message


def test_a_misspelt_key_is_an_error(heron_env: Path) -> None:
    (heron_env / "heron.toml").write_text('[vlm]\nmodle = "llava"\n')
    with pytest.raises(ConfigError, match=r"HERON_VLM_MODLE .*no such setting"):
        load_settings()


def test_an_unknown_choice_lists_what_it_accepts(
    heron_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HERON_STT_DEVICE", "tpu")
    with pytest.raises(ConfigError, match=r"HERON_STT_DEVICE .*'tpu'.*'cpu', 'cuda' or 'auto'"):
        load_settings()


def test_secrets_are_not_shown_in_errors(heron_env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HERON_VLM_API_KEY", "sk-secret")
    monkeypatch.setenv("HERON_VLM_TIMEOUT_S", "-1")
    with pytest.raises(ConfigError) as err:
        load_settings()
    assert "sk-secret" not in str(err.value)
