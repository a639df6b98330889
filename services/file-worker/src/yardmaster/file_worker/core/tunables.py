"""The file worker's timing parameters, derived from the simulation speed (design note 8.5)."""

from __future__ import annotations

from dataclasses import dataclass


def _clamp(value: float, low: float, high: float) -> float:
    return max(low, min(high, value))


@dataclass(frozen=True)
class Tunables:
    """Lease TTL, heartbeat, self-fencing margin and scan interval, in real seconds."""

    lease_ttl: float
    heartbeat: float
    margin: float
    poll: float
    max_attempts: int = 5

    @classmethod
    def for_speed(cls, seconds_in_min: float) -> Tunables:
        """Defaults for ``seconds_in_min`` real seconds per simulated minute."""
        ttl = _clamp(2 * seconds_in_min, 0.2, 30.0)
        return cls(
            lease_ttl=ttl,
            heartbeat=ttl / 4,
            margin=ttl / 4,
            poll=_clamp(0.25 * seconds_in_min, 0.002, 1.0),
        )
