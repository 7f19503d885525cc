"""What heron keeps: the session log (:mod:`heron.memory.session_log`)."""
