import CHDF5
import Foundation

/// Failures writing HDF5 files.
public enum HDF5Error: Error, CustomStringConvertible, Equatable {
    /// The HDF5 library refused `operation`; `message` is its innermost error.
    case library(operation: String, message: String)
    case noEpisodes

    public var description: String {
        switch self {
        case let .library(op, m): "HDF5 \(op) failed: \(m)"
        case .noEpisodes: "no episodes match the query"
        }
    }
}

/// An HDF5 file open for writing (through `CHDF5`, Debian's libhdf5); closed on `close()` or deinit.
final class HDF5Writer {
    private(set) var file: Int64
    private var groups: [Int64] = []

    init(creating url: URL) throws {
        file = chdf5_file_create(url.path)
        if file < 0 { throw Self.error("create \(url.path)") }
    }

    deinit { try? close() }

    static func error(_ operation: String) -> HDF5Error {
        .library(operation: operation, message: String(cString: chdf5_last_error()))
    }

    func group(_ name: String, in parent: Int64) throws -> Int64 {
        let id = chdf5_group_create(parent, name)
        if id < 0 { throw Self.error("group \(name)") }
        groups.append(id)
        return id
    }

    func dataset<T>(_ name: String, in parent: Int64, type: chdf5_type, shape: [Int], values: [T], gzip: Int = 0) throws {
        precondition(values.count == shape.reduce(1, *), "\(name): \(values.count) values for shape \(shape)")
        let dims = shape.map(UInt64.init)
        let status = values.withUnsafeBytes { bytes in
            chdf5_dataset_write(parent, name, type, Int32(dims.count), dims, bytes.baseAddress, Int32(gzip))
        }
        if status < 0 { throw Self.error("dataset \(name)") }
    }

    func attribute<T>(_ name: String, of object: Int64, type: chdf5_type, _ value: T) throws {
        let status = withUnsafeBytes(of: value) { chdf5_attribute_write(object, name, type, 0, $0.baseAddress) }
        if status < 0 { throw Self.error("attribute \(name)") }
    }

    func attribute<T>(_ name: String, of object: Int64, type: chdf5_type, array values: [T]) throws {
        let status = values.withUnsafeBytes { chdf5_attribute_write(object, name, type, UInt64(values.count), $0.baseAddress) }
        if status < 0 { throw Self.error("attribute \(name)") }
    }

    func attribute(_ name: String, of object: Int64, string: String) throws {
        if chdf5_attribute_write_string(object, name, string) < 0 { throw Self.error("attribute \(name)") }
    }

    /// Closes a group early (a file of many demos would otherwise hold every handle open).
    func closeGroup(_ id: Int64) throws {
        guard let i = groups.firstIndex(of: id) else { return }
        groups.remove(at: i)
        if chdf5_group_close(id) < 0 { throw Self.error("close group") }
    }

    func close() throws {
        for g in groups.reversed() { _ = chdf5_group_close(g) }
        groups = []
        guard file >= 0 else { return }
        let status = chdf5_file_close(file)
        file = -1
        if status < 0 { throw Self.error("close") }
    }
}

/// Episodes → a robomimic / LIBERO-style HDF5 file, written from Swift through libhdf5.
///
/// ```
/// data                  attrs total (steps), env_args (JSON), format
///   demo_<i>            attrs num_samples, id, embodiment, task, instruction, success,
///                       policy_version, created_at, seed and speed (if any)
///     actions           [T, A] float32  native actions
///     rewards, dones    [T] float32, [T] uint8
///     obs/state         [T, S] float32  native proprioceptive state
///     obs/<camera>_image [T, H, W, 3] uint8 (gzip)
///     unified_actions   [T, 64] float32, action_mask [64] float32
///     sources           [T] uint8 (0 policy, 1 operator, 2 demo), timestamps_us [T] int64
///     policy_versions   [T] int64 (only when the episode has per-step versions)
/// ```
/// Everything is stored exactly (frames included); `read(from:)` reverses it.
public enum RobomimicHDF5 {
    public static let format = "swiftvla-robomimic-v1"

    public struct Summary: Sendable, Equatable {
        public var episodes: Int
        public var steps: Int
    }

    /// Writes the store's matching episodes (checksum-verified, one in memory at a time).
    @discardableResult
    public static func export(from store: EpisodeStore, query: EpisodeQuery = EpisodeQuery(), to url: URL, gzipLevel: Int = 4) throws -> Summary {
        let records = try store.records(matching: query)
        guard !records.isEmpty else { throw HDF5Error.noEpisodes }
        var index = 0
        return try write(to: url, gzipLevel: gzipLevel) {
            guard index < records.count else { return nil }
            defer { index += 1 }
            return try store.load(records[index].uuid)
        }
    }

    /// Writes `episodes` in order as demo_0, demo_1, …
    @discardableResult
    public static func write(_ episodes: [Episode], to url: URL, gzipLevel: Int = 4) throws -> Summary {
        guard !episodes.isEmpty else { throw HDF5Error.noEpisodes }
        var index = 0
        return try write(to: url, gzipLevel: gzipLevel) {
            guard index < episodes.count else { return nil }
            defer { index += 1 }
            return episodes[index]
        }
    }

    static func write(to url: URL, gzipLevel: Int, next: () throws -> Episode?) throws -> Summary {
        // Written under a temporary name and renamed: a failed export leaves no half file.
        let partial = url.deletingLastPathComponent().appendingPathComponent(".\(url.lastPathComponent).\(UUID().uuidString).tmp")
        defer { try? FileManager.default.removeItem(at: partial) }
        let writer = try HDF5Writer(creating: partial)
        let data = try writer.group("data", in: writer.file)
        var count = 0, steps = 0
        var embodiments = Set<String>()
        while let episode = try next() {
            try episode.validate()
            try writeDemo(episode, name: "demo_\(count)", in: data, writer: writer, gzip: gzipLevel)
            count += 1
            steps += episode.stepCount
            embodiments.insert(episode.embodiment)
        }
        try writer.attribute("total", of: data, type: CHDF5_I64, Int64(steps))
        // robomimic reads env_args as JSON; these episodes come from no robomimic environment.
        let envArgs: [String: Any] = ["env_name": "swiftvla", "type": 0,
                                      "env_kwargs": ["embodiments": embodiments.sorted()]]
        let json = String(decoding: try JSONSerialization.data(withJSONObject: envArgs, options: [.sortedKeys]), as: UTF8.self)
        try writer.attribute("env_args", of: data, string: json)
        try writer.attribute("format", of: data, string: format)
        try writer.close()
        if FileManager.default.fileExists(atPath: url.path) { try FileManager.default.removeItem(at: url) }
        try FileManager.default.moveItem(at: partial, to: url)
        return Summary(episodes: count, steps: steps)
    }

    static func writeDemo(_ e: Episode, name: String, in data: Int64, writer: HDF5Writer, gzip: Int) throws {
        let t = e.stepCount
        let demo = try writer.group(name, in: data)
        try writer.attribute("num_samples", of: demo, type: CHDF5_I64, Int64(t))
        try writer.attribute("id", of: demo, string: e.id.uuidString)
        try writer.attribute("embodiment", of: demo, string: e.embodiment)
        try writer.attribute("task", of: demo, string: e.task)
        try writer.attribute("instruction", of: demo, string: e.instruction)
        try writer.attribute("success", of: demo, type: CHDF5_U8, UInt8(e.success ? 1 : 0))
        try writer.attribute("policy_version", of: demo, type: CHDF5_I64, Int64(e.policyVersion))
        try writer.attribute("created_at", of: demo, type: CHDF5_F64, e.createdAt.timeIntervalSinceReferenceDate)
        if let seed = e.seed { try writer.attribute("seed", of: demo, type: CHDF5_U64, seed) }
        if let speed = e.speed { try writer.attribute("speed", of: demo, type: CHDF5_F32, speed) }
        if let versions = e.stepPolicyVersions {
            try writer.dataset("policy_versions", in: demo, type: CHDF5_I64, shape: [t], values: versions.map(Int64.init))
        }
        try writer.dataset("actions", in: demo, type: CHDF5_F32, shape: [t, e.nativeActions.columns], values: e.nativeActions.values)
        try writer.dataset("rewards", in: demo, type: CHDF5_F32, shape: [t], values: e.rewards)
        try writer.dataset("dones", in: demo, type: CHDF5_U8, shape: [t], values: e.dones.map { UInt8($0 ? 1 : 0) })
        try writer.dataset("unified_actions", in: demo, type: CHDF5_F32, shape: [t, UnifiedActionSpace.dimension], values: e.unifiedActions.values)
        try writer.dataset("action_mask", in: demo, type: CHDF5_F32, shape: [UnifiedActionSpace.dimension], values: e.actionMask)
        try writer.dataset("sources", in: demo, type: CHDF5_U8, shape: [t], values: e.sources.map(\.rawValue))
        try writer.dataset("timestamps_us", in: demo, type: CHDF5_I64, shape: [t], values: e.timestamps.map { Int64(($0 * 1e6).rounded()) })
        let obs = try writer.group("obs", in: demo)
        try writer.dataset("state", in: obs, type: CHDF5_F32, shape: [t, e.states.columns], values: e.states.values)
        for (camera, frames) in e.cameras.sorted(by: { $0.key < $1.key }) {
            try writer.dataset("\(camera)_image", in: obs, type: CHDF5_U8, shape: [t, frames.height, frames.width, 3],
                               values: frames.pixels, gzip: gzip)
        }
        try writer.closeGroup(obs)
        try writer.closeGroup(demo)
    }
}

/// An HDF5 file open for reading; closed on deinit.
final class HDF5Reader {
    let file: Int64
    private var groups: [Int64] = []

    init(opening url: URL) throws {
        file = chdf5_file_open(url.path)
        if file < 0 { throw HDF5Writer.error("open \(url.path)") }
    }

    deinit {
        for g in groups.reversed() { _ = chdf5_group_close(g) }
        _ = chdf5_file_close(file)
    }

    func group(_ name: String, in parent: Int64) throws -> Int64 {
        let id = chdf5_group_open(parent, name)
        if id < 0 { throw HDF5Writer.error("open group \(name)") }
        groups.append(id)
        return id
    }

    func closeGroup(_ id: Int64) {
        guard let i = groups.firstIndex(of: id) else { return }
        groups.remove(at: i)
        _ = chdf5_group_close(id)
    }

    func exists(_ name: String, in parent: Int64) -> Bool { chdf5_exists(parent, name) > 0 }

    func members(of group: Int64) throws -> [String] {
        var count: UInt64 = 0
        if chdf5_member_count(group, &count) < 0 { throw HDF5Writer.error("list group") }
        return try (0..<count).map { i in
            var buffer = [CChar](repeating: 0, count: 1024)
            if chdf5_member_name(group, i, &buffer, UInt64(buffer.count)) < 0 { throw HDF5Writer.error("member \(i)") }
            return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
        }
    }

    func isGroup(_ name: String, in parent: Int64) throws -> Bool {
        let r = chdf5_is_group(parent, name)
        if r < 0 { throw HDF5Writer.error("inspect \(name)") }
        return r == 1
    }

    func shape(_ name: String, in parent: Int64) throws -> [Int] {
        var rank: Int32 = 0
        var dims = [UInt64](repeating: 0, count: 8)
        if chdf5_dataset_shape(parent, name, &rank, &dims) < 0 { throw HDF5Writer.error("shape of \(name)") }
        return dims.prefix(Int(rank)).map { Int($0) }
    }

    /// The whole dataset converted to `type`, with its shape.
    func read<T>(_ name: String, in parent: Int64, type: chdf5_type, zero: T) throws -> (shape: [Int], values: [T]) {
        let shape = try shape(name, in: parent)
        var values = [T](repeating: zero, count: shape.reduce(1, *))
        let status = values.withUnsafeMutableBytes { chdf5_dataset_read(parent, name, type, $0.baseAddress) }
        if status < 0 { throw HDF5Writer.error("read \(name)") }
        return (shape, values)
    }

    func attribute<T>(_ name: String, of object: Int64, type: chdf5_type, zero: T) throws -> T? {
        guard chdf5_attribute_exists(object, name) > 0 else { return nil }
        var value = zero
        if withUnsafeMutableBytes(of: &value, { chdf5_attribute_read(object, name, type, $0.baseAddress) }) < 0 {
            throw HDF5Writer.error("attribute \(name)")
        }
        return value
    }

    func string(_ name: String, of object: Int64) throws -> String? {
        guard chdf5_attribute_exists(object, name) > 0 else { return nil }
        var buffer = [CChar](repeating: 0, count: 1 << 20)
        if chdf5_attribute_read_string(object, name, &buffer, UInt64(buffer.count)) < 0 { throw HDF5Writer.error("attribute \(name)") }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }
}

extension RobomimicHDF5 {
    /// Control period assumed when a file has no `timestamps_us` (robosuite's default 20 Hz).
    public static let defaultStepSeconds = 0.05

    /// Reads every `data/demo_<i>` (in index order) as episodes. Files this type wrote come back
    /// exactly; other robomimic / LIBERO files get: state = their low-dimensional `obs/*` arrays
    /// side by side (names sorted), cameras = `obs/*_image` / `*_rgb` (uint8 [T, H, W, 3]),
    /// instruction from `problem_info.language_instruction` (LIBERO), success true (demonstrations),
    /// sources `demo`, steps 0.05 s apart, unified actions all masked off, ids derived from the
    /// file name and demo.
    public static func read(from url: URL) throws -> [Episode] {
        let reader = try HDF5Reader(opening: url)
        let data = try reader.group("data", in: reader.file)
        let problem = try reader.string("problem_info", of: data)
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
        let envName = try reader.string("env_args", of: data)
            .flatMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }?["env_name"] as? String
        let demos = try reader.members(of: data).filter { $0.hasPrefix("demo_") }
            .sorted { (Int($0.dropFirst(5)) ?? Int.max, $0) < (Int($1.dropFirst(5)) ?? Int.max, $1) }
        return try demos.map { name in
            let demo = try reader.group(name, in: data)
            defer { reader.closeGroup(demo) }
            var episode = try readDemo(demo, reader: reader, fileName: url.lastPathComponent, demoName: name)
            if try reader.string("embodiment", of: demo) == nil, let envName { episode.embodiment = envName == "swiftvla" ? "robomimic" : envName }
            if try reader.string("instruction", of: demo) == nil, let text = problem?["language_instruction"] as? String {
                episode.instruction = text
            }
            try episode.validate()
            return episode
        }
    }

    /// Reads a file's episodes into `store`; returns (episodes read, newly inserted).
    @discardableResult
    public static func importFile(_ url: URL, into store: EpisodeStore) throws -> (episodes: Int, inserted: Int) {
        let episodes = try read(from: url)
        var inserted = 0
        for e in episodes where try store.insert(e) { inserted += 1 }
        return (episodes.count, inserted)
    }

    static func readDemo(_ demo: Int64, reader: HDF5Reader, fileName: String, demoName: String) throws -> Episode {
        func matrix(_ name: String, in group: Int64) throws -> StepMatrix {
            let (shape, values) = try reader.read(name, in: group, type: CHDF5_F32, zero: Float(0))
            let rows = shape.first ?? 0
            return try StepMatrix(rows: rows, columns: rows == 0 ? 0 : values.count / rows, values: values)
        }
        let actions = try matrix("actions", in: demo)
        let t = actions.rows
        let obs = try reader.group("obs", in: demo)
        defer { reader.closeGroup(obs) }
        var cameras: [String: CameraFrames] = [:]
        var lowDimensional: [StepMatrix] = []
        var state: StepMatrix?
        for key in try reader.members(of: obs) where !(try reader.isGroup(key, in: obs)) {
            let shape = try reader.shape(key, in: obs)
            if shape.count == 4, shape[3] == 3 {
                var camera = key
                for suffix in ["_image", "_rgb"] where camera.hasSuffix(suffix) { camera = String(camera.dropLast(suffix.count)) }
                if !Episode.isStorableCameraName(camera) {
                    camera = String(camera.map { $0.isASCII && ($0.isLetter || $0.isNumber || "_-.".contains($0)) ? $0 : "_" }.prefix(64))
                }
                let pixels = try reader.read(key, in: obs, type: CHDF5_U8, zero: UInt8(0)).values
                cameras[camera] = CameraFrames(height: shape[1], width: shape[2], pixels: pixels)
            } else if shape.count <= 2, shape.first == t {
                let m = try matrix(key, in: obs)
                if key == "state" { state = m } else { lowDimensional.append(m) }
            }
        }
        let states = try state ?? {
            var values = [Float](); values.reserveCapacity(t * lowDimensional.reduce(0) { $0 + $1.columns })
            for row in 0..<t { for m in lowDimensional { values += m.row(row) } }
            return try StepMatrix(rows: t, columns: lowDimensional.reduce(0) { $0 + $1.columns }, values: values)
        }()
        func vector<T>(_ name: String, type: chdf5_type, zero: T) throws -> [T]? {
            reader.exists(name, in: demo) ? try reader.read(name, in: demo, type: type, zero: zero).values : nil
        }
        let unified = try reader.exists("unified_actions", in: demo) ? matrix("unified_actions", in: demo)
            : StepMatrix(rows: t, columns: UnifiedActionSpace.dimension, values: [Float](repeating: 0, count: t * UnifiedActionSpace.dimension))
        let sources = try (vector("sources", type: CHDF5_U8, zero: UInt8(0)) ?? [UInt8](repeating: StepSource.demo.rawValue, count: t))
            .map { raw -> StepSource in
                guard let s = StepSource(rawValue: raw) else { throw HDF5Error.library(operation: "read sources", message: "unknown source \(raw)") }
                return s
            }
        let timestamps = try vector("timestamps_us", type: CHDF5_I64, zero: Int64(0))?.map { Double($0) / 1e6 }
            ?? (0..<t).map { Double($0) * defaultStepSeconds }
        let id = try reader.string("id", of: demo).flatMap(UUID.init(uuidString:)) ?? derivedID("\(fileName)#\(demoName)")
        let createdAt = try reader.attribute("created_at", of: demo, type: CHDF5_F64, zero: 0.0)
            .map(Date.init(timeIntervalSinceReferenceDate:)) ?? Date()
        return Episode(
            id: id, embodiment: try reader.string("embodiment", of: demo) ?? "robomimic",
            task: try reader.string("task", of: demo) ?? "robomimic", instruction: try reader.string("instruction", of: demo) ?? "",
            cameras: cameras, states: states, nativeActions: actions, unifiedActions: unified,
            actionMask: try vector("action_mask", type: CHDF5_F32, zero: Float(0)) ?? [Float](repeating: 0, count: UnifiedActionSpace.dimension),
            rewards: try vector("rewards", type: CHDF5_F32, zero: Float(0)) ?? [Float](repeating: 0, count: t),
            dones: try (vector("dones", type: CHDF5_F64, zero: 0.0)?.map { $0 != 0 }) ?? (0..<t).map { $0 == t - 1 },
            sources: sources, timestamps: timestamps,
            success: try reader.attribute("success", of: demo, type: CHDF5_U8, zero: UInt8(1)).map { $0 != 0 } ?? true,
            policyVersion: Int(try reader.attribute("policy_version", of: demo, type: CHDF5_I64, zero: Int64(0)) ?? 0),
            seed: try reader.attribute("seed", of: demo, type: CHDF5_U64, zero: UInt64(0)),
            speed: try reader.attribute("speed", of: demo, type: CHDF5_F32, zero: Float(0)),
            createdAt: createdAt,
            stepPolicyVersions: try vector("policy_versions", type: CHDF5_I64, zero: Int64(0))?.map { Int($0) })
    }

    /// A stable id for a demo without one (FNV-1a of the text, twice, as a version-8 UUID).
    static func derivedID(_ text: String) -> UUID {
        func fnv(_ bytes: [UInt8], seed: UInt64) -> UInt64 {
            bytes.reduce(seed) { ($0 ^ UInt64($1)) &* 0x100_0000_01b3 }
        }
        let bytes = Array(text.utf8)
        let a = fnv(bytes, seed: 0xcbf2_9ce4_8422_2325), b = fnv(bytes.reversed(), seed: 0x8422_2325_cbf2_9ce4)
        var raw = (0..<8).map { UInt8(truncatingIfNeeded: a >> (8 * $0)) } + (0..<8).map { UInt8(truncatingIfNeeded: b >> (8 * $0)) }
        raw[6] = (raw[6] & 0x0f) | 0x80
        raw[8] = (raw[8] & 0x3f) | 0x80
        return UUID(uuid: (raw[0], raw[1], raw[2], raw[3], raw[4], raw[5], raw[6], raw[7],
                           raw[8], raw[9], raw[10], raw[11], raw[12], raw[13], raw[14], raw[15]))
    }
}
