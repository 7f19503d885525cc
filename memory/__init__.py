"""What heron keeps.

- :mod:`heron.memory.session_log`: everything that happened in a session (JSON Lines).
- :mod:`heron.memory.store`: the memory of frames, photos, notes and turns in Chroma,
  recalled by words or by a picture, with :mod:`~heron.memory.timefilter` for "this morning".
- :mod:`heron.memory.clip` and :mod:`heron.memory.embedders`: CLIP through ONNX Runtime,
  and the offline fallbacks used when its weights are absent.
- :mod:`heron.memory.session_memory`: the memory as a session uses it (recall before
  thinking, each turn stored after); :mod:`heron.memory.indexer`: folders of photos.
"""
