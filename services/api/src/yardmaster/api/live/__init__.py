"""Live views: one Redis subscription per API process, relayed to any number of streams.

See :mod:`.hub` (the subscription and who may watch), :mod:`.channel` (what each stream
reads) and :mod:`.sse` (how a stream is written).
"""
