import Foundation
import RobotSim

/// CALVIN's long-horizon figures over many chains of `length` instructions: the average chain
/// length (mean consecutive successes, 0 … length), the rate of completing 1, 2, …, length
/// instructions in a row (with 95% Wilson intervals) and the mean steps per completed goal.
public struct ChainStatistics: Sendable {
    public let length: Int
    /// Consecutive goals completed, one entry per chain.
    public let completed: [Int]
    public let meanStepsPerCompletedGoal: Double
    /// Chains ended by each task's goal running out of steps.
    public let failuresByTask: [TaskKind: Int]

    public init(length: Int, outcomes: [ChainOutcome]) {
        self.length = length
        completed = outcomes.map(\.completed)
        let steps = outcomes.flatMap(\.stepsPerCompletedGoal)
        meanStepsPerCompletedGoal = steps.isEmpty ? 0 : Double(steps.reduce(0, +)) / Double(steps.count)
        failuresByTask = outcomes.compactMap(\.failedTask).reduce(into: [:]) { $0[$1, default: 0] += 1 }
    }

    public var chains: Int { completed.count }
    public var averageLength: Double { completed.isEmpty ? 0 : Double(completed.reduce(0, +)) / Double(completed.count) }

    /// Entry k − 1: the chains that completed at least k instructions in a row.
    public var inARow: [SuccessRate] {
        (1...max(length, 1)).map { k in SuccessRate(successes: completed.filter { $0 >= k }.count, episodes: completed.count) }
    }

    /// One JSON object in the style of `vla eval --json` (`extra`: further fields, already JSON).
    public func json(extra: String = "") -> String {
        let rows = inARow.enumerated().map { k, r in
            let i = r.interval95
            return #"{"k": \#(k + 1), "successes": \#(r.successes), "rate": \#(r.rate), "ci95": [\#(i.low), \#(i.high)]}"#
        }
        let failures = TaskChain.supportedTasks.map { #""\#($0.rawValue)": \#(failuresByTask[$0] ?? 0)"# }.joined(separator: ", ")
        return #"{"chain_length": \#(length), "chains": \#(chains), "average_length": \#(averageLength), "in_a_row": [\#(rows.joined(separator: ", "))], "mean_steps_per_completed_goal": \#(meanStepsPerCompletedGoal), "failures_by_task": {\#(failures)}, "completed": \#(completed)\#(extra)}"#
    }

    /// A readable table: average length, then one line per k.
    public var report: String {
        var lines = [String(format: "average chain length %.2f of %d over %d chains, %.1f steps per completed instruction",
                            averageLength, length, chains, meanStepsPerCompletedGoal)]
        for (k, r) in inARow.enumerated() { lines.append("  \(k + 1) in a row: \(r)") }
        if !failuresByTask.isEmpty {
            lines.append("  chains ended by: " + TaskChain.supportedTasks.compactMap { t in failuresByTask[t].map { "\(t.rawValue) \($0)" } }.joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }
}
