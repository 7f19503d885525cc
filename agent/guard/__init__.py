"""Guards: world text as data, privacy before a remote endpoint, checked replies."""
