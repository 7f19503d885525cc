"""heron's configuration: one settings object, read at the entry point.

Sources, highest priority first: keyword arguments, ``HERON_*`` environment
variables (``HERON_VLM_MODEL``, ``HERON_CAMERA_SOURCE``, ...), a ``.env`` file,
``heron.toml`` (or the file named by ``HERON_CONFIG``), then the defaults below.
``OPENAI_API_KEY`` and ``OPENAI_BASE_URL`` are honoured when the ``HERON_VLM_*``
equivalents are not set. Every component gets a small frozen config; a typo in
a key or a wrong value is a :class:`~heron.agent.errors.ConfigError` that names
the key, the value and what it accepts.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from .errors import ConfigError

ENV_PREFIX = "HERON_"
BUNDLED_STT_MODEL = "tiny.en"


class _Component(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class VLMConfig(_Component):
    """The vision-language model: any OpenAI-compatible chat-completions endpoint."""

    base_url: str | None = Field(None, description="Endpoint, e.g. http://localhost:11434/v1")
    api_key: SecretStr | None = Field(None, description="API key; local servers accept any")
    model: str = Field("gpt-4o-mini", description="Model name the endpoint knows")
    timeout_s: float = Field(30.0, gt=0, description="Per-request timeout")
    max_retries: int = Field(1, ge=0, le=10, description="Retries on connection errors")
    max_tool_rounds: int = Field(4, ge=0, le=20, description="Tool rounds before an answer")
    max_tokens: int = Field(300, ge=16, description="Cap on a reply's tokens")
    temperature: float | None = Field(None, ge=0, le=2)
    image_max_side: int = Field(768, ge=64, le=4096, description="Longest side of a sent frame")
    jpeg_quality: int = Field(80, ge=10, le=100)
    system_prompt: str | None = Field(None, description="Replaces the built-in instructions")

    @property
    def enabled(self) -> bool:
        """True when an endpoint is configured; otherwise heron runs offline."""
        return bool(self.base_url or self.api_key)


class CameraConfig(_Component):
    """Where frames come from: a device index, a video or image file, or a URL."""

    source: str | None = Field(
        "0", description="Device index (0), file path, or URL (http://…/mjpeg, rtsp://…)"
    )
    width: int | None = Field(None, ge=16, description="Requested capture width (devices)")
    height: int | None = Field(None, ge=16, description="Requested capture height (devices)")
    realtime: bool = Field(True, description="Pace video files at their frame rate")
    loop: bool = Field(False, description="Restart video files at their end")
    open_timeout_s: float = Field(5.0, gt=0)
    read_timeout_s: float = Field(5.0, gt=0)
    reconnect_max_s: float = Field(10.0, gt=0, description="Longest wait between reconnects")

    @field_validator("source")
    @classmethod
    def _source_not_blank(cls, value: str | None) -> str | None:
        if value is not None and not value.strip():
            raise ValueError("must be a device index, a file path or a URL, not empty")
        return value


class MicrophoneConfig(_Component):
    """The audio input: a sounddevice input device (name or index)."""

    device: str | int | None = Field(None, description="Input device name or index")
    sample_rate: int | None = Field(None, ge=8000, le=192_000, description="Device rate")
    channels: int = Field(1, ge=1, le=32)
    block_ms: int = Field(20, ge=5, le=200)


class SpeakerConfig(_Component):
    """The audio output: a sounddevice output device (name or index)."""

    device: str | int | None = Field(None, description="Output device name or index")


class VADConfig(_Component):
    """Voice activity detection (Silero) and end-of-utterance decisions."""

    threshold: float = Field(0.5, gt=0, lt=1, description="Speech probability to start")
    min_speech_ms: int = Field(150, ge=0, description="Shorter bursts are ignored")
    min_silence_ms: int = Field(500, ge=50, description="Silence that ends an utterance")
    pre_roll_ms: int = Field(450, ge=0, le=2000, description="Audio kept before speech onset")
    max_utterance_s: float = Field(30.0, gt=1, description="Longest utterance before a cut")


class STTConfig(_Component):
    """Speech to text with faster-whisper."""

    model: str = Field(
        BUNDLED_STT_MODEL,
        description="'tiny.en' (bundled), a faster-whisper model name, or a model folder",
    )
    device: Literal["cpu", "cuda", "auto"] = "cpu"
    compute_type: str = Field("int8", description="CTranslate2 compute type")
    language: str | None = Field("en", description="Language code, or None to detect")
    beam_size: int = Field(1, ge=1, le=10)
    cpu_threads: int = Field(0, ge=0, description="0 lets CTranslate2 choose")


class TTSConfig(_Component):
    """Text to speech with pyttsx3 (espeak-ng on Linux)."""

    voice: str | None = Field(None, description="Voice id or name; None for the default")
    rate: int = Field(180, ge=60, le=500, description="Words per minute")
    volume: float = Field(1.0, ge=0, le=1)


class Settings(BaseSettings):
    """Everything heron can be configured with."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX,
        env_nested_delimiter="_",
        env_nested_max_split=1,
        env_file=".env",
        extra="forbid",
        frozen=True,
    )

    vlm: VLMConfig = VLMConfig()
    camera: CameraConfig = CameraConfig()
    microphone: MicrophoneConfig = MicrophoneConfig()
    speaker: SpeakerConfig = SpeakerConfig()
    vad: VADConfig = VADConfig()
    stt: STTConfig = STTConfig()
    tts: TTSConfig = TTSConfig()
    data_dir: Path = Field(
        Path.home() / ".local" / "share" / "heron",
        description="Sessions, checkpoints and memory live here",
    )
    assistant_name: str = Field("heron", min_length=1)

    def without_model(self) -> Settings:
        """These settings with no model endpoint: heron answers with local tools only."""
        vlm = self.vlm.model_copy(update={"base_url": None, "api_key": None})
        return self.model_copy(update={"vlm": vlm})

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get(f"{ENV_PREFIX}CONFIG", "heron.toml"))
        toml = TomlConfigSettingsSource(settings_cls, toml_file=toml_path)
        return (init_settings, env_settings, dotenv_settings, toml)


def _openai_env_defaults() -> dict[str, Any]:
    """The conventional OpenAI variables, as VLM settings."""
    vlm: dict[str, Any] = {}
    if os.environ.get("OPENAI_API_KEY"):
        vlm["api_key"] = SecretStr(os.environ["OPENAI_API_KEY"])
    if os.environ.get("OPENAI_BASE_URL"):
        vlm["base_url"] = os.environ["OPENAI_BASE_URL"]
    return vlm


def load_settings(**overrides: Any) -> Settings:
    """Read the settings from keywords, environment and ``heron.toml``.

    Nested keywords merge with the other sources (``vlm={"model": "x"}`` keeps the
    endpoint from the environment). ``OPENAI_API_KEY`` / ``OPENAI_BASE_URL`` fill in
    what no heron setting gave. Raises :class:`ConfigError` naming each wrong key,
    its value and what it accepts.
    """
    try:
        settings = Settings(**overrides)
    except ValidationError as exc:
        raise ConfigError(describe_validation_error(exc)) from None
    given = settings.vlm.model_fields_set
    fallback = {k: v for k, v in _openai_env_defaults().items() if k not in given}
    if fallback:
        settings = settings.model_copy(update={"vlm": settings.vlm.model_copy(update=fallback)})
    return settings


def describe_validation_error(exc: ValidationError) -> str:
    """Turn pydantic's report into lines naming the key, the value and what it accepts."""
    lines = ["invalid heron configuration:"]
    for err in exc.errors():
        loc = [str(part) for part in err["loc"]]
        key = ENV_PREFIX + "_".join(loc).upper()
        dotted = ".".join(loc)
        value = err.get("input")
        shown = "<missing>" if err["type"] == "missing" else repr(_redact(loc, value))
        accepts = err["msg"]
        if err["type"] == "extra_forbidden":
            accepts = "no such setting (check the spelling)"
        lines.append(f"  {key} ({dotted}) = {shown}: {accepts}")
    return "\n".join(lines)


def _redact(loc: list[str], value: Any) -> Any:
    return "***" if loc and "key" in loc[-1].lower() else value
