import Foundation
import Testing
import RobotData
import TensorKit
import TestSupport
@testable import Fleet

/// Policy versions as lossless deltas against the previous one (`WeightDelta`).
extension FleetTests {
    @Test func deltaCodingMatchesHandWorkedExamples() throws {
        // Byte planes of 4-byte words: 9 bytes = 2 words + a 1-byte tail that stays last.
        #expect(WeightDelta.shuffle([1, 2, 3, 4, 5, 6, 7, 8, 9]) == [1, 5, 2, 6, 3, 7, 4, 8, 9])
        #expect(WeightDelta.unshuffle([1, 5, 2, 6, 3, 7, 4, 8, 9]) == [1, 2, 3, 4, 5, 6, 7, 8, 9])
        // 4 zeros, literal [5, 0, 7] (a lone zero stays inside: runs under 3 are not worth two
        // counts), 3 zeros, literal [9].
        let bytes: [UInt8] = [0, 0, 0, 0, 5, 0, 7, 0, 0, 0, 9]
        #expect(WeightDelta.zeroRunEncode(bytes) == [4, 3, 5, 0, 7, 3, 1, 9])
        #expect(try WeightDelta.zeroRunDecode([4, 3, 5, 0, 7, 3, 1, 9], count: 11) == bytes)
        // Counts ≥ 128 take two LEB128 bytes: 300 zeros = 0xAC 0x02, then no literal.
        #expect(WeightDelta.zeroRunEncode([UInt8](repeating: 0, count: 300)) == [0xAC, 0x02, 0])
        // Runs that overshoot the base are refused, not written past the end.
        #expect(throws: WeightTransferError.self) { try WeightDelta.zeroRunDecode([20, 0], count: 11) }
        #expect(throws: WeightTransferError.self) { try WeightDelta.zeroRunDecode([4, 3, 5], count: 11) }
    }

    @Test func deltaRebuildsTheNextVersionExactlyAndIsSmallerForSmallUpdates() throws {
        // v1: 20 000 weights ~ N(0, 0.05); v2: each moved by a relative 1e-3 (an optimizer step's
        // size). Both files have the same layout, so the delta applies, and rebuilding gives v2's
        // file byte for byte.
        var rng = SplitMix64(seed: 5)
        func gaussian() -> Float {
            let u = Double(rng.next() >> 11 + 1) / Double(1 << 53), v = Double(rng.next() >> 11) / Double(1 << 53)
            return Float((-2 * log(u)).squareRoot() * cos(2 * .pi * v))
        }
        let w1 = (0..<20_000).map { _ in 0.05 * gaussian() }
        let w2 = w1.map { $0 * (1 + 1e-3 * gaussian()) }
        let b1 = [Float](repeating: 0.1, count: 8)
        func file(_ w: [Float], version: Int) throws -> Data {
            let tensors = try TensorLock.run { ["linear.weight": try Tensor(w, shape: [8, 2_500]), "linear.bias": try Tensor(b1, shape: [8])] }
            return try PolicyWeights(version: version, trainStep: 10 * version, model: "linear-bc", tensors: tensors).safetensorsBytes()
        }
        let v9 = try file(w1, version: 9), v10 = try file(w2, version: 10)   // 9 → 10: the header grows a digit
        let delta = try #require(try WeightDelta.encode(new: v10, base: v9))
        #expect(try WeightDelta.apply(delta, base: v9) == v10)
        // Small relative moves keep sign, exponent and leading mantissa bits: the XOR's top byte
        // plane is almost all zero, so the delta is well under the file (measured: 0.60 of it).
        #expect(Double(delta.count) < 0.7 * Double(v10.count), "delta \(delta.count) of \(v10.count) bytes")
        // Unchanged weights: the data region codes as one zero run — 8 + header + 3 count bytes
        // (LEB128 of 80 032 data bytes is 3 bytes, then 0 for no literal).
        let same = try file(w1, version: 11)
        let (header, data) = try SafetensorsHeader.split(same)
        #expect(data.count == 80_032)
        #expect(try WeightDelta.encode(new: same, base: v9)!.count == 8 + header.count + 3 + 1)
        // Another layout: no delta.
        let bias = try TensorLock.run { try Tensor(b1, shape: [8]) }
        let other = try PolicyWeights(version: 12, trainStep: 0, model: "linear-bc", tensors: ["linear.bias": bias]).safetensorsBytes()
        #expect(try WeightDelta.encode(new: other, base: v9) == nil)
    }

    @Test func assemblerAppliesDeltasOnlyAgainstTheVersionItHolds() throws {
        let policy = try LinearPolicy(stateDimension: 17, actionDimension: 8, seed: 42)
        let tensors1 = policy.trainableParameters()
        let tensors2 = try TensorLock.run { try tensors1.mapValues { try $0 * 1.001 + 1e-4 } }
        let v1 = try PolicyPublication(PolicyWeights(version: 1, trainStep: 0, model: LinearPolicy.modelName, tensors: tensors1), chunkBytes: 100)
        let v2 = try PolicyPublication(PolicyWeights(version: 2, trainStep: 5, model: LinearPolicy.modelName, tensors: tensors2),
                                       chunkBytes: 100, deltaBase: v1)
        #expect(v2.deltaBaseVersion == 1 && v2.deltaBytes > 0 && v2.deltaBytes < v2.totalBytes)
        // Who gets what: the delta only to a stream that delivered v1 and accepts deltas.
        #expect(v2.updates(lastDelivered: 1, acceptsDelta: true).isDelta)
        #expect(!v2.updates(lastDelivered: 1, acceptsDelta: false).isDelta)
        #expect(!v2.updates(lastDelivered: nil, acceptsDelta: true).isDelta)
        #expect(PolicyPublication.payloadBytes(v2.updates(lastDelivered: 1, acceptsDelta: true).updates) == v2.deltaBytes)

        var assembler = WeightAssembler()
        var got: PolicyWeights?
        for u in v1.updates { got = try assembler.consume(u) }
        #expect(assembler.baseVersion == 1)
        for u in v2.deltaUpdates! { got = try assembler.consume(u) }
        let w = try #require(got)
        #expect(w.version == 2 && w.trainStep == 5)
        #expect(try bitPatterns(w.tensors) == bitPatterns(tensors2))
        #expect(assembler.baseVersion == 2)

        // A delta against a version the assembler does not hold is refused at its manifest.
        var fresh = WeightAssembler()
        #expect(throws: WeightTransferError.self) { for u in v2.deltaUpdates! { _ = try fresh.consume(u) } }
        // A damaged delta chunk rebuilds a file whose CRC-32 is wrong.
        var damaged = v2.deltaUpdates!
        if case .chunk(var c) = damaged[1].kind { c.data[c.data.startIndex + c.data.count - 1] ^= 0x01; damaged[1].kind = .chunk(c) }
        var holder = WeightAssembler()
        for u in v1.updates { _ = try holder.consume(u) }
        #expect(throws: WeightTransferError.self) { for u in damaged { _ = try holder.consume(u) } }
    }

    @Test func aWatcherThatAcceptsDeltasGetsTheNextVersionAsOne() async throws {
        let (learner, backend) = try makeLearner("delta-watch") { $0.weightChunkBytes = 64 }
        let port = try await learner.start()
        let expected = try bitPatterns(await backend.exportTrainableWeights())
        let received = try await withFleetClient(port: port) { client in
            _ = try await register(client, actorID: "watcher")
            var request = Swiftvla_Fleet_V1_WatchPolicyRequest()
            request.actorID = "watcher"
            request.acceptDelta = true
            return try await client.watchPolicy(request) { response in
                var assembler = WeightAssembler(), manifests: [Swiftvla_Fleet_V1_PolicyManifest] = [], got: [PolicyWeights] = []
                for try await update in response.messages {
                    if case .manifest(let m) = update.kind { manifests.append(m) }
                    if let w = try assembler.consume(update) {
                        got.append(w)
                        if got.count == 1 { try await learner.publish() }   // v2 once v1 is in
                        if got.count == 2 { return (manifests, got) }
                    }
                }
                throw WeightTransferError.corrupt("stream ended early")
            }
        }
        let (manifests, versions) = received
        #expect(versions.map(\.version) == [1, 2])
        #expect(manifests[0].deltaBaseVersion == 0 && manifests[1].deltaBaseVersion == 1)
        // Unchanged weights: the delta is v2's header and one zero run over the data region.
        let v2File = try versions[1].safetensorsBytes()
        let (header, data) = try SafetensorsHeader.split(v2File)
        var count: [UInt8] = []
        WeightDelta.appendVarint(data.count, to: &count)
        #expect(manifests[1].payloadBytes == UInt64(8 + header.count + count.count + 1))
        #expect(manifests[1].totalBytes == UInt64(v2File.count))
        for v in versions { #expect(try bitPatterns(v.tensors) == expected) }
        let m = learner.metrics.snapshot()
        #expect(m.versionsSent == 2 && m.deltaVersionsSent == 1)
        #expect(m.weightBytesSent == Int(manifests[0].payloadBytes + manifests[1].payloadBytes))
        await learner.stop()
    }
}

/// The Python client's assembler (clients/python/swiftvla_client/weights.py) rebuilds what the
/// Swift learner encodes: v1 whole, v2 as a delta (byte-identical file), v3 as a delta with a damaged chunk (refused).
@Suite(.timeLimit(.minutes(2)))
struct PythonWeightDeltaTests {
    @Test func pythonAssemblerRebuildsSwiftDeltasBitExactly() async throws {
        var rng = SplitMix64(seed: 11)
        func weights(_ version: Int, _ values: [Float]) throws -> PolicyWeights {
            let t = try TensorLock.run { try Tensor(values, shape: [values.count / 100, 100]) }
            return PolicyWeights(version: version, trainStep: version, model: "vla", tensors: ["expert.weight": t])
        }
        let w1 = (0..<30_000).map { _ in Float(Int(rng.next() % 2001) - 1000) * 1e-4 }
        let w2 = w1.map { $0 * 1.0005 }, w3 = w2.map { $0 - 2e-5 }
        let v1 = try PolicyPublication(weights(1, w1), chunkBytes: 10_000)
        let v2 = try PolicyPublication(weights(2, w2), chunkBytes: 10_000, deltaBase: v1)
        let v3 = try PolicyPublication(weights(3, w3), chunkBytes: 10_000, deltaBase: v2)
        var damaged = try #require(v3.deltaUpdates)
        if case .chunk(var c) = damaged[1].kind { c.data[c.data.startIndex + 3] ^= 0x40; damaged[1].kind = .chunk(c) }
        // Length-prefixed serialized PolicyUpdates, as they would arrive on the stream.
        var stream = Data()
        for u in v1.updates + v2.deltaUpdates! + damaged {
            let bytes = try u.serializedData()
            WeightDelta.appendU64(UInt64(bytes.count), to: &stream)
            stream.append(bytes)
        }
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("py-delta-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try stream.write(to: dir.appendingPathComponent("updates.bin"))
        try v2.fileBytes.write(to: dir.appendingPathComponent("v2.safetensors"))
        let script = """
        import struct, sys
        sys.path.insert(0, sys.argv[1])
        from swiftvla_client import WeightAssembler, WeightTransferError
        from swiftvla_client import fleet_pb2 as pb
        raw = open(sys.argv[2] + '/updates.bin', 'rb').read()
        a, i, out = WeightAssembler(), 0, []
        while i < len(raw):
            (n,) = struct.unpack('<Q', raw[i:i + 8]); u = pb.PolicyUpdate.FromString(raw[i + 8:i + 8 + n]); i += 8 + n
            try:
                v = a.consume(u)
                if v is not None: out.append((v.version, v.manifest.delta_base_version))
                if v is not None and v.version == 2: same = v.data == open(sys.argv[2] + '/v2.safetensors', 'rb').read()
            except WeightTransferError as e:
                out.append('refused')
        print(out, same)
        """
        let root = ChildProcess.packageRoot
        let result = try await ChildProcess.run(ChildProcess.python, ["-c", script, root.appendingPathComponent("clients/python").path, dir.path], timeout: 60)
        #expect(result.status == 0, "\(result.stderr)")
        #expect(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "[(1, 0), (2, 1), 'refused'] True")
    }
}
