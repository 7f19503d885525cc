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
    image_max_bytes: int = Field(
        100_000, ge=2_000, description="Largest JPEG sent; quality, then size, step down to fit"
    )
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


class KeyframeConfig(_Component):
    """Which camera frames reach the model: cheap analysis of every frame, then a choice."""

    analysis_width: int = Field(160, ge=16, le=640, description="Frames are analysed this wide")
    change_bits: int = Field(
        10, ge=1, le=63, description="dHash bits (of 64) that differ when the scene has changed"
    )
    change_brightness: float = Field(
        0.12, gt=0, le=1, description="Mean brightness change (0..1) that counts as a new scene"
    )
    change_detail: float = Field(
        0.12, gt=0, le=1, description="Change of any small block's brightness (0..1) that counts"
    )
    slot_s: float = Field(0.2, gt=0, description="The sharpest frame of each slot is kept")
    history_s: float = Field(12.0, gt=0, description="How far back kept frames reach")
    wait_s: float = Field(1.0, gt=0, description="Longest wait for a frame newer than a question")
    blur_threshold: float = Field(
        0.5, ge=0, description="Focus (keyframes.FrameAnalysis.focus) under which it is blurred"
    )


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
    min_silence_ms: int = Field(400, ge=50, description="Silence that ends an utterance")
    smart_endpoint: bool = Field(
        True, description="Shorter or longer silences from the words heard (see endpointing)"
    )
    complete_silence_ms: int = Field(
        200, ge=50, description="Silence that ends a sentence that sounds finished"
    )
    continue_silence_ms: int = Field(
        1000, ge=50, description="Silence allowed after words that clearly go on"
    )
    partial_interval_ms: int = Field(
        500, ge=100, description="How often the words so far are transcribed while speaking"
    )
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
    window_s: int = Field(
        10,
        ge=5,
        le=30,
        description="Shortest encoder window for live utterances (30 = Whisper's own)",
    )


class TTSConfig(_Component):
    """Text to speech with pyttsx3 (espeak-ng on Linux)."""

    voice: str | None = Field(None, description="Voice id or name; None for the default")
    rate: int = Field(180, ge=60, le=500, description="Words per minute")
    volume: float = Field(1.0, ge=0, le=1)


class EchoConfig(_Component):
    """Echo cancellation: heron's own voice removed from the microphone (see heron.agent.echo)."""

    backend: Literal["auto", "webrtc", "nlms", "off"] = Field(
        "auto", description="auto (webrtc when installed, else nlms), webrtc, nlms, or off"
    )
    max_delay_s: float = Field(
        0.6, gt=0, le=2, description="Longest speaker-to-microphone delay that is tracked"
    )
    tail_s: float = Field(
        0.3, ge=0, le=2, description="Echo counts as active this long after playback ends"
    )
    converged_erle_db: float = Field(
        15.0, ge=0, description="Echo reduction at which cancellation counts as working"
    )
    raised_vad_threshold: float = Field(
        0.9, gt=0, lt=1, description="VAD threshold while echo is active and not cancelled"
    )
    keep_user_voice: bool = Field(
        True,
        description="webrtc: while the user talks over heron, pass the linear filter's output "
        "(faster barge-in: WebRTC's suppressor hides an overlapping voice's start)",
    )


class ConversationConfig(_Component):
    """Turn-taking while heron speaks: barge-in, backchannels, questions cut at a pause."""

    barge_in: bool = Field(True, description="The user's speech interrupts heron's reply")
    barge_in_min_ms: int = Field(
        450,
        ge=0,
        description="Speech shorter than this (a cough, 'mm-hm') pauses heron, then it resumes",
    )
    merge_window_s: float = Field(
        2.0,
        ge=0,
        description="Speech resuming this soon after a turn began continues that question",
    )
    echo_words_ratio: float = Field(
        0.6, gt=0, le=1, description="An utterance this much made of heron's recent words is echo"
    )


class ListenConfig(_Component):
    """When speech is a turn: always, while a key is held, or after a wake phrase."""

    mode: Literal["always", "push_to_talk", "wake_phrase"] = Field(
        "always", description="always, push_to_talk, or wake_phrase"
    )
    wake_phrase: str = Field(
        "heron", min_length=1, description="Said at the start of an utterance to address heron"
    )
    wake_window_s: float = Field(
        8.0, gt=0, description="After the wake phrase alone, the next utterance within this long"
    )
    push_to_talk_key: str = Field("space", min_length=1, description="The talk key in a window")
    push_to_talk_grace_s: float = Field(
        0.3, ge=0, le=5, description="Speech this close to a key press still counts as in it"
    )


class MemoryConfig(_Component):
    """What heron remembers (Chroma) and how it embeds it (CLIP, or offline fallbacks)."""

    enabled: bool = Field(True, description="Remember frames, turns and notes; recall them")
    path: Path | None = Field(None, description="Embedded store folder; default <data_dir>/memory")
    server_url: str | None = Field(
        None, description="A Chroma server (http://host:8000) shared by sessions or machines"
    )
    model: str = Field(
        "Xenova/clip-vit-base-patch32",
        description="CLIP as ONNX: a Hugging Face repo id (found in its cache) or a folder",
    )
    download_model: bool = Field(
        False, description="Fetch the CLIP model from Hugging Face when it is not cached"
    )
    thumbnail_side: int = Field(320, ge=64, le=2048, description="Longest side of kept frames")
    recall_results: int = Field(3, ge=0, le=20, description="Memories put before the model")
    batch_size: int = Field(32, ge=1, le=1024, description="Images embedded per model call")


class GuardConfig(_Component):
    """What leaves the machine, what the model may be told by the world, what is said.

    ``privacy``: ``off`` sends frames and text as they are; ``redact`` removes personal
    data from text (and blurs faces when ``blur_faces``) before it goes to a remote
    endpoint; ``local-only`` never sends anything to a remote endpoint and answers
    offline instead. An endpoint is local when its host is ``localhost`` or resolves
    to a loopback address, or is named in ``local_hosts`` (private LAN machines are
    remote until listed there); ``endpoint`` overrides the decision.
    """

    privacy: Literal["off", "redact", "local-only"] = Field(
        "redact", description="off, redact (before remote endpoints), or local-only"
    )
    redact_text: bool = Field(True, description="Redact emails, phones, cards, IBANs, IDs")
    blur_faces: bool = Field(False, description="Blur faces in frames sent to remote endpoints")
    face_detector: Literal["auto", "centerface", "cascade"] = Field(
        "auto", description="centerface (pip install 'heron[faces]'), cascade, or auto"
    )
    phone_region: str = Field("US", min_length=2, max_length=2, description="For local numbers")
    endpoint: Literal["auto", "local", "remote"] = Field(
        "auto", description="Whether the model endpoint is on this machine; auto decides"
    )
    local_hosts: list[str] = Field(
        default_factory=list, description="Further hosts (e.g. a LAN server) counted as local"
    )
    injection_check: bool = Field(True, description="Withhold world text that gives orders")
    moderation: Literal["auto", "endpoint", "local", "off"] = Field(
        "auto", description="Check replies: endpoint API where it has one, else local rules"
    )


class MediaConfig(_Component):
    """Checking where an image came from (``check_media``, ``heron check``)."""

    trust_anchors: Path | None = Field(
        None, description="PEM file of C2PA trust anchors; signers they vouch for are trusted"
    )
    fetch_max_mb: float = Field(25.0, gt=0, le=500, description="Largest image fetched from a URL")
    fetch_timeout_s: float = Field(10.0, gt=0, le=120, description="Timeout for fetching a URL")
    allow_urls: bool = Field(True, description="Let the check_media tool fetch http(s) URLs")


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
    keyframes: KeyframeConfig = KeyframeConfig()
    microphone: MicrophoneConfig = MicrophoneConfig()
    speaker: SpeakerConfig = SpeakerConfig()
    vad: VADConfig = VADConfig()
    stt: STTConfig = STTConfig()
    tts: TTSConfig = TTSConfig()
    listen: ListenConfig = ListenConfig()
    conversation: ConversationConfig = ConversationConfig()
    echo: EchoConfig = EchoConfig()
    memory: MemoryConfig = MemoryConfig()
    guard: GuardConfig = GuardConfig()
    media: MediaConfig = MediaConfig()
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
