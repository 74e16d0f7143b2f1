import Foundation
import Testing
import TestSupport
@testable import TensorKit

/// MLX's ring backend from Swift: two `vla bench allreduce` processes on loopback (set up the
/// way `mlx.launch --backend ring` does, through MLX_RANK and MLX_HOSTFILE) sum their vectors;
/// each rank checks every element against size·(size + 1)/2 = 3.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct DistributedGroupTests {
    /// A free TCP port on loopback (bound once, then released).
    static func freePort() throws -> Int {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = 0
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
        }
        guard bound else { throw CancellationError() }
        return Int(UInt16(bigEndian: address.sin_port))
    }

    @Test func aSingleProcessWithoutALauncherIsAGroupOfOne() throws {
        let group = try DistributedGroup.initialize(backend: "any", strict: false)
        #expect(group.size == 1 && group.rank == 0)
        let x = try Tensor([1, 2, 3] as [Float])
        #expect(try group.allSum(x).toArray(Float.self) == [1, 2, 3])
    }

    @Test func twoRingRanksOnLoopbackSumTheirVectors() async throws {
        #expect(DistributedGroup.isAvailable(backend: "ring"))
        let vla = try #require(ChildProcess.vlaBinary(), "no vla binary beside the tests: build it (swift build) first")
        let hosts = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: hosts) }
        try "[[\"127.0.0.1:\(try Self.freePort())\"], [\"127.0.0.1:\(try Self.freePort())\"]]".write(to: hosts, atomically: true, encoding: .utf8)
        let results = try await withThrowingTaskGroup(of: (Int, ChildProcess.Result).self) { group in
            for rank in 0..<2 {
                group.addTask {
                    (rank, try await ChildProcess.run(vla, ["bench", "allreduce", "--sizes", "1000,300000", "--repeats", "2"], timeout: 90,
                                                      environment: ["MLX_RANK": "\(rank)", "MLX_HOSTFILE": hosts.path]))
                }
            }
            var all: [Int: ChildProcess.Result] = [:]
            for try await (rank, result) in group { all[rank] = result }
            return all
        }
        for rank in 0..<2 {
            let r = try #require(results[rank])
            #expect(r.status == 0, "rank \(rank): \(r.stderr.suffix(1000))")
            let lines = r.stdout.split(separator: "\n").filter { $0.hasPrefix("rank \(rank)/2:") }
            #expect(lines.count == 2 && lines.allSatisfy { $0.hasSuffix("correct") }, "rank \(rank): \(r.stdout)")
        }
    }
}
