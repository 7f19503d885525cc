"""Screen-replay check: how well it tells photographed screens from ordinary photos, and how fast.

The screens are simulated the way light takes them (tests/support/screens.py):
a picture drawn on a display of RGB subpixel stripes with black gaps, resampled
by a camera through a perspective warp, lens blur, noise and JPEG, which gives
real aliasing moiré; some shots add rolling-shutter refresh banding, a bezel
with the room around it, glare. The ordinary photos are scikit-image's samples
cropped to 640×480 with blur, noise and JPEG. ``page`` and ``text`` (lines of
print, periodic on their own) are reported apart as hard cases.

It prints, at the warning threshold (``WARN_SCORE``):

- detection rate on all screen shots, and on those whose grid keeps at least
  10 % of its contrast through the lens blur (below that no single-frame
  detector can see the grid: the photo is as smooth as any other);
- detection rate on banding-only shots (grid blurred away, bands kept);
- false-positive rate on ordinary photos, and on pages of print;
- the time of one call at 640×480 (median and p90) on this machine.

    python bench/screen_replay.py            # about a minute
    python bench/screen_replay.py --per 6 --seed 7
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # the test support code
from heron.tools.screen_replay import WARN_SCORE, screen_replay_score
from tests.support.screens import (
    PHOTOS,
    grid_contrast,
    ordinary_photo,
    photo,
    random_shot,
    screen_photo,
)

HARD = ("page", "text")


def _rate(flags: list[bool]) -> str:
    return f"{sum(flags)}/{len(flags)} = {100 * sum(flags) / max(1, len(flags)):.1f} %"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--per", type=int, default=4, help="shots per sample picture")
    parser.add_argument("--seed", type=int, default=2026)
    args = parser.parse_args()
    rng = np.random.default_rng(args.seed)

    screens: list[tuple[float, bool]] = []  # (grid contrast, flagged)
    banding_only: list[bool] = []
    photos: list[bool] = []
    print_pages: list[bool] = []
    scores_screen: list[float] = []
    scores_photo: list[float] = []
    false_alarms: list[str] = []
    for name in PHOTOS:
        content = photo(name)
        for k in range(args.per):
            shot = random_shot(rng)
            room = photo(PHOTOS[(k * 7 + len(name)) % len(PHOTOS)])
            frame = screen_photo(
                content, shot, rng, room=room if shot.screen_fraction < 1 else None
            )
            result = screen_replay_score(frame)
            screens.append((grid_contrast(shot), result.score >= WARN_SCORE))
            scores_screen.append(result.score)

            # A high-density screen far enough away that its grid is gone, with bands.
            faint = dataclasses.replace(
                shot, pitch=1.0, blur=1.0, banding=float(rng.uniform(0.06, 0.2))
            )
            frame = screen_photo(
                content, faint, rng, room=room if shot.screen_fraction < 1 else None
            )
            banding_only.append(screen_replay_score(frame).score >= WARN_SCORE)

            result = screen_replay_score(ordinary_photo(name, rng))
            (print_pages if name in HARD else photos).append(result.score >= WARN_SCORE)
            if result.score >= WARN_SCORE:
                false_alarms.append(f"{name} ({result.score:.2f})")
            if name not in HARD:
                scores_photo.append(result.score)

    frame = screen_photo(photo("astronaut"), random_shot(rng), rng)
    plain = ordinary_photo("coffee", rng)
    times, cpu = [], []
    load = os.getloadavg()[0]
    for i in range(60):
        t0, c0 = time.perf_counter(), time.process_time()
        screen_replay_score(frame if i % 2 else plain)
        times.append((time.perf_counter() - t0) * 1000)
        cpu.append((time.process_time() - c0) * 1000)
    times.sort()

    print(
        f"machine: {platform.machine()} {platform.processor() or ''} {os.cpu_count()} cores, "
        f"{platform.system()} {platform.release()}, Python {platform.python_version()}"
    )
    print(
        f"set: {len(PHOTOS)} sample pictures × {args.per} shots each, seed {args.seed}; "
        f"warning threshold {WARN_SCORE}"
    )
    visible = [flag for contrast, flag in screens if contrast >= 0.1]
    print(f"screens flagged, all shots:              {_rate([f for _, f in screens])}")
    print(f"screens flagged, grid contrast >= 10 %:  {_rate(visible)}")
    print(f"screens flagged, grid contrast <  10 %:  {_rate([f for c, f in screens if c < 0.1])}")
    print(f"banding-only screens flagged:            {_rate(banding_only)}")
    print(f"ordinary photos flagged (false alarms):  {_rate(photos)}")
    print(f"pages of print flagged (false alarms):   {_rate(print_pages)}")
    if false_alarms:
        print(f"false alarms: {', '.join(false_alarms)}")
    print(
        f"median score: screens {statistics.median(scores_screen):.2f}, "
        f"photos {statistics.median(scores_photo):.2f}"
    )
    print(
        f"time per 640×480 frame: median {statistics.median(times):.1f} ms, "
        f"p90 {times[int(0.9 * len(times))]:.1f} ms wall (target < 30 ms); CPU time "
        f"median {statistics.median(cpu):.1f} ms; load average at the start {load:.1f}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
