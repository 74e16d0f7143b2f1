import Foundation
import Testing
import RobotData
import TensorKit
import TestSupport
@testable import Training
import VLAModel

/// Data-parallel training: shares of a global batch must add up to the concatenated batch, in
/// the loss (in process) and in the parameters after training on two ring ranks (processes).
@Suite(.serialized, .timeLimit(.minutes(3)))
struct DataParallelTests {
    @Test func sharesPartitionTheGlobalBatch() {
        // 7 rows over 3 ranks: 3, 2, 2 rows, contiguous and covering 0..<7 once.
        let shares = (0..<3).map { BatchShare.of(globalSize: 7, rank: $0, ranks: 3) }
        #expect(shares.map(\.size) == [3, 2, 2])
        #expect(shares.map(\.share.offset) == [0, 3, 5])
        #expect(shares.allSatisfy { $0.share.globalSize == 7 })
    }

    @Test func shareLossesCombineIntoTheConcatenatedBatchLoss() throws {
        // The global masked mean is Σ C_r L_r / Σ C_r with C_r the share's valid action entries
        // (what the trainer's all_sum computes); per-sample losses are the same rows either way.
        var config = tinyVLAConfig()
        config.noiseDraws = 2
        let model = try FlowMatchingVLA(config: config, key: RandomKey(seed: 3))
        let global = try DataParallelBenchmark.syntheticBatch(config: config, globalSize: 5, step: 0, seed: 9)
        let key = RandomKey(seed: 11)
        let (full, fullPerSample) = try model.lossTerms(global, key: key)
        var weighted = 0.0, entries = 0.0, perSample: [Float] = []
        for rank in 0..<2 {
            let (share, size) = BatchShare.of(globalSize: 5, rank: rank, ranks: 2)
            let part = try DataParallelBenchmark.rows(global, share.offset..<(share.offset + size))
            let (loss, rows) = try model.lossTerms(part, key: key, share: share)
            let count = Double(try part.actionMask.sum().item() as Float)
            weighted += Double(try loss.item() as Float) * count
            entries += count
            perSample += try rows.toArray(Float.self)
        }
        let fullLoss = Double(try full.item() as Float)
        #expect(abs(weighted / entries - fullLoss) <= 1e-5 * fullLoss, "shares \(weighted / entries) vs full \(fullLoss)")
        let expected = try fullPerSample.toArray(Float.self)
        for (a, b) in zip(perSample, expected) { #expect(abs(a - b) <= 1e-5 * max(1, abs(b))) }
        // Without the share the rows would draw other noise: the loss must differ.
        let (share, size) = BatchShare.of(globalSize: 5, rank: 1, ranks: 2)
        let part = try DataParallelBenchmark.rows(global, share.offset..<(share.offset + size))
        let unshared = try model.lossTerms(part, key: key).perSample.toArray(Float.self)
        #expect(zip(unshared, expected[share.offset...]).contains { abs($0 - $1) > 1e-3 })
    }

    @Test func twoRingRanksTrainTheSameParametersAsOneProcessOnTheConcatenatedBatch() async throws {
        let vla = try #require(ChildProcess.vlaBinary(), "no vla binary beside the tests: build it (swift build) first")
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("dp-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        // Global batch 7 over 2 ranks (4 + 3 rows, different valid-entry counts), 4 AdamW steps.
        let common = ["bench", "data-parallel", "--global-batch", "7", "--dims", "32", "--layers", "1",
                      "--image-size", "16", "--horizon", "4", "--json"]
        let file = { (name: String) in dir.appendingPathComponent(name).path }
        let initial = try await ChildProcess.run(vla, common + ["--steps", "0", "--save-parameters", file("initial")], timeout: 60)
        #expect(initial.status == 0, "\(initial.stderr.suffix(800))")
        let one = try await ChildProcess.run(vla, common + ["--steps", "4", "--save-parameters", file("one")], timeout: 90)
        #expect(one.status == 0, "\(one.stderr.suffix(800))")
        let twoPath = file("two"), bf16Path = file("bf16")
        let ranks = try await RingLauncher.run(vla, ranks: 2, timeout: 120) { rank in
            common + ["--steps", "4"] + (rank == 0 ? ["--save-parameters", twoPath] : [])
        }
        for (rank, r) in ranks.enumerated() { #expect(r.status == 0, "rank \(rank): \(r.stderr.suffix(800))") }
        // The same with gradients sent as bfloat16 (8-bit mantissa, fp32 master weights).
        let bf16Ranks = try await RingLauncher.run(vla, ranks: 2, timeout: 120) { rank in
            common + ["--steps", "4", "--bf16-gradients"] + (rank == 0 ? ["--save-parameters", bf16Path] : [])
        }
        for (rank, r) in bf16Ranks.enumerated() { #expect(r.status == 0, "bf16 rank \(rank): \(r.stderr.suffix(800))") }

        // And over MLX's MPI backend (Open MPI from bootstrap; mpirun starts both ranks).
        let mpirun = URL(fileURLWithPath: "/usr/bin/mpirun")
        try #require(FileManager.default.isExecutableFile(atPath: mpirun.path), "no mpirun: run scripts/bootstrap (it installs openmpi-bin)")
        let mpi = try await ChildProcess.run(mpirun, ["--allow-run-as-root", "--oversubscribe", "-np", "2", vla.path]
                                             + common + ["--backend", "mpi", "--steps", "4", "--save-parameters", file("mpi")], timeout: 120)
        #expect(mpi.status == 0, "mpirun: \(mpi.stderr.suffix(800))")

        struct Summary: Decodable { var ranks: Int; var losses: [Float] }
        let s1 = try JSONDecoder().decode(Summary.self, from: Data(one.stdout.utf8))
        let s2 = try JSONDecoder().decode(Summary.self, from: Data(ranks[0].stdout.utf8))
        #expect(s1.ranks == 1 && s2.ranks == 2)
        // Each step's global loss agrees to float32 summation-order noise.
        for (a, b) in zip(s1.losses, s2.losses) { #expect(abs(a - b) <= 1e-5 * abs(a), "losses \(s1.losses) vs \(s2.losses)") }

        let load = { (name: String) throws -> [String: [Float]] in
            try TensorFile.load(URL(fileURLWithPath: file(name))).tensors.mapValues { try $0.toArray(Float.self) }
        }
        let p0 = try load("initial"), p1 = try load("one"), p2 = try load("two"), pb = try load("bf16"), pm = try load("mpi")
        #expect(Set(p1.keys) == Set(p2.keys) && p1.count == p0.count && pb.count == p0.count)
        var moved = 0.0, apart = 0.0, apartBF16 = 0.0, apartMPI = 0.0
        for (k, a) in p1 {
            for (i, x) in a.enumerated() {
                moved += Double(x - p0[k]![i]) * Double(x - p0[k]![i])
                apart += Double(x - p2[k]![i]) * Double(x - p2[k]![i])
                apartBF16 += Double(x - pb[k]![i]) * Double(x - pb[k]![i])
                apartMPI += Double(x - pm[k]![i]) * Double(x - pm[k]![i])
            }
        }
        // bfloat16 gradients: measured 7e-3 (relative rounding 2⁻⁹ per gradient entry, grown
        // through AdamW's normalization), against 2e-3 for float32 summation order.
        #expect(sqrt(apartBF16 / moved) < 3e-2, "bf16 relative distance \(sqrt(apartBF16 / moved))")
        #expect(sqrt(apartBF16 / moved) > sqrt(apart / moved), "bf16 gradients must be coarser than float32 ones")
        // ‖θ₁ − θ₂‖ / ‖θ₁ − θ₀‖: measured 3e-4 (float32 sums in another order, amplified where
        // AdamW divides tiny gradients by their own magnitude); an unweighted average of the
        // two shares' gradients gives a different step by percents.
        #expect(moved > 0)
        #expect(sqrt(apart / moved) < 2e-3, "relative distance \(sqrt(apart / moved))")
        #expect(sqrt(apartMPI / moved) < 2e-3, "MPI relative distance \(sqrt(apartMPI / moved))")   // measured 2e-4
    }
}
