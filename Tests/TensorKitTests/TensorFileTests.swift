import Foundation
import Testing
@testable import TensorKit

@Suite("Safetensors and checkpoints")
struct TensorFileTests {
    func temporaryDirectory() throws -> URL {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("tensorkit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url
    }

    @Test func roundTripIsBitExact() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let tensors: [String: Tensor] = [
            "weights": try RandomKey(seed: 1).normal([3, 5]),
            "image": try Tensor((0..<12).map { UInt8($0 * 20) }, shape: [2, 2, 3]),
            "ids": try Tensor([-3, 0, 9] as [Int32]),
            "half": try RandomKey(seed: 2).normal([4]).astype(.bfloat16),
        ]
        let url = dir.appendingPathComponent("t.safetensors")
        try TensorFile.save(tensors, metadata: ["task": "pick", "step": "12"], to: url)
        let (loaded, metadata) = try TensorFile.load(url)
        #expect(metadata["task"] == "pick" && metadata["step"] == "12")
        #expect(Set(loaded.keys) == Set(tensors.keys))
        for (k, t) in tensors {
            #expect(loaded[k]!.dtype == t.dtype && loaded[k]!.shape == t.shape)
            #expect(try loaded[k]!.bytes() == t.bytes(), "bytes of \(k)")
        }
        // No temporary files are left behind.
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["t.safetensors"])
        #expect(throws: TensorError.self) { try TensorFile.load(dir.appendingPathComponent("missing.safetensors")) }
    }

    @Test func truncatedFileIsAnErrorNotACrash() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("t.safetensors")
        try TensorFile.save(["x": try Tensor.ones([64, 64])], to: url)
        let data = try Data(contentsOf: url)
        try data.prefix(data.count / 2).write(to: url)
        #expect(throws: TensorError.self) { try TensorFile.load(url) }
    }

    @Test func pythonSafetensorsReadsOurFile() throws {
        // Runs only where bootstrap's .venv has NumPy + safetensors (always in CI).
        let python = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../.venv/bin/python").standardized
        guard FileManager.default.isExecutableFile(atPath: python.path) else { return }
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let url = dir.appendingPathComponent("p.safetensors")
        try TensorFile.save(["a": try Tensor([1.5, -2, 3.25] as [Float]), "b": try Tensor([7, 8] as [Int32], shape: [1, 2])],
                            metadata: ["who": "swift"], to: url)
        let process = Process()
        process.executableURL = python
        process.arguments = ["-c", """
            import sys
            from safetensors.numpy import load_file
            from safetensors import safe_open
            t = load_file(sys.argv[1])
            meta = safe_open(sys.argv[1], "np").metadata()
            print(t["a"].dtype, t["a"].tolist(), t["b"].dtype, t["b"].shape, t["b"].tolist(), meta["who"])
            """, url.path]
        let pipe = Pipe()
        process.standardOutput = pipe
        try process.run()
        process.waitUntilExit()
        let out = String(decoding: pipe.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        #expect(process.terminationStatus == 0)
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "float32 [1.5, -2.0, 3.25] int32 (1, 2) [[7, 8]] swift")
    }

    @Test func checkpointRestoresModelAndOptimizer() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(at: dir) }
        let model = try MLP(dims: 3, hidden: 5, key: RandomKey(seed: 1))
        let optimizer = AdamW(learningRate: 0.01)
        let x = try Tensor.ones([2, 3])
        let step = valueAndGrad(model: model) { m in try m(x).square().sum() }
        for _ in 0..<3 { try optimizer.step(model: model, gradients: step(model).grads) }
        try Checkpoint.save(model: model, optimizer: optimizer, name: "mlp", step: 3, to: dir)

        let restored = try MLP(dims: 3, hidden: 5, key: RandomKey(seed: 99))
        let restoredOptimizer = AdamW(learningRate: 0.01)
        let manifest = try Checkpoint.load(into: restored, optimizer: restoredOptimizer, from: dir)
        #expect(manifest.step == 3 && manifest.optimizerStep == 3 && manifest.parameters["up.weight"] == [5, 3])
        // One more step on both gives identical parameters (optimizer moments and step restored).
        try optimizer.step(model: model, gradients: step(model).grads)
        try restoredOptimizer.step(model: restored, gradients: valueAndGrad(model: restored) { m in try m(x).square().sum() }(restored).grads)
        for (k, v) in model.parameters() {
            #expect(try v.toArray(Float.self) == restored.parameters()[k]!.toArray(Float.self), "\(k)")
        }
    }
}
