import RobotData

/// The simulated robot bodies.
public enum EmbodimentKind: String, CaseIterable, Sendable, Codable {
    /// (a) 7-DoF arm + parallel gripper, joint-position control.
    case arm7 = "arm7"
    /// (b) 6-DoF arm, end-effector delta pose (xyz + rpy, world frame) + gripper.
    case arm6 = "arm6"
    /// (c) bimanual torso: torso yaw + two 7-DoF arms with grippers, joint-position control.
    case bimanual = "bimanual"

    public var summary: String {
        switch self {
        case .arm7: "7-DoF arm + parallel gripper, joint-position control"
        case .arm6: "6-DoF arm, end-effector delta pose (xyz, rpy) + gripper"
        case .bimanual: "bimanual torso (yaw) + two 7-DoF arms + grippers, joint-position control"
        }
    }

    /// Arm layouts (prefix, DoF, mounting) of this body.
    var arms: [ArmLayout] {
        switch self {
        case .arm7: [ArmLayout(prefix: "a_", dof: 7, base: SIMD3(0, 0, 0), side: .left)]
        case .arm6: [ArmLayout(prefix: "a_", dof: 6, base: SIMD3(0, 0, 0), side: .left)]
        case .bimanual: [ArmLayout(prefix: "l_", dof: 7, base: SIMD3(0, 0.24, 0), side: .left),
                         ArmLayout(prefix: "r_", dof: 7, base: SIMD3(0, -0.24, 0), side: .right)]
        }
    }

    /// Max end-effector step per control step for `.arm6` deltas (metres, radians).
    public static let maxDeltaPosition = 0.04
    public static let maxDeltaRotation = 0.25

    /// Native layout and unified maps (Green-VLA slots, see `UnifiedActionSpace`).
    public var spec: EmbodimentSpec {
        let U = UnifiedActionSpace.self
        // The force-unwraps below are on constant, valid layouts.
        switch self {
        case .arm7:
            let joints = (1...7).map { "joint\($0)" }
            return try! EmbodimentSpec(
                name: rawValue, controlMode: .jointPosition, numArms: 1,
                actionNames: joints + ["gripper"],
                actionSlots: U.armSlots(dof: 7, block: U.leftArm) + [U.leftGripper],
                stateNames: joints + ["gripper", "ee_x", "ee_y", "ee_z", "ee_qw", "ee_qx", "ee_qy", "ee_qz"],
                stateSlots: U.armSlots(dof: 7, block: U.leftArm) + [U.leftGripper] + Array(U.endEffectorPosition) + Array(U.endEffectorQuaternion))
        case .arm6:
            let joints = (1...6).map { "joint\($0)" }
            return try! EmbodimentSpec(
                name: rawValue, controlMode: .endEffectorDelta, numArms: 1,
                actionNames: ["d_x", "d_y", "d_z", "d_roll", "d_pitch", "d_yaw", "gripper"],
                actionSlots: Array(U.endEffectorPosition) + Array(U.endEffectorRPY) + [U.leftGripper],
                stateNames: joints + ["gripper", "ee_x", "ee_y", "ee_z", "ee_qw", "ee_qx", "ee_qy", "ee_qz", "ee_roll", "ee_pitch", "ee_yaw"],
                stateSlots: U.armSlots(dof: 6, block: U.leftArm) + [U.leftGripper] + Array(U.endEffectorPosition) + Array(U.endEffectorQuaternion) + Array(U.endEffectorRPY))
        case .bimanual:
            let l = (1...7).map { "left_joint\($0)" }, r = (1...7).map { "right_joint\($0)" }
            let names = ["torso_yaw"] + l + ["left_gripper"] + r + ["right_gripper"]
            let slots = [U.torso.lowerBound] + U.armSlots(dof: 7, block: U.leftArm) + [U.leftGripper]
                + U.armSlots(dof: 7, block: U.rightArm) + [U.rightGripper]
            return try! EmbodimentSpec(name: rawValue, controlMode: .jointPosition, numArms: 2,
                                       actionNames: names, actionSlots: slots, stateNames: names, stateSlots: slots)
        }
    }
}

enum ArmSide: Sendable { case left, right }

/// One arm's kinematic layout in the generated MJCF.
struct ArmLayout: Sendable {
    let prefix: String
    let dof: Int
    let base: SIMD3<Double>
    let side: ArmSide

    /// Joint suffixes; a 6-DoF arm drops the upper-arm roll (j3).
    var jointNames: [String] { (dof == 7 ? [1, 2, 3, 4, 5, 6, 7] : [1, 2, 4, 5, 6, 7]).map { "\(prefix)j\($0)" } }
    var fingerJoints: [String] { ["\(prefix)finger_l", "\(prefix)finger_r"] }
    var tcpSite: String { "\(prefix)tcp" }
    var wristCamera: String { "\(prefix)wrist" }
    /// Posture with the gripper pointing down ~0.25 m above the table, 0.5 m in front.
    var home: [Double] { dof == 7 ? [0, 0.63, 0, 1.83, 0, 0.69, 0] : [0, 0.63, 1.83, 0, 0.69, 0] }
    static let fingerTravel = 0.04
}
