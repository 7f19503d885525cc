"""Commands of the ``heron`` CLI beyond the core ones: one module each."""
