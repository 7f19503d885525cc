"""Voice latency of heron: end of the user's speech → first reply audio, by stage.

Runs on the shared peer-benchmark inputs (``make_inputs.py``: ten spoken questions
and jfk as 16 kHz WAVs with measured ends of speech) with the shared scripted
OpenAI-compatible server (``scripted_llm.py``), so the figures stand beside the
other frameworks' measured the same way:

- the audio is pushed as 20 ms chunks at ``T0 + (k+1)·20 ms`` (real time, absolute
  deadlines), 1 s of lead-in silence, and after each file at least 1.5 s of silence
  and until the reply has been played plus 0.5 s;
- heron's own live components run on it: Silero VAD segmenting, faster-whisper
  tiny.en (int8, CPU), the LangGraph turn with the real ``openai`` client against the
  scripted server, pyttsx3/espeak-ng synthesis, and playback into an output device
  (``--device pulse`` for PulseAudio's null sink; ``--device none`` to stop the clock
  when the first audio block is ready, as the peer harness does);
- per turn: ``endpoint`` (VAD decided the utterance ended), ``transcript`` (Whisper
  done), ``reply`` (the graph produced the answer text), ``first_audio`` (the first
  reply block reached the output), all in ms after the end of speech; medians and
  p90 (nearest rank) over the question turns, and the word error rate.

It also measures, with ``heron live`` as a separate process on an MJPEG camera and
the virtual microphone, the time from start to ready and the peak memory (VmHWM).

    python bench/voice_latency.py --peers ../shared/bench/peers --repeat 2

Prints the machine, the figures, and the peer's published medians beside them.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import re
import socket
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import soundfile as sf
from machine_info import describe_machine

from heron.agent.config import load_settings
from heron.agent.conversation import Conversation
from heron.agent.events import SAMPLE_RATE, AudioChunk, Utterance
from heron.agent.listener import Listener
from heron.agent.playback import PlaybackResult, Speaker, SpeakerSink
from heron.agent.session import Session, TurnResult
from heron.agent.stt import Transcriber
from heron.agent.tts import ESPEAK_SAMPLE_RATE, Synthesizer
from heron.agent.turn_modes import TurnPolicy
from heron.agent.vad import SileroVAD, UtteranceSegmenter
from heron.memory.session_log import read_session_log

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test support code
from tests.support.mjpeg import MJPEGServer
from tests.support.render import render_text_image
from tests.support.words import word_errors, words

CHUNK = 320  # 20 ms
PEER = {"pipecat default": (851, 3258), "pipecat fast (0.2 s timeout)": (808, 905)}
"""pipecat 1.14.0 on this machine, first TTS audio after end of speech (median, p90 ms),
from ../shared/bench/peers/pipecat/results.md."""


class PacedStream:
    """A microphone made of files: 20 ms chunks on absolute deadlines, silence between."""

    def __init__(
        self,
        items: list[dict[str, Any]],
        idle: threading.Event,
        *,
        barge_in_after_s: float | None = None,
    ) -> None:
        self.items = items
        self.idle = idle
        self.barge_in_after_s = barge_in_after_s
        self.heron_speaking = threading.Event()
        """Set by the output when a reply's audio plays (barge-in runs wait for it)."""
        """Set by the consumer when heron has answered everything it heard."""
        self.file_t0: dict[int, float] = {}
        self.current = -1
        self.max_lateness = 0.0
        self._gen = self._chunks()

    def _chunks(self) -> Any:
        t0 = time.monotonic()
        k = 0
        silence = np.zeros(CHUNK, np.float32)

        def emit(samples: np.ndarray) -> AudioChunk:
            nonlocal k
            due = t0 + (k + 1) * CHUNK / SAMPLE_RATE
            now = time.monotonic()
            if due > now:
                time.sleep(due - now)
            else:
                self.max_lateness = max(self.max_lateness, now - due)
            chunk = AudioChunk(samples, t_capture=t0 + k * CHUNK / SAMPLE_RATE)
            k += 1
            return chunk

        for _ in range(SAMPLE_RATE // CHUNK):
            yield emit(silence)
        for index, item in enumerate(self.items):
            if self.barge_in_after_s is not None and index > 0:
                # interrupt the previous reply once it has been playing a while
                t_wait = time.monotonic()
                while not self.heron_speaking.is_set() and time.monotonic() - t_wait < 10:
                    yield emit(silence)
                t_spoke = time.monotonic()
                while time.monotonic() - t_spoke < self.barge_in_after_s:
                    yield emit(silence)
            audio, rate = sf.read(item["file"], dtype="float32")
            assert rate == SAMPLE_RATE and audio.ndim == 1, item["file"]
            audio = np.concatenate([audio, np.zeros((-len(audio)) % CHUNK, np.float32)])
            self.current = index
            self.file_t0[index] = t0 + k * CHUNK / SAMPLE_RATE
            for start in range(0, len(audio), CHUNK):
                yield emit(audio[start : start + CHUNK])
            self.heron_speaking.clear()  # from here on: the reply to this question
            self.idle.clear()
            t_silence = time.monotonic()
            t_done: float | None = None
            while self.barge_in_after_s is None or index == len(self.items) - 1:
                yield emit(silence)
                now = time.monotonic()
                if t_done is None and self.idle.is_set():
                    t_done = now
                if now - t_silence >= 1.5 and t_done is not None and now - t_done >= 0.5:
                    break
                if now - t_silence >= 12.0:
                    break

    def start(self) -> None: ...

    def stop(self) -> None: ...

    def read(self, timeout: float | None = None) -> AudioChunk | None:
        return next(self._gen, None)

    def item_at(self, t: float) -> int:
        """The input file being played at monotonic time ``t``."""
        started = [index for index, t0 in self.file_t0.items() if t0 <= t]
        return max(started) if started else 0


class FirstBlockSink:
    """Stops the clock when the first block of a reply is ready; plays nothing."""

    def play(
        self, samples: np.ndarray, sample_rate: int, *, cancel: threading.Event | None = None
    ) -> PlaybackResult:
        now = time.monotonic()
        return PlaybackResult(now, now, now, len(samples) / sample_rate)

    def stop(self) -> None: ...

    def close(self) -> None: ...


def wer(reference: str, heard: str) -> float:
    return word_errors(reference, heard) / max(1, len(words(reference)))


def p90(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[max(0, min(len(ordered) - 1, int(np.ceil(0.9 * len(ordered))) - 1))]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_scripted_llm(peers: Path, log_path: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            str(peers / "scripted_llm.py"),
            "--port",
            str(port),
            "--log",
            str(log_path),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return proc, f"http://127.0.0.1:{port}/v1"
        time.sleep(0.05)
    proc.kill()
    raise RuntimeError("scripted_llm.py did not start")


async def measure_turns(
    items: list[dict[str, Any]],
    base_url: str,
    device: str,
    data_dir: Path,
    *,
    barge_in_after_s: float | None = None,
) -> tuple[list[dict[str, Any]], float, Conversation]:
    """Every input through heron's live conversation logic; one row per turn.

    With ``barge_in_after_s``, each input after the first is played that long after
    heron starts speaking its previous reply (the user interrupts it).
    """
    settings = load_settings(
        data_dir=data_dir,
        vlm={"base_url": base_url, "model": "scripted", "max_retries": 0},
        speaker={"device": None if device == "default" else device},
    )
    transcriber = Transcriber(settings.stt)
    synthesizer = Synthesizer(settings.tts)
    transcriber.warmup()
    synthesizer.synthesize("warm up")
    # as in heron live: the output stream stays open, primed with silence
    sink: Any = (
        FirstBlockSink()
        if device == "none"
        else SpeakerSink(settings.speaker, keep_alive_s=math.inf)
    )
    sink.play(np.zeros(ESPEAK_SAMPLE_RATE // 5, np.float32), ESPEAK_SAMPLE_RATE)
    speaker = Speaker(synthesizer, sink)
    idle = threading.Event()
    stream = PacedStream(items, idle, barge_in_after_s=barge_in_after_s)
    loop = asyncio.get_running_loop()
    inbox: asyncio.Queue[Utterance | None] = asyncio.Queue()
    rows: list[dict[str, Any]] = []
    async with Session(settings) as session:
        conversation = Conversation(
            session, speaker, settings.conversation, TurnPolicy(settings.listen),
            emit=lambda event: None, say=lambda line: None,
        )  # fmt: skip
        if isinstance(sink, SpeakerSink):
            sink.on_output = lambda block, rate, t: stream.heron_speaking.set()
        listener = Listener(
            stream,  # type: ignore[arg-type]
            UtteranceSegmenter(settings.vad, SileroVAD()),
            transcriber,
            on_utterance=lambda u: loop.call_soon_threadsafe(inbox.put_nowait, u),
            on_voice=lambda e: loop.call_soon_threadsafe(conversation.on_voice, e),
            source_kind="microphone",
        )
        listener.start()
        watcher = asyncio.create_task(asyncio.to_thread(listener.done.wait))
        while True:
            get = asyncio.create_task(inbox.get())
            done, _ = await asyncio.wait({get, watcher}, return_when=asyncio.FIRST_COMPLETED)
            if get not in done:
                get.cancel()
                break
            utterance = get.result()
            assert utterance is not None
            await conversation.handle(utterance)
            task = conversation.current_task
            if task is not None and inbox.empty():
                task.add_done_callback(lambda _: idle.set() if inbox.empty() else None)
        await conversation.close()
        for utterance, result in conversation.finished:
            rows.append(_row(items, stream, utterance, result, session))
            row = rows[-1]
            print(
                f"  {row['id']:<8} endpoint {row['endpoint']} transcript "
                f"{row['transcript']} reply {row['reply']} first audio "
                f"{row['first_audio']}  overhead {row['overhead']} ms | {utterance.text}",
                flush=True,
            )
    listener.stop()
    sink.close()
    synthesizer.close()
    return rows, stream.max_lateness, conversation


def _row(
    items: list[dict[str, Any]],
    stream: PacedStream,
    utterance: Utterance,
    result: TurnResult | None,
    session: Session,
) -> dict[str, Any]:
    index = stream.item_at(utterance.t_end)
    item = items[index]
    t_end = stream.file_t0[index] + item["speech_end_s"]
    marks = result.marks if result is not None else {}
    # a question continued after a pause is answered as one (the turn's text)
    heard = result.user_text if result is not None else utterance.text

    def ms(t: float | None) -> float | None:
        return None if t is None else round((t - t_end) * 1000, 1)

    return {
        "id": item["id"],
        "ref": item["text"],
        "heard": heard,
        "wer": round(wer(item["text"], heard), 3),
        "vad_end": ms(utterance.t_end),
        "endpoint": ms(utterance.t_endpoint),
        "transcript": ms(utterance.t_final),
        "reply": ms(marks.get("reply_ready")),
        "first_audio": ms(marks.get("first_audio")),
        "interrupted": result is None,
        "overhead": overhead_ms(session, result) if result is not None else None,
    }


def overhead_ms(session: Session, result: TurnResult) -> float | None:
    """heron's own time in a turn: start to reply ready, less model and tool time."""
    marks = result.marks
    if "reply_ready" not in marks or "turn_start" not in marks:
        return None
    spent = 0.0
    for record in read_session_log(session.dir / "log.jsonl"):
        if record.get("turn") == result.turn and record["kind"] in ("think", "tool.result"):
            spent += float(record.get("ms") or 0.0)
    return round((marks["reply_ready"] - marks["turn_start"]) * 1000 - spent, 1)


def read_session_log_records(data_dir: Path) -> list[dict[str, Any]]:
    records: list[dict[str, Any]] = []
    for path in sorted((data_dir / "sessions").glob("*/log.jsonl")):
        records += list(read_session_log(path))
    return records


def summarize(rows: list[dict[str, Any]], items: list[dict[str, Any]]) -> dict[str, Any]:
    """One row per input file: its last turn (earlier ones were premature cuts)."""
    final: dict[str, dict[str, Any]] = {}
    premature: dict[str, int] = {}
    for row in rows:
        if row["interrupted"] or (row["vad_end"] is not None and row["vad_end"] < -300):
            premature[row["id"]] = premature.get(row["id"], 0) + 1
            continue
        final.setdefault(row["id"], row)
    questions = [r for key, r in final.items() if not key.startswith("jfk")]
    stages = ["endpoint", "transcript", "reply", "first_audio"]
    out: dict[str, Any] = {"turns": len(questions), "premature": premature}
    for stage in stages:
        values = [r[stage] for r in questions if r[stage] is not None]
        if values:
            out[stage] = (round(statistics.median(values)), round(p90(values)))
    splits = {
        "endpointing": ("vad_end", "endpoint"),
        "transcription": ("endpoint", "transcript"),
        "graph": ("transcript", "reply"),
        "synthesis": ("reply", "first_audio"),
    }
    for name, (start, end) in splits.items():
        values = [
            r[end] - (0.0 if start == "vad_end" else r[start])
            for r in questions
            if r[end] is not None and r[start] is not None
        ]
        if values:
            out[name] = (round(statistics.median(values)), round(p90(values)))
    overheads = [r["overhead"] for r in questions if r["overhead"] is not None]
    if overheads:
        out["overhead"] = (round(statistics.median(overheads), 1), round(p90(overheads), 1))
    out["wer"] = round(statistics.mean(r["wer"] for r in questions), 3) if questions else None
    out["jfk"] = [r for key, r in final.items() if key.startswith("jfk")]
    out["missing"] = [it["id"] for it in items if it["id"] not in final]
    return out


def measure_live_process(audio_device: str, seconds: float) -> dict[str, float]:
    """Start ``heron live`` on an MJPEG camera and the virtual mic: ready time, peak RSS."""
    frame = render_text_image(["LIBRARY OPENS AT 9 AM"])
    with MJPEGServer(lambda: frame, fps=15) as camera:
        t0 = time.monotonic()
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "heron.agent.cli",
                "live",
                "--camera",
                camera.url,
                "--mic",
                audio_device,
                "--speaker",
                audio_device,
                "--offline",
                "--duration",
                str(seconds),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        ready = None
        for line in proc.stdout:
            if line.startswith("listening"):
                ready = time.monotonic() - t0
                break
        peak_kb = 0
        while proc.poll() is None:
            status = Path(f"/proc/{proc.pid}/status").read_text()
            peak_kb = max(peak_kb, int(re.search(r"VmHWM:\s+(\d+)", status).group(1)))  # type: ignore[union-attr]
            time.sleep(0.25)
        proc.stdout.read()
    return {"ready_s": round(ready or float("nan"), 2), "peak_rss_mb": round(peak_kb / 1024, 1)}


machine = describe_machine


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--peers", type=Path, default=Path("../shared/bench/peers"))
    parser.add_argument("--inputs", type=Path, default=Path("/tmp/heron-bench/inputs"))
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", default="", help="comma-separated ids (q00,jfk)")
    parser.add_argument("--device", default="pulse", help="output device, or 'none'")
    parser.add_argument("--no-process", action="store_true", help="skip the heron live run")
    parser.add_argument("--barge-in", action="store_true", help="also measure barge-in")
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()

    manifest = args.inputs / "manifest.json"
    if not manifest.exists():
        jfk = args.peers.parent.parent / "data" / "speech" / "jfk.flac"
        subprocess.run(
            [
                sys.executable,
                str(args.peers / "make_inputs.py"),
                "--out",
                str(args.inputs),
                "--jfk",
                str(jfk),
            ],
            check=True,
            stdout=subprocess.DEVNULL,
        )
    items = json.loads(manifest.read_text())["items"]
    for item in items:
        item["file"] = str(args.inputs / Path(item["file"]).name)
    if args.only:
        items = [it for it in items if it["id"] in args.only.split(",")]
    run_items = [items[0]] + [
        dict(it, id=f"{it['id']}#{r + 1}") for r in range(args.repeat) for it in items
    ]
    run_items[0] = dict(run_items[0], id="warmup")

    print(f"machine: {machine()}")
    print(f"inputs: {len(items)} files x {args.repeat}; output device: {args.device}\n")
    log_path = args.inputs.parent / "llm_requests.jsonl"
    server, base_url = start_scripted_llm(args.peers, log_path)
    data_dir = args.inputs.parent / "data"
    try:
        rows, lateness, _ = asyncio.run(measure_turns(run_items, base_url, args.device, data_dir))
        barge = None
        if args.barge_in and args.device != "none":
            print("\nbarge-in: each question interrupts the previous reply 1 s into it")
            barge_items = [dict(it, id=f"{it['id']}@barge") for it in items if it["id"] != "jfk"]
            barge_rows, _, conversation = asyncio.run(
                measure_turns(
                    barge_items, base_url, args.device, data_dir / "barge", barge_in_after_s=1.0
                )
            )
            barge = (barge_rows, conversation)
    finally:
        server.terminate()
    rows = [r for r in rows if r["id"] != "warmup"]
    summary = summarize(rows, run_items[1:])
    print(f"\npacing max lateness {lateness * 1000:.1f} ms")
    print(f"\nend of speech → stage, ms, median / p90 over {summary['turns']} question turns:")
    for stage in ("endpoint", "transcript", "reply", "first_audio"):
        if stage in summary:
            print(f"  {stage:<13} {summary[stage][0]:>6} / {summary[stage][1]}")
    print("each stage on its own, ms, median / p90:")
    for stage in ("endpointing", "transcription", "graph", "synthesis"):
        if stage in summary:
            print(f"  {stage:<13} {summary[stage][0]:>6} / {summary[stage][1]}")
    if "first_audio" in summary:
        median, tail = summary["first_audio"]
        for name, (peer_median, peer_p90) in PEER.items():
            print(
                f"  vs {name}: {peer_median} / {peer_p90} ms → heron is "
                f"{median / peer_median:.2f}x / {tail / peer_p90:.2f}x"
            )
    if "overhead" in summary:
        print(f"  heron's own time per turn (graph, state, log, checkpoint): "
              f"{summary['overhead'][0]} / {summary['overhead'][1]} ms")  # fmt: skip
    print(f"  word error rate (questions): {summary['wer']}")
    print(
        "  turns cut off by the user going on (merged into the next): "
        f"{summary['premature'] or 'none'}"
    )
    for row in summary["jfk"]:
        print(f"  jfk: first audio {row['first_audio']} ms, WER {row['wer']}: {row['heard']}")
    if summary["missing"]:
        print(f"  no turn for: {summary['missing']}")
    if barge is not None:
        barge_rows, conversation = barge
        pauses = conversation.barge_in_ms
        cut = [r for r in barge_rows if r["interrupted"]]
        latency = conversation.speaker.sink.output_latency_s * 1000
        if pauses:
            print(
                f"\nbarge-in: voice onset → playback paused {statistics.median(pauses):.0f} / "
                f"{p90(pauses):.0f} ms (median / p90 over {len(pauses)}), plus the output "
                f"device's latency {latency:.0f} ms → silent after "
                f"{statistics.median(pauses) + latency:.0f} / {p90(pauses) + latency:.0f} ms"
            )
        records = read_session_log_records(data_dir / "barge")
        said = [r for r in records if r["kind"] == "interrupted"]
        print(f"  replies cut off: {len(cut)} of {len(barge_rows)}; recorded as said: "
              f"{[r.get('said') for r in said][:3]}")  # fmt: skip
    if not args.no_process and args.device != "none":
        live = measure_live_process(args.device, 20)
        print(
            f"\nheron live: start → ready {live['ready_s']} s, peak memory {live['peak_rss_mb']} MB"
        )
    if args.json:
        args.json.write_text(
            json.dumps({"machine": machine(), "rows": rows, "summary": summary}, indent=1)
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
