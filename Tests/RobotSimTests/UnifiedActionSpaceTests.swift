import Testing
@testable import RobotData
@testable import RobotSim

@Suite struct UnifiedActionSpaceTests {
    @Test func roundTripIsExactOnValidSlotsForEveryEmbodiment() throws {
        var rng = SeededGenerator(seed: 7)
        for e in EmbodimentKind.allCases {
            let spec = e.spec
            for (map, n) in [(spec.actionMap, spec.actionDimension), (spec.stateMap, spec.stateDimension)] {
                let native = (0..<n).map { _ in Float(rng.uniform(-3, 3)) }
                let unified = try map.toUnified(native)
                #expect(unified.count == 64)
                #expect(try map.toNative(unified) == native)
                // Padding everywhere else, mask marks exactly the native slots.
                let mask = map.mask
                #expect(mask.reduce(0, +) == Float(n))
                for s in 0..<64 where mask[s] == 0 { #expect(unified[s] == 0) }
                // Changing padded slots never changes the native vector.
                var noisy = unified
                for s in 0..<64 where mask[s] == 0 { noisy[s] = 99 }
                #expect(try map.toNative(noisy) == native)
            }
        }
    }

    @Test func slotLayoutFollowsGreenVLA() throws {
        let a7 = EmbodimentKind.arm7.spec, a6 = EmbodimentKind.arm6.spec, bi = EmbodimentKind.bimanual.spec
        #expect(a7.actionMap.slots == [0, 1, 2, 3, 4, 5, 6, 13])
        // 6-DoF arm right-aligned into slots 1–6: joint k means the same part of the chain.
        #expect(Array(a6.stateMap.slots.prefix(6)) == [1, 2, 3, 4, 5, 6])
        #expect(a6.actionMap.slots == [35, 36, 37, 42, 43, 44, 13])
        #expect(Array(a6.stateMap.slots[10..<14]) == [38, 39, 40, 41])   // quaternion: state only
        #expect(bi.actionMap.slots == [28, 0, 1, 2, 3, 4, 5, 6, 13, 14, 15, 16, 17, 18, 19, 20, 27])
        #expect(UnifiedActionSpace.slotName(27) == "right_gripper")
        #expect(UnifiedActionSpace.slotName(40) == "ee_qy")
        #expect(a6.promptPrefix == "Num hands: 1. Control mode: cartesian.")
        #expect(bi.promptPrefix == "Num hands: 2. Control mode: joint.")
    }

    @Test func badMapsAndVectorsAreTypedErrors() {
        #expect(throws: UnifiedSpaceError.stateOnlySlotInAction(38)) { try UnifiedMap(slots: [0, 38], isAction: true) }
        #expect(throws: UnifiedSpaceError.duplicateSlot(3)) { try UnifiedMap(slots: [3, 3], isAction: false) }
        #expect(throws: UnifiedSpaceError.invalidSlot(64)) { try UnifiedMap(slots: [64], isAction: false) }
        #expect(throws: UnifiedSpaceError.wrongLength(expected: 8, got: 3, what: "native vector")) {
            try EmbodimentKind.arm7.spec.unifiedAction([1, 2, 3])
        }
    }
}
