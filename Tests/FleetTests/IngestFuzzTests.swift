import Foundation
import RobotData
import SwiftProtobuf
import Testing
@testable import Fleet

/// Property-based fuzzing of what a learner accepts from the network and from disk: valid
/// uploads and episode files mutated at random (bit flips, truncation, dropped, duplicated and
/// reordered messages, poisoned fields). Whatever arrives, ingest either yields an episode that
/// validates and round-trips, or throws a typed `IngestError` / `EpisodeError` — never another
/// error, never a crash. CI runs a fixed, seeded budget; `scripts/fuzz SECONDS` runs longer
/// (`SWIFTVLA_FUZZ_SECONDS`, seed from `SWIFTVLA_FUZZ_SEED`).
@Suite(.serialized)
struct IngestFuzzTests {
    typealias Request = Swiftvla_Fleet_V1_UploadEpisodeRequest

    static var budget: (seconds: Double?, seed: UInt64) {
        let env = ProcessInfo.processInfo.environment
        return (env["SWIFTVLA_FUZZ_SECONDS"].flatMap(Double.init), env["SWIFTVLA_FUZZ_SEED"].flatMap(UInt64.init) ?? 17)
    }

    /// What ingest made of one message sequence.
    enum Outcome { case accepted(Episode), refused(IngestError), undecodable }

    /// The learner's upload dispatch (header → chunks → end) over the assembler.
    static func ingest(_ messages: [Request], catalog: TaskCatalog, limits: IngestLimits) throws -> Outcome {
        var assembler: EpisodeAssembler?
        do {
            for message in messages {
                switch message.kind {
                case .header(let h):
                    guard assembler == nil else { throw IngestError.protocolViolation("second header") }
                    assembler = try EpisodeAssembler(header: h, catalog: catalog, limits: limits)
                case .chunk(let c):
                    guard assembler != nil else { throw IngestError.protocolViolation("chunk before header") }
                    try assembler!.append(c)
                case .end(let e):
                    guard let a = assembler else { throw IngestError.protocolViolation("end before header") }
                    return .accepted(try a.finish(e))
                case nil:
                    throw IngestError.protocolViolation("empty message")
                }
            }
            throw IngestError.protocolViolation("stream closed before the end")
        } catch let error as IngestError {
            return .refused(error)
        }
    }

    /// One random mutation of a serialized message sequence.
    static func mutate(_ wire: inout [[UInt8]], _ g: inout SplitMix64) {
        func pick(_ n: Int) -> Int { Int(g.next() % UInt64(max(1, n))) }
        guard !wire.isEmpty else { return }
        let m = pick(wire.count)
        switch pick(7) {
        case 0 where !wire[m].isEmpty:   // flip bits
            for _ in 0...pick(4) { wire[m][pick(wire[m].count)] ^= UInt8(truncatingIfNeeded: 1 << pick(8)) }
        case 1:   // truncate
            wire[m] = Array(wire[m].prefix(pick(wire[m].count + 1)))
        case 2:   // drop
            wire.remove(at: m)
        case 3:   // duplicate
            wire.insert(wire[m], at: pick(wire.count + 1))
        case 4:   // swap
            wire.swapAt(m, pick(wire.count))
        case 5:   // overwrite a byte with an extreme value
            if !wire[m].isEmpty { wire[m][pick(wire[m].count)] = [0x00, 0xFF, 0x7F, 0x80][pick(4)] }
        default:   // splice random bytes in
            let at = pick(wire[m].count + 1)
            wire[m].insert(contentsOf: (0..<(1 + pick(8))).map { _ in UInt8(truncatingIfNeeded: g.next()) }, at: at)
        }
    }

    /// Poisons one field of the decoded messages (values protobuf happily carries).
    static func poison(_ messages: inout [Request], _ g: inout SplitMix64) {
        func pick(_ n: Int) -> Int { Int(g.next() % UInt64(max(1, n))) }
        guard !messages.isEmpty else { return }
        let m = pick(messages.count)
        let floats: [Float] = [.nan, .infinity, -.infinity, .greatestFiniteMagnitude, 0]
        switch messages[m].kind {
        case .header(var h):
            switch pick(5) {
            case 0: if !h.cameras.isEmpty { h.cameras[pick(h.cameras.count)].height = UInt32(truncatingIfNeeded: g.next()) }
            case 1: h.stateDim = UInt32(pick(40))
            case 2: h.policyVersion = Int64(bitPattern: g.next())
            case 3: h.embodiment = ["arm7", "arm6", "", "nope", String(repeating: "x", count: 5000)][pick(5)]
            default: h.episodeID = String(h.episodeID.dropLast(pick(3)))
            }
            messages[m].header = h
        case .chunk(var c):
            guard !c.steps.isEmpty else { return }
            let s = pick(c.steps.count)
            switch pick(6) {
            case 0: if !c.steps[s].state.isEmpty { c.steps[s].state[pick(c.steps[s].state.count)] = floats[pick(floats.count)] }
            case 1: c.steps[s].reward = floats[pick(floats.count)]
            case 2: c.steps[s].timestamp = [-1, .nan, .infinity][pick(3)]
            case 3: c.firstStep = UInt32(truncatingIfNeeded: g.next())
            case 4: if !c.steps[s].frames.isEmpty { c.steps[s].frames[0].removeLast(pick(3) + 1) }
            default: c.steps[s].policyVersion = Int64(bitPattern: g.next())
            }
            messages[m].chunk = c
        case .end(var e):
            e.stepCount = UInt32(truncatingIfNeeded: g.next() % 64)
            messages[m].end = e
        case nil:
            return
        }
    }

    /// Runs CPU-bound `body` on its own thread: on Swift's two-thread cooperative pool it would
    /// starve the gRPC servers of tests running alongside (a learner then misses deadlines).
    static func offThePool(_ body: @escaping () throws -> Void) async throws {
        let thread = WorkerThread(name: "fuzz")
        defer { thread.stop() }
        try await withTaskExecutorPreference(thread) { try body() }
    }

    @Test func mutatedUploadsAreAcceptedWholeOrRefusedWithATypedError() async throws {
        try await Self.offThePool(Self.fuzzUploads)
    }

    static func fuzzUploads() throws {
        let catalog = TaskCatalog([(.arm7, .reach)])
        let limits = IngestLimits()
        let (seconds, seed) = Self.budget
        var g = SplitMix64(seed: seed)
        let deadline = seconds.map { Date().addingTimeInterval($0) }
        let originals = try (0..<4).map { try EpisodeMessages.encode(syntheticEpisode(steps: 9, seed: $0), actorID: "fuzz", stepsPerChunk: 4) }
        var counts = (accepted: 0, refused: [String: Int](), undecodable: 0, cases: 0)
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-\(UUID().uuidString).safetensors")
        defer { try? FileManager.default.removeItem(at: file) }
        while deadline.map({ Date() < $0 }) ?? (counts.cases < 3000) {
            counts.cases += 1
            let original = originals[Int(g.next() % 4)]
            var messages: [Request]
            if g.next() % 2 == 0 {
                var wire = try original.map { Array(try $0.serializedBytes() as [UInt8]) }
                for _ in 0...(g.next() % 3) { Self.mutate(&wire, &g) }
                messages = wire.compactMap { try? Request(serializedBytes: $0) }
                if messages.count < wire.count { counts.undecodable += 1 }
            } else {
                messages = original
                for _ in 0...(g.next() % 2) { Self.poison(&messages, &g) }
            }
            switch try Self.ingest(messages, catalog: catalog, limits: limits) {
            case .accepted(let episode):
                // What is accepted is whole: it validates and survives the store's codec.
                counts.accepted += 1
                try episode.validate()
                try TensorLock.run { try EpisodeCodec.write(episode, to: file) }
                let back = try TensorLock.run { try EpisodeCodec.read(file) }
                // Timestamps are stored in whole microseconds; everything else is exact.
                #expect(back.id == episode.id && back.states == episode.states && back.nativeActions == episode.nativeActions
                        && back.unifiedActions == episode.unifiedActions && back.cameras == episode.cameras
                        && back.sources == episode.sources && back.rewards == episode.rewards && back.dones == episode.dones
                        && back.stepPolicyVersions == episode.stepPolicyVersions && back.success == episode.success)
                #expect(zip(back.timestamps, episode.timestamps).allSatisfy { abs($0 - $1) <= 1e-6 })
            case .refused(let error):
                counts.refused[error.reason, default: 0] += 1
            case .undecodable:
                break
            }
        }
        print("upload fuzz (seed \(seed)): \(counts.cases) cases, \(counts.accepted) accepted, \(counts.undecodable) with undecodable messages, refused \(counts.refused.sorted { $0.key < $1.key })")
        // The mutations reach the validator's checks, not just the protobuf decoder.
        #expect(counts.accepted > 0 && counts.refused.count >= 5)
    }

    /// The fuzzer's findings, kept as regressions: a NUL in a camera name (truncated to
    /// another name by the loader) and a 1e300 s timestamp (crashed the codec's µs conversion).
    @Test func fuzzerFindingsStayFixed() throws {
        let catalog = TaskCatalog([(.arm7, .reach)])
        var named = try EpisodeMessages.encode(syntheticEpisode(steps: 4, seed: 1), actorID: "fuzz")
        named[0].header.cameras[0].name = "scen\u{0}e"
        guard case .refused(let nameError) = try Self.ingest(named, catalog: catalog, limits: IngestLimits()) else {
            Issue.record("a NUL in a camera name was accepted"); return
        }
        #expect(nameError.reason == "bad_header")
        var late = try EpisodeMessages.encode(syntheticEpisode(steps: 4, seed: 1), actorID: "fuzz")
        late[1].chunk.steps[0].timestamp = 1e300
        guard case .refused(let timeError) = try Self.ingest(late, catalog: catalog, limits: IngestLimits()) else {
            Issue.record("a 1e300 s timestamp was accepted"); return
        }
        #expect(timeError.reason == "shape")
        var episode = try syntheticEpisode(steps: 4, seed: 1)
        episode.timestamps[2] = 2e12
        #expect(throws: EpisodeError.self) { try episode.validate() }
    }

    @Test func damagedEpisodeFilesAreReportedCorruptNeverCrashTheLoader() async throws {
        try await Self.offThePool(Self.fuzzFiles)
    }

    static func fuzzFiles() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fuzz-files-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        let original = dir.appendingPathComponent("original.safetensors"), damaged = dir.appendingPathComponent("damaged.safetensors")
        let episode = try syntheticEpisode(steps: 6, seed: 3)
        try TensorLock.run { try EpisodeCodec.write(episode, to: original) }
        let bytes = [UInt8](try Data(contentsOf: original))
        let (seconds, seed) = Self.budget
        var g = SplitMix64(seed: seed &+ 1)
        let deadline = seconds.map { Date().addingTimeInterval($0 / 4) }
        var counts = (cases: 0, corrupt: 0, intact: 0)
        // The safetensors header (length prefix + JSON) is where damage is most dangerous.
        let headerEnd = 8 + Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        while deadline.map({ Date() < $0 }) ?? (counts.cases < 400) {
            counts.cases += 1
            var b = bytes
            switch g.next() % 4 {
            case 0: b = Array(b.prefix(Int(g.next() % UInt64(b.count))))
            case 1: for _ in 0...(g.next() % 4) { b[Int(g.next() % UInt64(min(headerEnd, b.count)))] ^= UInt8(truncatingIfNeeded: 1 << (g.next() % 8)) }
            case 2: b[Int(g.next() % 8)] = UInt8(truncatingIfNeeded: g.next())   // the header length
            default: for _ in 0...(g.next() % 8) { b[Int(g.next() % UInt64(b.count))] = UInt8(truncatingIfNeeded: g.next()) }
            }
            try Data(b).write(to: damaged)
            do {
                let read = try TensorLock.run { try EpisodeCodec.read(damaged) }
                try read.validate()
                counts.intact += 1   // damage inside pixel or value bytes: the store's CRC catches that
            } catch is EpisodeError {
                counts.corrupt += 1
            }
        }
        print("file fuzz (seed \(seed &+ 1)): \(counts.cases) damaged files, \(counts.corrupt) reported corrupt, \(counts.intact) still parse")
        #expect(counts.corrupt > counts.cases / 4)
    }
}
