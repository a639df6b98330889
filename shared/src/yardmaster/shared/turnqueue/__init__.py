"""The turn queue: take a token, and when your turn comes, exchange it for a picture.

:mod:`.core` holds the rules as pure functions (tokens, order of issue, deadlines, outcomes,
events); :mod:`.store` enforces the same rules atomically in Redis, one Lua script per
operation, so any number of API processes agree; :mod:`.keys` names every Redis key it uses.
"""
