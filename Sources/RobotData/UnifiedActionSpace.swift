/// Green-VLA's 64-slot unified action/state space.
///
/// Every embodiment's native action (and state) vector is scattered into fixed semantic slots
/// so one policy can drive many robot bodies; a mask marks which slots an embodiment uses.
///
/// | slots | meaning |
/// |---|---|
/// | 0–6 | left (or only) arm joints; a 6-DoF arm fills 1–6 (right-aligned) |
/// | 7–12 | left hand |
/// | 13 | left or only gripper |
/// | 14–20 | right arm joints (6-DoF: 15–20) |
/// | 21–26 | right hand |
/// | 27 | right gripper |
/// | 28–31 | torso |
/// | 32–34 | head |
/// | 35–37 | end-effector xyz |
/// | 38–41 | end-effector quaternion (state only) |
/// | 42–44 | end-effector roll, pitch, yaw |
/// | 45–47 | mobile base |
/// | 48–63 | reserved |
public enum UnifiedActionSpace {
    public static let dimension = 64

    public static let leftArm = 0..<7
    public static let leftHand = 7..<13
    public static let leftGripper = 13
    public static let rightArm = 14..<21
    public static let rightHand = 21..<27
    public static let rightGripper = 27
    public static let torso = 28..<32
    public static let head = 32..<35
    public static let endEffectorPosition = 35..<38
    public static let endEffectorQuaternion = 38..<42
    public static let endEffectorRPY = 42..<45
    public static let base = 45..<48
    public static let reserved = 48..<64

    /// Slots of an arm with `dof` joints (≤ 7) in the given 7-slot block, right-aligned:
    /// joint k of a 6-DoF and a 7-DoF arm then mean the same part of the chain.
    public static func armSlots(dof: Int, block: Range<Int>) -> [Int] {
        precondition(dof >= 1 && dof <= block.count, "an arm block holds at most \(block.count) joints")
        return Array(block.upperBound - dof..<block.upperBound)
    }

    /// Human-readable name of a slot.
    public static func slotName(_ slot: Int) -> String {
        switch slot {
        case leftArm: "left_arm_\(slot - leftArm.lowerBound)"
        case leftHand: "left_hand_\(slot - leftHand.lowerBound)"
        case leftGripper: "left_gripper"
        case rightArm: "right_arm_\(slot - rightArm.lowerBound)"
        case rightHand: "right_hand_\(slot - rightHand.lowerBound)"
        case rightGripper: "right_gripper"
        case torso: "torso_\(slot - torso.lowerBound)"
        case head: "head_\(slot - head.lowerBound)"
        case endEffectorPosition: ["ee_x", "ee_y", "ee_z"][slot - endEffectorPosition.lowerBound]
        case endEffectorQuaternion: ["ee_qw", "ee_qx", "ee_qy", "ee_qz"][slot - endEffectorQuaternion.lowerBound]
        case endEffectorRPY: ["ee_roll", "ee_pitch", "ee_yaw"][slot - endEffectorRPY.lowerBound]
        case base: "base_\(slot - base.lowerBound)"
        default: "reserved_\(slot - reserved.lowerBound)"
        }
    }
}

/// Errors from mapping between native and unified vectors.
public enum UnifiedSpaceError: Error, Equatable, CustomStringConvertible {
    case wrongLength(expected: Int, got: Int, what: String)
    case invalidSlot(Int)
    case duplicateSlot(Int)
    case stateOnlySlotInAction(Int)
    case nonFinite(index: Int)
    case unknownEmbodiment(String)

    public var description: String {
        switch self {
        case let .wrongLength(e, g, what): "\(what): expected \(e) values, got \(g)"
        case .unknownEmbodiment(let name): "no statistics or spec for embodiment \(name)"
        case .invalidSlot(let s): "slot \(s) is outside 0..<\(UnifiedActionSpace.dimension)"
        case .duplicateSlot(let s): "slot \(s) is used twice"
        case .stateOnlySlotInAction(let s): "slot \(s) (end-effector quaternion) is state-only"
        case .nonFinite(let i): "value \(i) is NaN or infinite"
        }
    }
}

/// One embodiment's map Φ_e: native index i ↦ unified slot `slots[i]`, with mask m_e.
public struct UnifiedMap: Sendable, Hashable, Codable {
    /// `slots[i]` is the unified slot of native entry i.
    public let slots: [Int]
    /// Fill value for slots the embodiment does not use.
    public let padding: Float

    public init(slots: [Int], padding: Float = 0, isAction: Bool) throws {
        var seen = Set<Int>()
        for s in slots {
            guard (0..<UnifiedActionSpace.dimension).contains(s) else { throw UnifiedSpaceError.invalidSlot(s) }
            guard seen.insert(s).inserted else { throw UnifiedSpaceError.duplicateSlot(s) }
            if isAction, UnifiedActionSpace.endEffectorQuaternion.contains(s) { throw UnifiedSpaceError.stateOnlySlotInAction(s) }
        }
        self.slots = slots
        self.padding = padding
    }

    public var nativeDimension: Int { slots.count }

    /// m_e: 1 on valid slots, 0 elsewhere (length 64).
    public var mask: [Float] {
        var m = [Float](repeating: 0, count: UnifiedActionSpace.dimension)
        for s in slots { m[s] = 1 }
        return m
    }

    /// Φ_e: scatter a native vector into 64 slots (padding elsewhere).
    public func toUnified(_ native: [Float]) throws -> [Float] {
        guard native.count == slots.count else {
            throw UnifiedSpaceError.wrongLength(expected: slots.count, got: native.count, what: "native vector")
        }
        var u = [Float](repeating: padding, count: UnifiedActionSpace.dimension)
        for (i, s) in slots.enumerated() { u[s] = native[i] }
        return u
    }

    /// Φ_e⁻¹: gather the valid slots back into the native order (exact on valid slots).
    public func toNative(_ unified: [Float]) throws -> [Float] {
        guard unified.count == UnifiedActionSpace.dimension else {
            throw UnifiedSpaceError.wrongLength(expected: UnifiedActionSpace.dimension, got: unified.count, what: "unified vector")
        }
        return slots.map { unified[$0] }
    }
}
