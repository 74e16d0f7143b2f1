import ArgumentParser
import Foundation
import TensorKit
import Training
import VLAModel

struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Performance benchmarks (ratios against references measured in the same run).",
        subcommands: [BenchTensor.self, BenchServe.self, BenchFleetScaling.self, BenchSoak.self, BenchAllReduce.self, BenchDataParallel.self]
    )
}

struct BenchTensor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensor",
        abstract: "sgemm GFLOP/s vs OpenBLAS, fast kernels vs MLX ops, and one transformer training step vs JAX jit and MLX-Python.")

    @Option(help: "Timed training steps (best is reported).") var steps = 5
    @Option(help: "Python with `jax` and `mlx` for the side-by-side step (default: .venv/bin/python; scripts/bootstrap --bench installs them).")
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
        // NumPy's time for the same op on arrays of the same shape (forward only), when available.
        let numpy = (try? runNumPyOps()) ?? [:]
        let numpyColumn = { (op: String, fast: Double) -> String in
            numpy[op].map { String(format: "  | NumPy %7.3f  fast/NumPy %5.2f", $0, fast / $0) } ?? "  | NumPy -"
        }
        print("elementwise over 2048×1024 float32, ns/element (best of 5): MLX op vs fast kernel (SIMD: \(FastKernels.usesSIMD))")
        print("op             MLX     fast  speedup  | grad: MLX     fast  speedup")
        for r in try TensorBenchmark.kernels() {
            print(r.op.padding(toLength: 10, withPad: " ", startingAt: 0) + String(format: " %8.3f %8.3f %7.1fx  | %10.3f %8.3f %7.1fx",
                         r.mlxNanosecondsPerElement,
                         r.fastNanosecondsPerElement, r.speedup, r.mlxGradNanosecondsPerElement,
                         r.fastGradNanosecondsPerElement, r.mlxGradNanosecondsPerElement / r.fastGradNanosecondsPerElement)
                  + numpyColumn(r.op, r.fastNanosecondsPerElement))
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
                           r.mlxGradNanosecondsPerElement / r.fusedGradNanosecondsPerElement)
                  + numpyColumn(r.op, r.fusedNanosecondsPerElement))
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
        let before = try InferenceBenchmark.chunkLatency(fastKernels: false)
        let after = try InferenceBenchmark.chunkLatency(fastKernels: true)
        print(String(format: "default VLA chunk inference (1 observation, %d Euler steps, 30 chunks): MLX ops p50 %.1f / p99 %.1f ms → fast kernels p50 %.1f / p99 %.1f ms (%.2fx at p50)",
                     VLAConfig().samplingSteps, before.p50Milliseconds, before.p99Milliseconds, after.p50Milliseconds, after.p99Milliseconds,
                     before.p50Milliseconds / after.p50Milliseconds))
        // The same graph in the frameworks people train VLAs with, measured now, on this machine.
        for (name, script) in [("JAX jit", "scripts/bench_jax_step.py"), ("MLX-Python", "scripts/bench_mlx_step.py")] {
            if let ms = try? runPythonStep(script) {
                print(name.padding(toLength: 11, withPad: " ", startingAt: 0)
                      + String(format: " %8.1f ms  %6.1f GFLOP/s", ms, step.flopsPerStep / (ms / 1000) / 1e9)
                      + "  → TensorKit/\(name) time ratio " + String(format: "%.3f", step.milliseconds / ms))
            } else {
                print("\(name): not measured (install with `scripts/bootstrap --bench`)")
            }
        }
    }

    /// scripts/bench_numpy_ops.py's ns/element per op.
    func runNumPyOps() throws -> [String: Double]? {
        guard FileManager.default.isExecutableFile(atPath: python),
              FileManager.default.fileExists(atPath: "scripts/bench_numpy_ops.py") else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = ["scripts/bench_numpy_ops.py"]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        guard process.terminationStatus == 0 else { return nil }
        return try JSONDecoder().decode([String: Double].self, from: data)
    }

    /// Runs one of scripts/bench_*_step.py (same graph, same sizes) and returns its best step in ms.
    func runPythonStep(_ script: String) throws -> Double? {
        guard FileManager.default.isExecutableFile(atPath: python),
              FileManager.default.fileExists(atPath: script) else { return nil }
        let process = Process()
        process.executableURL = URL(fileURLWithPath: python)
        process.arguments = [script, "--steps", "\(steps)"]
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

/// `vla bench data-parallel`, one process per rank (or alone: the one-process reference):
/// the VLA trained on synthetic global batches split over the ranks.
struct BenchDataParallel: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data-parallel",
        abstract: "Data-parallel VLA training on synthetic batches: samples/s and all-reduce ms per step; run one per rank (alone = 1 rank).")

    @Option(help: "MLX distributed backend: ring, mpi or any.") var backend = "ring"
    @Option(help: "Global batch (split over the ranks).") var globalBatch = 32
    @Option(help: "Training steps (the first is untimed).") var steps = 6
    @Option var seed: UInt64 = 1
    @Option(help: "Model width (VLAConfig.dims).") var dims = VLAConfig().dims
    @Option(help: "Backbone and expert layers each.") var layers = VLAConfig().backboneLayers
    @Option(help: "Camera image size (pixels).") var imageSize = VLAConfig().imageSize
    @Option(help: "Action chunk horizon.") var horizon = VLAConfig().horizon
    @Option(help: "Rank 0 writes the trained parameters here (safetensors).") var saveParameters: String?
    @Flag(help: "Send gradients as bfloat16 (fp32 master weights).") var bf16Gradients = false
    @Flag(help: "Print rank 0's result as JSON.") var json = false

    func run() async throws {
        // Alone (no launcher environment) this is a one-process group.
        let group = try DistributedGroup.initialize(backend: backend, strict: false)
        var config = VLAConfig()
        config.dims = dims
        config.heads = max(1, dims / 32)
        config.backboneLayers = layers
        config.expertLayers = layers
        config.imageSize = imageSize
        config.horizon = horizon
        config.executeSteps = max(1, horizon / 2)
        let (result, policy) = try DataParallelBenchmark.run(config: config, group: group, globalBatch: globalBatch, steps: steps, seed: seed,
                                                                      bfloat16Gradients: bf16Gradients) { step, seconds in
                if group.rank == 0 {
                    FileHandle.standardError.write(Data(String(format: "  step %d/%d: %.0f ms\n", step + 1, steps, seconds * 1000).utf8))
                }
            }
        if group.rank == 0, let path = saveParameters {
            try TensorFile.save(policy.model.trainableParameters(), to: URL(fileURLWithPath: path))
        }
        guard group.rank == 0 else { return }
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys]
            print(String(decoding: try encoder.encode(result), as: UTF8.self))
        } else {
            print(String(format: "%d rank(s), global batch %d, %d parameters: step %.1f ms, %.1f samples/s, all-reduce of the gradients %.2f ms (%.0f%% of the step), final loss %.4f",
                         result.ranks, result.globalBatch, result.parameters, result.stepMilliseconds, result.samplesPerSecond,
                         result.allReduceMilliseconds, 100 * result.allReduceMilliseconds / max(result.stepMilliseconds, 1e-9),
                         result.losses.last ?? .nan))
        }
    }
}
