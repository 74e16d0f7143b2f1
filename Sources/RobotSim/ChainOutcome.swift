/// How far one chain got: the goals completed in a row (from the first) and the control steps
/// each of them took.
public struct ChainOutcome: Sendable, Equatable {
    public var stepsPerCompletedGoal: [Int]
    /// The task of the goal that ended the chain by running out of steps (nil: all completed).
    public var failedTask: TaskKind?
    /// Consecutive goals completed (0 … chain length).
    public var completed: Int { stepsPerCompletedGoal.count }
    public init(stepsPerCompletedGoal: [Int] = [], failedTask: TaskKind? = nil) {
        self.stepsPerCompletedGoal = stepsPerCompletedGoal
        self.failedTask = failedTask
    }
}

extension RobotEnvironment {
    /// Runs the chain from a reset with the scripted operator as the policy: each goal until it
    /// succeeds or hits its step limit; the next instruction follows a success, the first
    /// failure ends the chain. A single-task environment is a chain of one.
    public func runChainWithOperator(_ expert: ScriptedExpert? = nil) throws -> ChainOutcome {
        reset()
        expert?.reset()
        var outcome = ChainOutcome()
        while true {
            var result: StepResult
            repeat {
                result = try step(nativeAction: expert?.action(for: self) ?? expertAction())
            } while !result.done
            guard result.success else { outcome.failedTask = task; return outcome }
            outcome.stepsPerCompletedGoal.append(stepCount - goalStartStep)
            guard beginNextGoal() != nil else { return outcome }
            expert?.reset()
        }
    }
}
