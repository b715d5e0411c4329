"""Public helpers of the framework, for plugins and audio backends as much as for the framework itself.

- :mod:`.aio`: owned tasks (``TaskSet``), a closable channel (``Chan``), ``cancel_and_wait``,
  ``EventEmitter`` and the loop clock ``now`` (as LiveKit Agents' ``utils.aio``).
- :mod:`.gc_freeze`: ``OldObjectFreezer``, short garbage-collector pauses for a process that
  hosts many sessions.
- :mod:`.windowed_vad`: the base for VADs that score fixed windows of audio (webrtcvad, Silero).
"""
