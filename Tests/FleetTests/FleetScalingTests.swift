import Foundation
import Testing
import TestSupport
import RobotSim
@testable import Fleet

@Suite("Fleet scaling (vla bench fleet-scaling)", .stopsLearners, .timeLimit(.minutes(10)))
struct FleetScalingTests {
    @Test func equalRobotTimeAndLearnerPaceAcrossFleetSizes() async throws {
        var template = tinyFleetDemo("scaling")
        template.publishEveryTrainSteps = 2
        var scaling = FleetScaling(template: template)
        scaling.actorCounts = [1, 2]
        scaling.robotSeconds = 3
        scaling.controlRate = 20
        scaling.learnerStepInterval = 0.25
        let result = try await scaling.run { _ in }
        #expect(result.before != nil && result.rows.map(\.actors) == [1, 2])
        let (one, two) = (result.rows[0], result.rows[1])
        // Both fleet sizes ran (how many steps each got depends on the machine's load: the
        // pace is an upper bound, checked below; the ratio itself is the benchmark's to report).
        #expect(one.robotSteps > 0 && two.robotSteps > 0 && two.episodes >= 2)
        for row in result.rows {
            // Paced actors never run faster than robot time.
            #expect(row.achievedControlRate < 20 * 1.3, "\(row.achievedControlRate) steps/s")
            // One step per 0.25 s at most over the run (plus the steps while it winds down).
            #expect(row.trainSteps <= Int(row.fleetSeconds / 0.25) + 3, "\(row.trainSteps) steps in \(row.fleetSeconds) s")
        }
        #expect(FileManager.default.fileExists(atPath: template.output.appendingPathComponent("scaling.json").path))
    }
}
