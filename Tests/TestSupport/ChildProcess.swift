import Foundation

/// Runs helper programs from tests (Python reference checks, headless Chromium) with their
/// output captured to files, so a chatty child never blocks on a full pipe.
public enum ChildProcess {
    public struct Result: Sendable {
        public var status: Int32
        public var stdout: String
        public var stderr: String
    }

    /// The package root (this file is Tests/TestSupport/ChildProcess.swift).
    public static let packageRoot = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// The `vla` built next to the test bundle (`swift test` builds every product).
    public static func vlaBinary() -> URL? {
        let besideTests = URL(fileURLWithPath: ProcessInfo.processInfo.arguments[0]).deletingLastPathComponent().appendingPathComponent("vla")
        return [besideTests, packageRoot.appendingPathComponent(".build/debug/vla")]
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// The project's Python (`scripts/bootstrap` creates it).
    public static var python: URL { packageRoot.appendingPathComponent(".venv/bin/python") }

    /// Runs `executable` with `arguments` (cwd: the package root), killing it after `timeout`
    /// seconds (status −1 then). Proxies are cleared: children only talk to loopback.
    public static func run(_ executable: URL, _ arguments: [String], timeout: Double,
                           environment extra: [String: String] = [:]) async throws -> Result {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("child-process-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let out = dir.appendingPathComponent("stdout"), err = dir.appendingPathComponent("stderr")
        for file in [out, err] { try Data().write(to: file) }
        let outHandle = try FileHandle(forWritingTo: out), errHandle = try FileHandle(forWritingTo: err)
        let process = Process()
        process.executableURL = executable
        process.arguments = arguments
        process.currentDirectoryURL = packageRoot
        var environment = ProcessInfo.processInfo.environment
        for key in ["http_proxy", "https_proxy", "HTTP_PROXY", "HTTPS_PROXY", "grpc_proxy", "all_proxy", "ALL_PROXY"] {
            environment[key] = nil
        }
        // A test that joined an MPI group of one (MLX's "any" backend finds libmpi) leaves Open
        // MPI / PMIx variables behind; a child mpirun would take itself for part of that job.
        for key in environment.keys where key.hasPrefix("OMPI_") || key.hasPrefix("PMIX_") || key.hasPrefix("PMI_") {
            environment[key] = nil
        }
        environment.merge(extra) { $1 }
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        environment["PYTHONUNBUFFERED"] = "1"
        process.environment = environment
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        try process.run()
        let deadline = ContinuousClock.now + .seconds(timeout)
        var timedOut = false
        while process.isRunning {
            if ContinuousClock.now > deadline {
                process.terminate()
                timedOut = true
                break
            }
            try await Task.sleep(for: .milliseconds(50))
        }
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        let stdout = String(decoding: try Data(contentsOf: out), as: UTF8.self)
        var stderr = String(decoding: try Data(contentsOf: err), as: UTF8.self)
        if timedOut { stderr += "\n(killed after \(timeout) s)" }
        return Result(status: timedOut ? -1 : process.terminationStatus, stdout: stdout, stderr: stderr)
    }
}
