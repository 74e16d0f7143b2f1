import Foundation

/// One OS thread that runs an actor's simulation jobs one at a time.
///
/// RobotSim's renderer keeps its OSMesa context current on the thread that last rendered, so
/// an environment must be created, rendered and destroyed on one thread; Swift tasks hop
/// between threads at every `await`. Running each actor's episodes here also keeps the
/// CPU-bound physics off the cooperative pool that serves gRPC and the learner.
final class SimulationThread: @unchecked Sendable {
    private let condition = NSCondition()
    private var jobs: [() -> Void] = []
    private var stopped = false

    init(name: String) {
        let thread = Thread { [self] in loop() }
        thread.name = name
        thread.stackSize = 8 << 20
        thread.start()
    }

    private func loop() {
        while true {
            condition.lock()
            while jobs.isEmpty && !stopped { condition.wait() }
            if jobs.isEmpty {
                condition.unlock()
                return
            }
            let job = jobs.removeFirst()
            condition.unlock()
            job()
        }
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping () throws -> T) async throws -> T {
        let job = UncheckedBox(body)
        return try await withCheckedThrowingContinuation { continuation in
            condition.lock()
            jobs.append {
                do { continuation.resume(returning: try job.value()) } catch { continuation.resume(throwing: error) }
            }
            condition.signal()
            condition.unlock()
        }
    }

    /// Lets the thread exit after its queued jobs.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }
}

/// Carries a non-Sendable value to the simulation thread; the caller awaits the job, so the
/// value is never used from two threads at once.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
