"""One error hierarchy for heron.

Every error heron raises on purpose derives from :class:`HeronError`. Each says
whether trying again can help (``retryable``), so callers decide between a
retry, a fallback and a clear message without parsing text::

    HeronError
    ├── ConfigError              a setting has a wrong value (names key, value, what it accepts)
    ├── SourceError              a sensor cannot deliver
    │   ├── CameraError          the camera or video cannot be opened or read
    │   └── AudioSourceError     the microphone or audio file cannot be opened or read
    ├── SinkError                audio cannot be played or written
    ├── ModelError               a local model (VAD, STT, TTS, OCR) failed to load or run
    ├── VLMError                 the vision-language endpoint failed
    │   ├── VLMUnavailable       refused, unreachable or timed out (retryable)
    │   └── VLMResponseError     answered, but not with something usable
    ├── ToolError                a tool failed; its message goes back to the model
    │   └── ToolArgumentsError   the model called a tool with malformed arguments
    └── ScenarioError            a scripted session file is invalid
"""

from __future__ import annotations


class HeronError(Exception):
    """Base of every error heron raises on purpose."""

    retryable: bool = False

    def __init__(self, message: str, *, retryable: bool | None = None) -> None:
        super().__init__(message)
        if retryable is not None:
            self.retryable = retryable


class ConfigError(HeronError):
    """A setting has a wrong value."""


class SourceError(HeronError):
    """A sensor (camera, microphone, file) cannot deliver."""


class CameraError(SourceError):
    """The camera, video file or stream cannot be opened or read."""


class AudioSourceError(SourceError):
    """The microphone or audio file cannot be opened or read."""


class SinkError(HeronError):
    """Audio cannot be played or written."""


class ModelError(HeronError):
    """A local model failed to load or run."""


class VLMError(HeronError):
    """The vision-language model endpoint failed."""


class VLMUnavailable(VLMError):
    """The endpoint refused the connection, is unreachable or timed out."""

    retryable = True


class VLMResponseError(VLMError):
    """The endpoint answered, but not with something usable."""


class ToolError(HeronError):
    """A tool failed; the message goes back to the model as the tool's result."""


class ToolArgumentsError(ToolError):
    """The model called a tool with arguments that do not parse or validate."""


class ScenarioError(HeronError):
    """A scripted session file is invalid or names files that cannot be read."""
