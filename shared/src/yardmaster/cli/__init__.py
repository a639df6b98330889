"""``yardmaster``: the command-line client of the Yardmaster API.

Parsing (:mod:`.parser`) feeds commands (:mod:`.commands`), which call the API through a small
typed client (:mod:`.client`) and print what pure functions (:mod:`.formatting`) make of the
answers. Exit codes are in :mod:`.errors`.
"""
