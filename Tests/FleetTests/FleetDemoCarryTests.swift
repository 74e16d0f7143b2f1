import Foundation
import Testing
import TestSupport
@testable import Fleet
import RobotSim
import Training
import VLAModel

/// `vla demo --jpm-carry`: JPM's carry on pick/place for the actors and the evaluations.
@Suite("JPM carry in vla demo", .timeLimit(.minutes(10)))
struct FleetDemoCarryTests {
    /// The predicted carry needs the place head, which no pretraining fits: the demo stops
    /// with a typed error after pretraining, before any evaluation or fleet work; the modules
    /// handed to actors and evaluations carry the configured guidance.
    @Test func predictedCarryWithoutAPlaceHeadStopsBeforeTheFleet() async throws {
        var demo = tinyFleetDemo("carry-no-place-head")
        demo.tasks = [.pickPlace]
        demo.model.pointingWeight = 1
        demo.jpmStrength = 1
        demo.jpmPoint = .predicted
        demo.jpmCarry = CarryGuidance()
        let lines = Locked([String]())
        await #expect(throws: FleetDemoError.self) { _ = try await demo.run { line in lines.withLock { $0.append(line) } } }
        #expect(FileManager.default.fileExists(atPath: demo.output.appendingPathComponent("pretrain/checkpoint/manifest.json").path))
        #expect(!lines.current.contains { $0.contains("evaluating the pretrained policy") }, "\(lines.current)")

        var carry = CarryGuidance()
        carry.height = 0.1
        let module = try #require(FleetDemo.jointPredictionModule(strength: 0.5, point: .oracle, carry: carry))
        #expect(module.carry == carry && module.strength == 0.5 && module.pointSource == .oracle)
        #expect(FleetDemo.jointPredictionModule(strength: 1, point: .oracle, carry: nil)?.carry == nil)
        #expect(FleetDemo.jointPredictionModule(strength: 0, point: .oracle, carry: carry) == nil)
    }
}
