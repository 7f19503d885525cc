"""heron's agent: sensors, speech, the vision-language model, the turn graph, the CLI.

Start with :class:`heron.agent.session.Session` (one conversation, driven by any
frame source and any ``speak`` function), :func:`heron.agent.live.run_live` (camera,
microphone and speaker) or :func:`heron.agent.runner.run_scenario` (a scripted
session from files). Settings: :func:`heron.agent.config.load_settings`.
"""
