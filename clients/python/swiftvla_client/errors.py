"""Errors of the robot client, each saying what the robot can do about it."""

from __future__ import annotations

import re
from typing import Optional

import grpc


class FleetError(Exception):
    """Base of every error the client raises."""


def _reason(details: str) -> str:
    # The learner prefixes refusals with its counter key: "[non_finite] non-finite value: ...".
    m = re.match(r"\[([a-z_]+)\]", details or "")
    return m.group(1) if m else ""


class EpisodeRejected(FleetError):
    """The learner refused an episode as invalid (INVALID_ARGUMENT, FAILED_PRECONDITION or
    RESOURCE_EXHAUSTED). Re-sending cannot help; the episode is dropped from the queue."""

    def __init__(self, episode_id: str, code: grpc.StatusCode, details: str):
        self.episode_id = episode_id
        self.code = code
        self.details = details
        #: The learner's counter key, e.g. "non_finite", "shape", "too_large".
        self.reason = _reason(details)
        super().__init__(f"episode {episode_id} rejected: {code.name}: {details}")


class RegistrationRefused(FleetError):
    """The learner refused to register this robot (bad token, unknown embodiment or task)."""

    def __init__(self, code: grpc.StatusCode, details: str):
        self.code = code
        self.details = details
        self.reason = _reason(details)
        super().__init__(f"registration refused: {code.name}: {details}")


class LearnerUnavailable(FleetError):
    """The learner could not be reached (or kept failing transiently) for longer than the
    retry window. Nothing is lost: unacked episodes stay queued for the next `flush()`."""

    def __init__(self, what: str, last: Optional[grpc.RpcError]):
        self.last = last
        detail = f"{last.code().name}: {last.details()}" if last is not None else "no attempt"
        super().__init__(f"{what}: learner unavailable ({detail})")


class WeightTransferError(FleetError):
    """A damaged or inconsistent policy version; the robot keeps its current weights."""
