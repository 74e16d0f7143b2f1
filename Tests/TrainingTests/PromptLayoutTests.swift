import Foundation
import Testing
import RobotData
import RobotSim
import TensorKit
import VLAModel

/// `VLAConfig.promptLayout`: where the instruction sits in the byte prompt.
@Suite("Prompt layout")
struct PromptLayoutTests {
    static let instruction = "reach the red block"

    /// The prompt's byte tokens for one observation of `spec` (no cameras, no state).
    func tokens(_ layout: PromptLayout, _ spec: EmbodimentSpec) throws -> [Int32] {
        var c = VLAConfig()
        c.promptLayout = layout
        let o = PolicyObservation(embodiment: spec, instruction: Self.instruction, cameras: [:], nativeState: [])
        return try ObservationEncoder(config: c, stats: NormalizationStats(episodes: [])).hostInputs([o]).tokens
    }

    @Test func theInstructionStartsAtOneTokenForEveryBodyOnlyWhenItComesFirst() throws {
        let (arm7, arm6) = (EmbodimentKind.arm7.spec, EmbodimentKind.arm6.spec)
        #expect(ObservationEncoder.prompt(arm6, Self.instruction) == "Num hands: 1. Control mode: cartesian. reach the red block")
        #expect(ObservationEncoder.prompt(arm6, Self.instruction, layout: .instructionFirst) == "reach the red block. Num hands: 1. Control mode: cartesian.")
        // Instruction first: BOS, then the instruction's bytes at tokens 1…19 for both bodies.
        let bytes = Self.instruction.utf8.map { Int32($0) }
        let first7 = try tokens(.instructionFirst, arm7), first6 = try tokens(.instructionFirst, arm6)
        #expect(Array(first7[1...bytes.count]) == bytes && Array(first6[1...bytes.count]) == bytes)
        // Body first: arm6's line is 4 bytes longer ("cartesian" for "joint"), so its instruction
        // starts at token 40 where arm7's starts at token 36.
        let body7 = try tokens(.bodyFirst, arm7), body6 = try tokens(.bodyFirst, arm6)
        #expect(Array(body7[36..<(36 + bytes.count)]) == bytes)
        #expect(Array(body6[40..<(40 + bytes.count)]) == bytes)
        #expect(Array(body6[36..<(36 + bytes.count)]) != bytes)
    }

    @Test func aConfigWrittenBeforeTheLayoutReadsBodyFirst() throws {
        var c = VLAConfig()
        c.promptLayout = .instructionFirst
        let json = try JSONEncoder().encode(c)
        #expect(try JSONDecoder().decode(VLAConfig.self, from: json).promptLayout == .instructionFirst)
        var object = try #require(try JSONSerialization.jsonObject(with: json) as? [String: Any])
        object["promptLayout"] = nil
        let old = try JSONSerialization.data(withJSONObject: object)
        #expect(try JSONDecoder().decode(VLAConfig.self, from: old).promptLayout == .bodyFirst)
    }
}
