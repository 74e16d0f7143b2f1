import Foundation

/// What can go wrong exchanging episodes with LeRobot v3 datasets.
public enum LeRobotExchangeError: Error, CustomStringConvertible, Equatable {
    /// No Python interpreter at this path (run `scripts/bootstrap`, or pass one).
    case pythonMissing(String)
    /// The helper script `scripts/lerobot_v3.py` was not found.
    case helperMissing(String)
    /// Python runs but lacks numpy / safetensors / pyarrow / av.
    case pythonPackagesMissing(String)
    /// The helper exited with a non-zero status; `stderr` is what it said.
    case helperFailed(command: String, status: Int32, stderr: String)
    /// The helper finished but its output could not be read.
    case unreadableHelperOutput(String)
    /// The store query selected no episodes.
    case noEpisodes
    /// Episodes differ in state/action width or cameras: one LeRobot dataset has one layout.
    case inconsistentLayout(String)
    /// H.264 with 4:2:0 chroma needs even image sides (use `.yuv444p` for odd ones).
    case oddImageSize(camera: String, height: Int, width: Int)

    public var description: String {
        switch self {
        case .pythonMissing(let p): "no Python at \(p) (run scripts/bootstrap, or pass --python)"
        case .helperMissing(let p): "LeRobot helper not found (\(p)); pass --helper or run from the package directory"
        case .pythonPackagesMissing(let e): "Python lacks a package the LeRobot helper needs (run scripts/bootstrap): \(e)"
        case let .helperFailed(c, s, e): "lerobot_v3.py \(c) failed (status \(s)): \(e)"
        case .unreadableHelperOutput(let m): "unreadable LeRobot helper output: \(m)"
        case .noEpisodes: "no episodes match the query"
        case .inconsistentLayout(let m): "episodes differ in layout (export one embodiment at a time): \(m)"
        case let .oddImageSize(c, h, w): "camera \(c) is \(h)×\(w); H.264 4:2:0 (yuv420p) video needs even sides; use yuv444p"
        }
    }
}

/// How camera colour is stored in the H.264 videos.
public enum LeRobotPixelFormat: String, Sendable, CaseIterable {
    /// Half-resolution colour, what LeRobot records and every player shows (the default).
    case yuv420p
    /// Full-resolution colour: with crf 0 frames come back within the colour conversion's rounding.
    case yuv444p
}

/// Which episodes to export and how.
public struct LeRobotExportOptions: Sendable {
    public var query: EpisodeQuery
    /// Frames per second written to `info.json`; nil: from the median step of the timestamps.
    public var fps: Int?
    /// libx264 constant rate factor (0 best … 51 worst); LeRobot-style keyframe every 2 frames.
    public var crf: Int
    public var pixelFormat: LeRobotPixelFormat
    /// Embodiment specs by name: when the exported embodiment has one whose widths match, its
    /// state and action entry names go into `info.json` (otherwise `state_0`, `action_0`, …).
    public var specs: [String: EmbodimentSpec]

    public init(query: EpisodeQuery = EpisodeQuery(), fps: Int? = nil, crf: Int = 18, pixelFormat: LeRobotPixelFormat = .yuv420p,
                specs: [String: EmbodimentSpec] = [:]) {
        self.query = query; self.fps = fps; self.crf = crf; self.pixelFormat = pixelFormat; self.specs = specs
    }
}

public struct LeRobotExportSummary: Sendable, Equatable, Codable {
    public var episodes: Int
    public var frames: Int
    public var tasks: Int
    public var fps: Int
    public var cameras: [String]
}

public struct LeRobotImportSummary: Sendable, Equatable {
    public var episodes: Int
    public var frames: Int
    public var fps: Int
    public var cameras: [String]
    /// Episodes new to the store; the rest were already stored under the same id.
    public var inserted: Int
    public var alreadyStored: Int
}

/// Episodes ⇄ LeRobot v3.0 datasets (`meta/info.json`, `meta/tasks.parquet`, `meta/episodes/…`,
/// `meta/stats.json`, `data/…parquet`, `videos/observation.images.<camera>/…mp4`).
///
/// Parquet and video go through `scripts/lerobot_v3.py` (pyarrow + av) run with `Process`:
/// export hands it the store's own episode files through a manifest; import has it write
/// episode files in the same format, which are then read and inserted here. Everything but
/// the camera frames comes back exactly; frames pass through H.264 (lossy).
public struct LeRobotExchange: Sendable {
    public static let helperRelativePath = "scripts/lerobot_v3.py"
    public static let manifestFormat = "swiftvla-lerobot-manifest-v1"

    public var python: URL
    public var helper: URL

    public init(python: URL, helper: URL) {
        self.python = python
        self.helper = helper
    }

    /// Finds the helper (and `.venv/bin/python` beside it) in the first package directory found
    /// among `$SWIFTVLA_ROOT`, the current directory, the executable's directory and their parents.
    /// Explicit `python` / `helper` paths win.
    public static func locate(python: URL? = nil, helper: URL? = nil) throws -> LeRobotExchange {
        let env = ProcessInfo.processInfo.environment
        var starts = [URL(fileURLWithPath: FileManager.default.currentDirectoryPath),
                      URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()]
        if let root = env["SWIFTVLA_ROOT"] { starts.insert(URL(fileURLWithPath: root), at: 0) }
        let root = helper == nil || python == nil ? starts.lazy.compactMap(packageRoot(above:)).first : nil
        guard let helperURL = helper ?? root?.appendingPathComponent(helperRelativePath) else {
            throw LeRobotExchangeError.helperMissing("no \(helperRelativePath) above \(starts.map(\.path).joined(separator: ", "))")
        }
        guard let pythonURL = python ?? root?.appendingPathComponent(".venv/bin/python") else {
            throw LeRobotExchangeError.pythonMissing("no package root with .venv found")
        }
        return LeRobotExchange(python: pythonURL, helper: helperURL)
    }

    static func packageRoot(above start: URL) -> URL? {
        var dir = start.standardizedFileURL
        while true {
            if FileManager.default.fileExists(atPath: dir.appendingPathComponent(helperRelativePath).path) { return dir }
            let parent = dir.deletingLastPathComponent().standardizedFileURL
            if dir.path == "/" || parent.path == dir.path { return nil }
            dir = parent
        }
    }

    // MARK: export

    struct ExportManifest: Encodable {
        var format = LeRobotExchange.manifestFormat
        var episodes: [String]
        var fps: Int?
        var crf: Int
        var pix_fmt: String
        var state_names: [String]?
        var action_names: [String]?
        var unified_slot_names: [String]
    }

    struct Layout: Equatable, CustomStringConvertible {
        var stateWidth: Int, actionWidth: Int
        var cameras: [String: [Int]]
        init(_ e: Episode) {
            stateWidth = e.states.columns
            actionWidth = e.nativeActions.columns
            cameras = e.cameras.mapValues { [$0.height, $0.width] }
        }
        var description: String {
            let cams = cameras.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value[0])×\($0.value[1])" }
            return "state \(stateWidth), action \(actionWidth), cameras [\(cams.joined(separator: ", "))]"
        }
    }

    /// Writes the matching episodes of `store` as a LeRobot v3.0 dataset into `out` (which must
    /// not already hold one). Every episode is checksum-verified and layout-checked first.
    @discardableResult
    public func exportDataset(from store: EpisodeStore, to out: URL, options: LeRobotExportOptions = LeRobotExportOptions()) throws -> LeRobotExportSummary {
        let records = try store.records(matching: options.query)
        guard !records.isEmpty else { throw LeRobotExchangeError.noEpisodes }
        var first: (id: UUID, layout: Layout)?
        for record in records {
            let layout = Layout(try store.load(record.uuid))
            if let first, first.layout != layout {
                throw LeRobotExchangeError.inconsistentLayout("\(record.id): \(layout); \(first.id): \(first.layout)")
            }
            first = first ?? (record.uuid, layout)
        }
        let layout = first!.layout
        for (name, size) in layout.cameras.sorted(by: { $0.key < $1.key })
        where options.pixelFormat == .yuv420p && (size[0] % 2 != 0 || size[1] % 2 != 0) {
            throw LeRobotExchangeError.oddImageSize(camera: name, height: size[0], width: size[1])
        }
        let embodiments = Set(records.map(\.embodiment))
        let spec = embodiments.count == 1 ? options.specs[embodiments.first!] : nil
        let named = spec.flatMap { $0.stateDimension == layout.stateWidth && $0.actionDimension == layout.actionWidth ? $0 : nil }
        let manifest = ExportManifest(
            episodes: records.map { store.episodesDirectory.appendingPathComponent($0.file).path },
            fps: options.fps, crf: options.crf, pix_fmt: options.pixelFormat.rawValue, state_names: named?.stateNames, action_names: named?.actionNames,
            unified_slot_names: (0..<UnifiedActionSpace.dimension).map(UnifiedActionSpace.slotName))

        let work = FileManager.default.temporaryDirectory.appendingPathComponent("lerobot-export-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: work, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: work) }
        try JSONEncoder().encode(manifest).write(to: work.appendingPathComponent("manifest.json"))
        let stdout = try runHelper("export", work, out)
        return try decodeSummary(LeRobotExportSummary.self, from: stdout)
    }

    // MARK: import

    struct ImportManifest: Decodable {
        var format: String
        var episodes: [String]
        var frames: Int
        var fps: Int
        var cameras: [String]
    }

    /// Reads a LeRobot v3 dataset and inserts its episodes into `store`. Ids recorded by an
    /// export are kept (re-importing is a no-op); other datasets get ids derived from the
    /// directory and episode index.
    @discardableResult
    public func importDataset(from dataset: URL, into store: EpisodeStore) throws -> LeRobotImportSummary {
        // Decoded frames are raw: keep them next to the store, on its disk.
        let work = store.root.appendingPathComponent(".lerobot-import-\(UUID().uuidString)")
        defer { try? FileManager.default.removeItem(at: work) }
        _ = try runHelper("import", dataset, work)
        let manifest: ImportManifest
        do {
            manifest = try JSONDecoder().decode(ImportManifest.self, from: Data(contentsOf: work.appendingPathComponent("manifest.json")))
        } catch {
            throw LeRobotExchangeError.unreadableHelperOutput("manifest.json: \(error)")
        }
        guard manifest.format == Self.manifestFormat else {
            throw LeRobotExchangeError.unreadableHelperOutput("manifest format \(manifest.format)")
        }
        var inserted = 0
        for file in manifest.episodes {
            let episode = try EpisodeCodec.read(work.appendingPathComponent(file))
            if try store.insert(episode) { inserted += 1 }
        }
        return LeRobotImportSummary(episodes: manifest.episodes.count, frames: manifest.frames, fps: manifest.fps,
                                    cameras: manifest.cameras, inserted: inserted, alreadyStored: manifest.episodes.count - inserted)
    }

    // MARK: running the helper

    /// Runs `python helper command a b`, returning its stdout; output goes through files so a
    /// chatty child never blocks on a full pipe.
    func runHelper(_ command: String, _ a: URL, _ b: URL) throws -> String {
        let fm = FileManager.default
        guard fm.isExecutableFile(atPath: python.path) else { throw LeRobotExchangeError.pythonMissing(python.path) }
        guard fm.fileExists(atPath: helper.path) else { throw LeRobotExchangeError.helperMissing(helper.path) }
        let logs = fm.temporaryDirectory.appendingPathComponent("lerobot-helper-\(UUID().uuidString)")
        try fm.createDirectory(at: logs, withIntermediateDirectories: true)
        defer { try? fm.removeItem(at: logs) }
        let outURL = logs.appendingPathComponent("stdout"), errURL = logs.appendingPathComponent("stderr")
        for url in [outURL, errURL] { try Data().write(to: url) }
        let outHandle = try FileHandle(forWritingTo: outURL), errHandle = try FileHandle(forWritingTo: errURL)
        let process = Process()
        process.executableURL = python
        process.arguments = [helper.path, command, a.path, b.path]
        var environment = ProcessInfo.processInfo.environment
        environment["PYTHONDONTWRITEBYTECODE"] = "1"
        process.environment = environment
        process.standardOutput = outHandle
        process.standardError = errHandle
        process.standardInput = FileHandle.nullDevice
        do { try process.run() } catch { throw LeRobotExchangeError.pythonMissing("\(python.path): \(error)") }
        process.waitUntilExit()
        try outHandle.close()
        try errHandle.close()
        let stdout = String(decoding: try Data(contentsOf: outURL), as: UTF8.self)
        let stderr = String(decoding: try Data(contentsOf: errURL), as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines)
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            if stderr.contains("ModuleNotFoundError") || stderr.contains("ImportError") {
                throw LeRobotExchangeError.pythonPackagesMissing(stderr.split(separator: "\n").last.map(String.init) ?? stderr)
            }
            throw LeRobotExchangeError.helperFailed(command: command, status: process.terminationStatus, stderr: stderr)
        }
        return stdout
    }

    func decodeSummary<T: Decodable>(_ type: T.Type, from stdout: String) throws -> T {
        guard let line = stdout.split(separator: "\n").last(where: { $0.hasPrefix("{") }) else {
            throw LeRobotExchangeError.unreadableHelperOutput("no JSON summary in \(stdout.prefix(200).debugDescription)")
        }
        do { return try JSONDecoder().decode(T.self, from: Data(line.utf8)) } catch {
            throw LeRobotExchangeError.unreadableHelperOutput("\(error)")
        }
    }
}
