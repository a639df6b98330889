"""The RQ queues of the platform, in the order workers listen to them (first = most urgent)."""

from typing import Final

HIGH: Final = "yardmaster-high"
DEFAULT: Final = "yardmaster-default"
LOW: Final = "yardmaster-low"

#: Listening order of every report worker: strict priority, most urgent first.
PRIORITY_ORDER: Final = (HIGH, DEFAULT, LOW)
