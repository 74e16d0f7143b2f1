import Foundation

/// Starts processes as ranks of one MLX ring job on loopback, the way `mlx.launch --backend
/// ring` does: a host file with one free port per rank, and MLX_RANK / MLX_HOSTFILE per process.
public enum RingLauncher {
    /// A free TCP port on loopback (bound once, then released).
    public static func freePort() throws -> Int {
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

    /// Runs `arguments(rank)` on `ranks` processes of `executable` and returns each rank's result.
    public static func run(_ executable: URL, ranks: Int, timeout: Double, environment: [String: String] = [:],
                           arguments: @escaping @Sendable (Int) -> [String]) async throws -> [ChildProcess.Result] {
        let hosts = FileManager.default.temporaryDirectory.appendingPathComponent("ring-\(UUID().uuidString).json")
        defer { try? FileManager.default.removeItem(at: hosts) }
        let entries = try (0..<ranks).map { _ in "[\"127.0.0.1:\(try freePort())\"]" }
        try "[\(entries.joined(separator: ", "))]".write(to: hosts, atomically: true, encoding: .utf8)
        return try await withThrowingTaskGroup(of: (Int, ChildProcess.Result).self) { group in
            for rank in 0..<ranks {
                var env = environment
                env["MLX_RANK"] = "\(rank)"
                env["MLX_HOSTFILE"] = hosts.path
                let env2 = env
                group.addTask { (rank, try await ChildProcess.run(executable, arguments(rank), timeout: timeout, environment: env2)) }
            }
            var all: [Int: ChildProcess.Result] = [:]
            for try await (rank, result) in group { all[rank] = result }
            return (0..<ranks).map { all[$0]! }
        }
    }
}
