/// How an embodiment is commanded.
public enum ControlMode: String, Sendable, Codable, Hashable {
    case jointPosition = "joint"
    case endEffectorDelta = "cartesian"
}

/// An embodiment's native action and state layout and its unified-space maps.
public struct EmbodimentSpec: Sendable, Hashable, Codable {
    public let name: String
    public let controlMode: ControlMode
    public let numArms: Int
    /// Native action entry names, in order.
    public let actionNames: [String]
    /// Native proprio-state entry names, in order.
    public let stateNames: [String]
    public let actionMap: UnifiedMap
    public let stateMap: UnifiedMap

    public init(name: String, controlMode: ControlMode, numArms: Int,
                actionNames: [String], actionSlots: [Int],
                stateNames: [String], stateSlots: [Int]) throws {
        guard actionNames.count == actionSlots.count else {
            throw UnifiedSpaceError.wrongLength(expected: actionNames.count, got: actionSlots.count, what: "\(name) action slots")
        }
        guard stateNames.count == stateSlots.count else {
            throw UnifiedSpaceError.wrongLength(expected: stateNames.count, got: stateSlots.count, what: "\(name) state slots")
        }
        self.name = name
        self.controlMode = controlMode
        self.numArms = numArms
        self.actionNames = actionNames
        self.stateNames = stateNames
        actionMap = try UnifiedMap(slots: actionSlots, isAction: true)
        stateMap = try UnifiedMap(slots: stateSlots, isAction: false)
    }

    public var actionDimension: Int { actionNames.count }
    public var stateDimension: Int { stateNames.count }
    public var actionMask: [Float] { actionMap.mask }
    public var stateMask: [Float] { stateMap.mask }

    public func unifiedAction(_ native: [Float]) throws -> [Float] { try actionMap.toUnified(native) }
    public func nativeAction(_ unified: [Float]) throws -> [Float] { try actionMap.toNative(unified) }
    public func unifiedState(_ native: [Float]) throws -> [Float] { try stateMap.toUnified(native) }
    public func nativeState(_ unified: [Float]) throws -> [Float] { try stateMap.toNative(unified) }

    /// Action slots that command a joint position the state also reports (arm joints, torso):
    /// the slots a relative action frame expresses as offsets from the current joint state.
    /// Grippers (an opening command, not the measured width) and end-effector deltas stay as they are.
    public var jointPositionSlots: [Int] {
        guard controlMode == .jointPosition else { return [] }
        let joints = Array(UnifiedActionSpace.leftArm) + Array(UnifiedActionSpace.rightArm) + Array(UnifiedActionSpace.torso)
        return joints.filter { actionMask[$0] > 0 && stateMask[$0] > 0 }
    }

    /// The embodiment prompt prefix, e.g. "Num hands: 1. Control mode: joint."
    public var promptPrefix: String { "Num hands: \(numArms). Control mode: \(controlMode.rawValue)." }
}
