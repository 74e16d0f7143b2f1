import Foundation

/// One OS thread that runs jobs one at a time, usable as a `TaskExecutor`.
///
/// Long blocking work must stay off Swift's cooperative pool, which has one thread per core
/// (two here) and also serves gRPC: a learner's training step (seconds of MLX work under
/// `TensorLock`) on that pool starves every other task. So each actor's simulation runs on
/// its own `WorkerThread` (RobotSim's OSMesa context also wants one thread per environment),
/// and the learner's training loop runs on one as its task executor.
final class WorkerThread: TaskExecutor, @unchecked Sendable {
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

    func submit(_ job: @escaping () -> Void) {
        condition.lock()
        jobs.append(job)
        condition.signal()
        condition.unlock()
    }

    /// Runs `body` on the thread and returns its result to the awaiting task.
    func run<T: Sendable>(_ body: @escaping () throws -> T) async throws -> T {
        let job = UncheckedBox(body)
        return try await withCheckedThrowingContinuation { continuation in
            submit { do { continuation.resume(returning: try job.value()) } catch { continuation.resume(throwing: error) } }
        }
    }

    func enqueue(_ job: consuming ExecutorJob) {
        let job = UnownedJob(job)
        submit { job.runSynchronously(on: self.asUnownedTaskExecutor()) }
    }

    /// Lets the thread exit after its queued jobs.
    func stop() {
        condition.lock()
        stopped = true
        condition.signal()
        condition.unlock()
    }
}

/// Carries a non-Sendable value to a worker thread; the caller awaits the job, so the
/// value is never used from two threads at once.
struct UncheckedBox<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
