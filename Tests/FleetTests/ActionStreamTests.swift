import Foundation
import Testing
import TensorKit
@testable import Fleet
@testable import RobotSim

/// Chunks that say which control step each action is meant for: from the observation at
/// step s, action i is [s + i]. Slow, so asynchronous requests really overlap execution.
final class ClockPolicy: ActorPolicy {
    let horizon: Int
    let delay: Double
    private(set) var calls = 0
    init(horizon: Int, delay: Double) { self.horizon = horizon; self.delay = delay }
    func load(weights: [String: Tensor], version: Int) throws {}
    func actionChunk(observation: Observation, instruction: String) throws -> [[Float]] {
        calls += 1
        Thread.sleep(forTimeInterval: delay)
        return (0..<horizon).map { [Float(observation.step + $0)] }
    }
}

func observation(step: Int) -> Observation {
    Observation(cameraNames: [], images: [], imageWidth: 0, imageHeight: 0, state: [0], instruction: "", step: step)
}

extension FleetTests {
    @Suite struct Inference {
        @Test func mergeDropsElapsedActionsAndCrossfadesTheOverlap() {
            let merged = ActionStream.merge(queued: [[10], [20], [30]], fresh: [[0], [1], [2], [3], [4]], elapsed: 1)
            // Fresh actions for steps 1…4; overlap 3 with weights 1/4, 2/4, 3/4 on the fresh one:
            // 0.75·10 + 0.25·1, 0.5·20 + 0.5·2, 0.25·30 + 0.75·3, then 4 alone.
            #expect(merged == [[7.75], [11], [9.75], [4]])
            #expect(ActionStream.merge(queued: [[1]], fresh: [[5], [6]], elapsed: 2) == [[1]])   // all stale
            #expect(ActionStream.merge(queued: [], fresh: [[5], [6]], elapsed: 0) == [[5], [6]])
        }

        /// Whatever the timing, every executed action is the one meant for its step: old and
        /// fresh chunks agree on it, so the crossfade keeps it exact.
        @Test(arguments: [InferenceMode.synchronous, .asynchronous(prefetchFraction: 0.5)])
        func everyStepGetsTheActionMeantForIt(mode: InferenceMode) {
            let policy = ClockPolicy(horizon: 8, delay: 0.002)
            let thread = mode == .synchronous ? nil : WorkerThread(name: "test-inference")
            defer { thread?.stop() }
            let stream = ActionStream(policy: policy, mode: mode, inferenceThread: thread)
            var executed: [Float] = []
            for step in 0..<60 {
                if step % 3 == 0 { Thread.sleep(forTimeInterval: 0.001) }   // uneven control loop
                executed.append(stream.next(observation: observation(step: step), instruction: "", step: step)![0])
            }
            stream.reset()
            // (Crossfading equal values may round by an ulp.)
            #expect(zip(executed, (0..<60).map(Float.init)).allSatisfy { Swift.abs($0 - $1) < 1e-4 }, "\(executed)")
            #expect(executed.count == 60)
            if mode == .synchronous {
                #expect(policy.calls == 60 / 8 + 1 && stream.waits == policy.calls)
            } else {
                // Timing decides how many requests overlap execution. Deterministic: the first
                // request (sent at step 4) is merged by step 8 at the latest, and the robot
                // waits at most once per call.
                #expect(stream.merges >= 1 && stream.waits <= policy.calls,
                        "merges \(stream.merges), waits \(stream.waits), calls \(policy.calls)")
            }
        }
    }
}
