import ArgumentParser
import Foundation
import TensorKit

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Performance benchmarks (ratios against references measured in the same run).",
        subcommands: [BenchTensor.self, BenchServe.self, BenchFleetScaling.self, BenchSoak.self, BenchAllReduce.self]
    )
}

struct BenchTensor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "sgemm GFLOP/s vs OpenBLAS, and one transformer training step vs sgemm peak and MLX-Python.")

    @Option(help: "Timed training steps (best is reported).") var steps = 5
    @Option(help: "Python with the `mlx` package for the side-by-side step (default: .venv/bin/python).")
    var python = ".venv/bin/python"

    func run() async throws {
        print("MLX \(TensorMemory.mlxVersion)")
        print("sgemm n       TensorKit GFLOP/s   OpenBLAS GFLOP/s   ratio")
        var peak = 0.0
        for n in [256, 512, 1024] {
            let r = try TensorBenchmark.sgemm(n: n)
            peak = max(peak, r.openBLASGFLOPs)
            print(String(format: "%-13d %17.1f %18.1f %7.2f", n, r.tensorKitGFLOPs, r.openBLASGFLOPs, r.tensorKitGFLOPs / r.openBLASGFLOPs))
        }
        print("elementwise over 2048×1024 float32, ns/element (best of 5): MLX op vs fast kernel (SIMD: \(FastKernels.usesSIMD))")
        print("op             MLX     fast  speedup  | grad: MLX     fast  speedup")
        for r in try TensorBenchmark.kernels() {
            print(r.op.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: " %8.3f %8.3f %7.1fx  | %10.3f %8.3f %7.1fx",
                         r.mlxNanosecondsPerElement,
                         r.fastNanosecondsPerElement, r.speedup, r.mlxGradNanosecondsPerElement,
                         r.fastGradNanosecondsPerElement, r.mlxGradNanosecondsPerElement / r.fastGradNanosecondsPerElement))
        }
        print("fused row kernels over the last axis, ns/element (best of 5): MLX ops vs fused kernel")
        print("op          shape              MLX    fused  speedup  | fwd+bwd: MLX    fused  speedup")
        for r in try TensorBenchmark.rowKernels() {
            let shape = r.shape.map(String.init).joined(separator: "×")
            print(r.op.padding(toLength: 11, withPad: " ", startingAt: 0) + shape.padding(toLength: 14, withPad: " ", startingAt: 0)
                  + String(format: " %8.3f %8.3f %7.1fx  | %12.3f %8.3f %7.1fx",
                           r.mlxNanosecondsPerElement, r.fusedNanosecondsPerElement,
                           r.mlxNanosecondsPerElement / r.fusedNanosecondsPerElement,
                           r.mlxGradNanosecondsPerElement, r.fusedGradNanosecondsPerElement,
                           r.mlxGradNanosecondsPerElement / r.fusedGradNanosecondsPerElement))
        }
        print("training step: 4-layer d=256 transformer, 4 heads, vocab 512, batch 32 × seq 64, AdamW")
        let step = try TensorBenchmark.transformerStep(steps: steps) { i, s in
            FileHandle.standardError.write(Data(String(format: "  step %d/%d: %.0f ms\n", i, steps, s * 1000).utf8))
        }
        print(String(format: "TensorKit   %8.1f ms  %6.1f GFLOP/s  (%.0f%% of OpenBLAS sgemm peak %.1f)",
                     step.milliseconds, step.gflops, 100 * step.gflops / peak, peak))
        FastKernels.isEnabled = false
        let mlxOps = try TensorBenchmark.transformerStep(steps: steps)
        FastKernels.isEnabled = true
        print(String(format: "  (same step with MLX's own elementwise, softmax/logsumexp and norm ops: %.1f ms → fast kernels %.2fx faster)",
                     mlxOps.milliseconds, mlxOps.milliseconds / step.milliseconds))
        if let mlxPython = try? runMLXPython() {
            print(String(format: "MLX-Python  %8.1f ms  %6.1f GFLOP/s  → TensorKit/MLX-Python time ratio %.3f",
                         mlxPython, step.flopsPerStep / (mlxPython / 1000) / 1e9, step.milliseconds / mlxPython))
        } else {
            print("MLX-Python: not measured (install with `scripts/bootstrap --bench`)")
        }
    }

    /// Runs scripts/bench_mlx_step.py (same graph, same sizes) and returns its best step in ms.
    func runMLXPython() throws -> Double? {
        guard FileManager.default.isExecutableFile(atPath: python),
              FileManager.default.fileExists(atPath: "scripts/bench_mlx_step.py") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["scripts/bench_mlx_step.py", "--steps", "\(steps)"]
        // Same BLAS as our binary: OpenBLAS ahead of MLX's bundled reference BLAS.
        var env = ProcessInfo.processInfo.environment
        for path in ["/usr/lib/x86_64-linux-gnu/libopenblas.so.0", "/usr/lib/aarch64-linux-gnu/libopenblas.so.0"]
        where FileManager.default.fileExists(atPath: path) { env["LD_PRELOAD"] = path }
        process.environment = env
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        return out.split(separator: "\n").compactMap { line -> Double? in
            line.hasPrefix("best_ms ") ? Double(line.dropFirst(8)) : nil
        }.first
    }
}

/// `vla bench allreduce`, run once per rank by a launcher (e.g. `mlx.launch -n 2 --backend ring
/// vla bench allreduce`, or MLX_RANK / MLX_HOSTFILE set by hand): MLX's all_sum per size.
struct BenchAllReduce: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "allreduce",
        abstract: "All-reduce (MLX distributed all_sum) time and bandwidth per vector size, checked on every element; run one per rank.")

    @Option(help: "MLX distributed backend: ring, mpi or any.") var backend = "ring"
    @Option(help: "Vector sizes (float32 elements), comma separated.") var sizes = "1000,100000,1000000,4000000"
    @Option(help: "Timed repeats per size (best is reported).") var repeats = 5

    func run() async throws {
        let group = try DistributedGroup.initialize(backend: backend)
        let elements = try sizes.split(separator: ",").map { part -> Int in
            guard let n = Int(part), n > 0 else { throw ValidationError("--sizes must be positive integers") }
            return n
        }
        let rows = try AllReduceBenchmark.run(group: group, sizes: elements, repeats: repeats)
        for r in rows {
            print(String(format: "rank %d/%d: %9d floats  %8.3f ms  %6.2f GB/s  (local x+x %.3f ms, %.1fx)  %@", group.rank, group.size,
                         r.elements, r.milliseconds, r.gigabytesPerSecond, r.localAddMilliseconds, r.ratioToLocalAdd,
                         r.correct ? "correct" : "WRONG"))
        }
    }
}
