"""Native layouts of the learner's embodiments and their map into the 64-slot unified space.

The registration response does not carry the slot map, so the client ships it. The table
mirrors `EmbodimentKind.spec` (Sources/RobotSim/Embodiment.swift) and the slot ranges of
`UnifiedActionSpace` (Sources/RobotData/UnifiedActionSpace.swift); the Python client test
(Tests/FleetTests/PythonClientTests.swift) compares the two, so a drift fails CI.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import numpy as np

#: Width of Green-VLA's unified action vector.
UNIFIED_DIMENSION = 64

# Slot ranges of the unified space (see UnifiedActionSpace.swift).
LEFT_ARM = range(0, 7)
LEFT_GRIPPER = 13
RIGHT_ARM = range(14, 21)
RIGHT_GRIPPER = 27
TORSO = range(28, 32)
END_EFFECTOR_POSITION = range(35, 38)
END_EFFECTOR_QUATERNION = range(38, 42)  # state only
END_EFFECTOR_RPY = range(42, 45)


def arm_slots(dof: int, block: range) -> Tuple[int, ...]:
    """Slots of an arm with `dof` joints in a 7-slot block, right-aligned (as in Swift)."""
    if not 1 <= dof <= len(block):
        raise ValueError(f"an arm block holds 1...{len(block)} joints, not {dof}")
    return tuple(range(block.stop - dof, block.stop))


@dataclass(frozen=True)
class EmbodimentLayout:
    """One embodiment's native widths and its action map: native entry i -> unified slot
    `action_slots[i]`; unused slots hold 0."""

    name: str
    state_dim: int
    action_slots: Tuple[int, ...]

    def __post_init__(self) -> None:
        slots = self.action_slots
        if len(set(slots)) != len(slots):
            raise ValueError(f"{self.name}: an action slot is used twice")
        for s in slots:
            if not 0 <= s < UNIFIED_DIMENSION:
                raise ValueError(f"{self.name}: slot {s} is outside 0..{UNIFIED_DIMENSION - 1}")
            if s in END_EFFECTOR_QUATERNION:
                raise ValueError(f"{self.name}: slot {s} (end-effector quaternion) is state-only")

    @property
    def action_dim(self) -> int:
        return len(self.action_slots)

    @property
    def action_mask(self) -> np.ndarray:
        """[64] float32: 1 on the slots this embodiment uses."""
        mask = np.zeros(UNIFIED_DIMENSION, dtype=np.float32)
        mask[list(self.action_slots)] = 1
        return mask

    def unified_action(self, native: Sequence[float]) -> np.ndarray:
        """Scatters a native action `[action_dim]` into `[64]` float32 (0 elsewhere).

        The learner checks that unified[slot] equals native[i] bit for bit as float32, which
        holds because both are sent as the same float32 values."""
        native = np.asarray(native, dtype=np.float32).reshape(-1)
        if native.shape[0] != self.action_dim:
            raise ValueError(f"{self.name}: native action has {native.shape[0]} values, expected {self.action_dim}")
        unified = np.zeros(UNIFIED_DIMENSION, dtype=np.float32)
        unified[list(self.action_slots)] = native
        return unified

    def native_action(self, unified: Sequence[float]) -> np.ndarray:
        """Gathers the used slots of a `[64]` vector back into native order."""
        unified = np.asarray(unified, dtype=np.float32).reshape(-1)
        if unified.shape[0] != UNIFIED_DIMENSION:
            raise ValueError(f"unified action has {unified.shape[0]} values, expected {UNIFIED_DIMENSION}")
        return unified[list(self.action_slots)].copy()


#: The embodiments the SwiftVLA learner serves (RobotSim's bodies).
EMBODIMENTS: Dict[str, EmbodimentLayout] = {
    # 7-DoF arm + gripper, joint positions. State: 7 joints, gripper, ee xyz, ee quaternion.
    "arm7": EmbodimentLayout("arm7", state_dim=15, action_slots=arm_slots(7, LEFT_ARM) + (LEFT_GRIPPER,)),
    # 6-DoF arm, end-effector delta (xyz, rpy) + gripper. State adds ee rpy.
    "arm6": EmbodimentLayout(
        "arm6", state_dim=17,
        action_slots=tuple(END_EFFECTOR_POSITION) + tuple(END_EFFECTOR_RPY) + (LEFT_GRIPPER,)),
    # Torso yaw + two 7-DoF arms with grippers, joint positions; state has the same layout.
    "bimanual": EmbodimentLayout(
        "bimanual", state_dim=17,
        action_slots=(TORSO.start,) + arm_slots(7, LEFT_ARM) + (LEFT_GRIPPER,)
        + arm_slots(7, RIGHT_ARM) + (RIGHT_GRIPPER,)),
}


def layout_for(embodiment: str) -> EmbodimentLayout:
    try:
        return EMBODIMENTS[embodiment]
    except KeyError:
        raise ValueError(
            f"unknown embodiment {embodiment!r} (known: {', '.join(sorted(EMBODIMENTS))}); "
            "pass layout=EmbodimentLayout(...) for another one") from None
