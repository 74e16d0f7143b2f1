import Foundation
import Testing
import RobotData
import RobotSim

/// Embodiment files: the shipped `embodiments/*.yaml` declare exactly the built-in bodies, and
/// a damaged file is refused with the reason.
struct EmbodimentFileTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .deletingLastPathComponent().appendingPathComponent("embodiments")

    @Test func shippedFilesDeclareTheBuiltInBodies() throws {
        let files = try EmbodimentSpec.loadAll(Self.directory)
        #expect(Set(files.keys) == Set(EmbodimentKind.allCases.map(\.rawValue)))
        for kind in EmbodimentKind.allCases {
            let spec = try #require(files[kind.rawValue])
            #expect(spec == kind.spec, "\(kind.rawValue).yaml differs from RobotSim's \(kind.rawValue)")
            // Φ_e⁻¹ ∘ Φ_e restores a native action exactly.
            let native = (0..<spec.actionDimension).map { Float($0) * 0.25 - 1 }
            #expect(try spec.nativeAction(spec.unifiedAction(native)) == native)
        }
        // arm6's 6 joints sit right-aligned in the 7-slot arm block (Green-VLA's rule).
        #expect(files["arm6"]!.stateMap.slots.prefix(6) == [1, 2, 3, 4, 5, 6])
        #expect(files["arm6"]!.promptPrefix == "Num hands: 1. Control mode: cartesian.")
    }

    @Test func slotsMayBeNamesOrIndices() throws {
        let spec = try EmbodimentSpec(yaml: """
            name: pan_tilt
            control_mode: joint
            num_arms: 0
            actions:
              - [pan, head_0]
              - [tilt, 33]
            states:
              - [pan, head_0]
              - [tilt, head_1]
            """)
        #expect(spec.actionMap.slots == [32, 33] && spec.stateMap.slots == [32, 33])
        #expect(try EmbodimentSpec(yaml: spec.yaml) == spec)
    }

    @Test func damagedFilesAreRefusedWithTheReason() {
        let good = "name: b\ncontrol_mode: joint\nnum_arms: 1\nactions:\n  - [a, left_arm_0]\nstates:\n  - [a, left_arm_0]\n"
        typealias E = EmbodimentSpec.FileError
        #expect(throws: E.unknownSlot("left_arm_9")) { try EmbodimentSpec(yaml: good.replacingOccurrences(of: "- [a, left_arm_0]\nstates", with: "- [a, left_arm_9]\nstates")) }
        #expect(throws: E.unknownSlot("64")) { try EmbodimentSpec(yaml: good.replacingOccurrences(of: "actions:\n  - [a, left_arm_0]", with: "actions:\n  - [a, 64]")) }
        #expect(throws: E.badControlMode("torque")) { try EmbodimentSpec(yaml: good.replacingOccurrences(of: "joint", with: "torque")) }
        #expect(throws: E.missingField("num_arms")) { try EmbodimentSpec(yaml: good.replacingOccurrences(of: "num_arms: 1\n", with: "")) }
        #expect(throws: E.badEntry(section: "actions", index: 0)) { try EmbodimentSpec(yaml: good.replacingOccurrences(of: "- [a, left_arm_0]\nstates", with: "- a\nstates")) }
        // Two native entries on one slot: refused by the unified map itself.
        #expect(throws: (any Error).self) {
            try EmbodimentSpec(yaml: good.replacingOccurrences(of: "actions:\n  - [a, left_arm_0]", with: "actions:\n  - [a, left_arm_0]\n  - [b, left_arm_0]"))
        }
    }
}
