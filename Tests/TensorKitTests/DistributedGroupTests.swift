import Foundation
import Testing
import TestSupport
@testable import TensorKit

/// MLX's ring backend from Swift: two `vla bench allreduce` processes on loopback (set up the
/// way `mlx.launch --backend ring` does, through MLX_RANK and MLX_HOSTFILE) sum their vectors;
/// each rank checks every element against size·(size + 1)/2 = 3.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DistributedGroupTests {
    @Test func aSingleProcessWithoutALauncherIsAGroupOfOne() throws {
        let group = try DistributedGroup.initialize(backend: "ring", strict: false)
        #expect(group.size == 1 && group.rank == 0)
        let x = try Tensor([1, 2, 3] as [Float])
        #expect(try group.allSum(x).toArray(Float.self) == [1, 2, 3])
    }

    @Test func twoRingRanksOnLoopbackSumTheirVectors() async throws {
        #expect(DistributedGroup.isAvailable(backend: "ring"))
        let vla = try #require(ChildProcess.vlaBinary(), "no vla binary beside the tests: build it (swift build) first")
        let results = try await RingLauncher.run(vla, ranks: 2, timeout: 90) { _ in
            ["bench", "allreduce", "--sizes", "1000,300000", "--repeats", "2"]
        }
        for rank in 0..<2 {
            let r = results[rank]
            #expect(r.status == 0, "rank \(rank): \(r.stderr.suffix(1000))")
            let lines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("rank \(rank)/2:") }
            #expect(lines.count == 2 && lines.allSatisfy { $0.hasSuffix("correct") }, "rank \(rank): \(r.stdout)")
        }
    }
}

@Suite struct CollectiveHelpersTests {
    @Test func packedAllSumKeepsNamesAndShapes() throws {
        // A group of one: the packed sum must hand every tensor back unchanged, whatever its shape.
        let group = try DistributedGroup.initialize(backend: "ring", strict: false)
        let a = try Tensor([1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3]), b = try Tensor([7] as [Float], shape: [1])
        let out = try group.allSum(["w": a, "b": b])
        #expect(out["w"]!.shape == [2, 3] && out["b"]!.shape == [1])
        #expect(try out["w"]!.toArray(Float.self) == [1, 2, 3, 4, 5, 6] && out["b"]!.toArray(Float.self) == [7])
    }

    @Test func watchdogFiresOnlyForAStepThatOverrunsItsDeadline() throws {
        let fired = Locked<[Int]>([])
        let watchdog = CollectiveWatchdog(timeout: 0.2) { step in fired.withLock { $0.append(step) } }
        watchdog.guarding(step: 1) { Thread.sleep(forTimeInterval: 0.01) }
        watchdog.guarding(step: 2) { Thread.sleep(forTimeInterval: 0.5) }
        Thread.sleep(forTimeInterval: 0.3)
        #expect(fired.withLock { $0 } == [2])
    }
}

/// A value shared with a callback thread.
final class Locked<Value>: @unchecked Sendable {
    private var value: Value
    private let lock = NSLock()
    init(_ value: Value) { self.value = value }
    func withLock<R>(_ body: (inout Value) -> R) -> R { lock.lock(); defer { lock.unlock() }; return body(&value) }
}
