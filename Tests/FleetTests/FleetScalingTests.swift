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
        scaling.curvePoints = 2
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
        // Learning curves: the snapshot half-way (saved by the learner at 1.5 s, evaluated on
        // the same seed) and the end, in time order, the snapshot's train step no later.
        for row in result.rows {
            #expect(row.curve.map(\.robotSeconds) == [1.5, 3])
            #expect(row.curve[0].trainStep <= row.curve[1].trainStep && row.curve[1].trainStep == row.trainSteps)
            #expect(row.curve.allSatisfy { $0.episodes == 1 } && row.curve[1].successes == row.successes)
            let snapshot = template.output.appendingPathComponent("actors-\(row.actors)/snapshots/2s/config.json")
            #expect(FileManager.default.fileExists(atPath: snapshot.path))
        }
        // The default target is the rule's for these rates (nil when a size gained nothing),
        // and each reached time is on the curve's time axis.
        let before = try #require(result.before).rate
        #expect(result.target == FleetScaling.defaultTarget(before: before, finals: result.rows.map(\.curve.last!.rate)))
        #expect(result.speedups.count == (result.target == nil ? 0 : 2))
        #expect(result.rows.allSatisfy { ($0.secondsToTarget ?? 0) <= 3 })
    }

    /// The default target: half of the smallest gain; none without a gain in every fleet size.
    @Test func defaultTargetIsHalfTheSmallestGain() {
        #expect(FleetScaling.defaultTarget(before: 0.3, finals: [0.5, 0.7, 0.6]) == 0.4)
        #expect(FleetScaling.defaultTarget(before: 0.3, finals: [0.5, 0.3]) == nil)
        #expect(FleetScaling.defaultTarget(before: 0.6, finals: [0.2, 0.8]) == nil)
    }

    /// Closed-form cases of the interpolated time to target.
    @Test func secondsToTargetInterpolatesTheCurve() {
        let curve: [(seconds: Double, rate: Double)] = [(0, 0.3), (100, 0.4), (200, 0.6), (300, 0.5)]
        // 0.5 lies half-way between 0.4 at 100 s and 0.6 at 200 s.
        #expect(FleetScaling.secondsToTarget(curve, target: 0.5) == 150)
        // 0.35 between 0.3 at 0 and 0.4 at 100: 50 s; the start already at 0.3.
        #expect(abs(FleetScaling.secondsToTarget(curve, target: 0.35)! - 50) < 1e-9)
        #expect(FleetScaling.secondsToTarget(curve, target: 0.3) == 0)
        // The first crossing counts, and a target never reached has no time.
        #expect(FleetScaling.secondsToTarget(curve, target: 0.6) == 200)
        #expect(FleetScaling.secondsToTarget(curve, target: 0.7) == nil)
    }
}
