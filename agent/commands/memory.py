"""``heron memory``: index a folder of photos, search, forget, and see what is kept.

heron memory index DIR           remember every photo under DIR (resumable)
heron memory search QUERY        the best matches for words (or --image FILE)
heron memory forget --all | --id ID | --since T --until T
heron memory stats               what the memory holds, and with which embedders
heron memory reindex             embed what other embedders stored with the current one
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from ..config import Settings
from ..errors import HeronError

HELP = "index photos, search and forget what heron remembers"


def add_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "memory",
        help=HELP,
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="memory_command", metavar="ACTION", required=True)
    index = sub.add_parser("index", help="remember every photo in a folder (resumable)")
    index.add_argument("folder", type=Path)
    index.add_argument("--no-progress", action="store_true", help="no progress bar")
    search = sub.add_parser("search", help="find memories by words, or like an image")
    search.add_argument("query", nargs="*", help="words to look for")
    search.add_argument("--image", type=Path, help="find pictures like this image file")
    search.add_argument("--when", help="'today', 'this morning', 'last 2 hours', a date")
    search.add_argument("-n", "--limit", type=int, default=5)
    search.add_argument("--json", action="store_true", help="print JSON")
    forget = sub.add_parser("forget", help="forget memories, their vectors and pictures")
    group = forget.add_mutually_exclusive_group(required=True)
    group.add_argument("--all", action="store_true", help="everything")
    group.add_argument("--id", action="append", help="one memory (repeatable)")
    group.add_argument("--since", help="everything from this time on (ISO, 10am, today)")
    forget.add_argument("--until", help="with --since: up to this time")
    sub.add_parser("stats", help="what the memory holds").add_argument(
        "--json", action="store_true"
    )
    sub.add_parser("reindex", help="embed other embedders' memories with the current one")


def _progress(enabled: bool) -> Any:
    if not enabled:
        return None
    from tqdm import tqdm

    def wrap(items: Iterable[Any], total: int | str) -> Iterable[Any]:
        if isinstance(total, str):  # (items, what): re-indexing
            return tqdm(items, desc=total, unit="batch", file=sys.stderr)
        return tqdm(items, total=total, desc="indexing", unit="photo", file=sys.stderr)

    return wrap


def _check(args: argparse.Namespace) -> None:
    """Mistakes in the arguments, found before the store is opened."""
    from heron.memory.timefilter import parse_when

    action = args.memory_command
    if action == "index" and not args.folder.is_dir():
        raise HeronError(f"not a folder: {args.folder}")
    if action == "search" and not " ".join(args.query).strip() and args.image is None:
        raise HeronError("give words to search for, or --image FILE")
    if action == "forget" and args.until and not args.since:
        raise HeronError("--until goes with --since")
    for phrase in (getattr(args, "when", None), getattr(args, "since", None)):
        if phrase:
            parse_when(phrase if action == "search" else f"since {phrase}")
    if action == "forget" and args.until:
        parse_when(f"before {args.until}")


def run(settings: Settings, args: argparse.Namespace) -> int:
    from heron.memory.setup import choose_embedders, open_memory

    _check(args)
    embedders = choose_embedders(settings.memory)
    if embedders.notice:
        print(f"heron: note: {embedders.notice}", file=sys.stderr)
    store = open_memory(settings, embedders)
    try:
        action = args.memory_command
        progress = not getattr(args, "no_progress", False) and sys.stderr.isatty()
        if action != "forget" and store.pending_reindex():
            added = store.reindex(progress=_progress(progress or action == "reindex"))
            print(f"re-indexed {added} memories for {store.image_embedder.name}", file=sys.stderr)
        if action == "index":
            return _index(store, args.folder, progress)
        if action == "search":
            return _search(store, args)
        if action == "forget":
            return _forget(store, args)
        if action == "stats":
            stats = store.stats()
            print(json.dumps(stats, indent=2) if args.json else _stats_text(stats))
        return 0
    finally:
        store.close()


def _index(store: Any, folder: Path, progress: bool) -> int:
    from heron.memory.indexer import index_folder

    report = index_folder(store, folder, progress=_progress(progress))
    print(
        f"{report.found} images in {folder}: {report.added} added, "
        f"{report.already} already indexed, {len(report.unreadable)} unreadable"
    )
    if report.unreadable:
        print("skipped (unreadable):")
        for path, why in report.unreadable:
            print(f"  {path}: {why}")
    return 0


def _search(store: Any, args: argparse.Namespace) -> int:
    from heron.memory.indexer import read_image
    from heron.memory.timefilter import TimeRange, parse_when

    when = parse_when(args.when) if args.when else TimeRange()
    query = " ".join(args.query).strip()
    hits = []
    if args.image is not None:
        try:
            image, _ = read_image(args.image)
        except (OSError, ValueError) as exc:
            raise HeronError(f"cannot read {args.image}: {exc}") from None
        hits += store.recall_image(image, when=when, limit=args.limit)
    if query:
        hits += store.recall_text(query, when=when, limit=args.limit)
    hits.sort(key=lambda m: -m.score)
    if args.json:
        print(json.dumps([m.model_dump() for m in hits[: args.limit]], indent=2))
        return 0
    if not hits:
        print("nothing relevant remembered")
        return 1
    for m in hits[: args.limit]:
        where = m.source if m.source and m.source != "camera" else (m.thumbnail or "")
        text = " ".join(m.text.split())[:80]
        print(f"{m.score:6.3f}  {m.time}  {m.kind:<10} {m.id}  {where}  {text}".rstrip())
    return 0


def _forget(store: Any, args: argparse.Namespace) -> int:
    from heron.memory.timefilter import TimeRange, parse_when

    if args.all:
        count = store.forget(everything=True)
    elif args.id:
        count = store.forget(ids=args.id)
    else:
        start = parse_when(f"since {args.since}")
        end = parse_when(f"before {args.until}") if args.until else TimeRange()
        count = store.forget(when=TimeRange(start.since, end.until))
    print(f"forgot {count} memories")
    return 0


def _stats_text(stats: dict[str, Any]) -> str:
    lines = [
        f"store: {stats['store']}",
        f"embedders: images {stats['image_embedder']}, text {stats['text_embedder']}",
        "items: " + (", ".join(f"{k} {v}" for k, v in sorted(stats["kinds"].items())) or "none"),
        f"thumbnails: {stats['thumbnails']} ({stats['thumbnail_bytes'] / 1e6:.1f} MB)",
        "collections:",
    ]
    for name, c in sorted(stats["collections"].items()):
        mark = "*" if c["active"] else " "
        lines.append(f" {mark} {name}: {c['items']} items ({c['embedder']}, dim {c['dim']})")
    return "\n".join(lines)
