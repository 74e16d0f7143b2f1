import ArgumentParser
import Foundation
import RobotData
import RobotSim

/// `vla data`: DataQA (score, report, filter, calibrate), optical-flow speed alignment and
/// LeRobot v3 exchange.
struct DataCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "data",
        abstract: "Dataset quality (DataQA), optical-flow speed alignment, LeRobot v3 export/import, robomimic HDF5 export/import.",
        subcommands: [DataQACommand.self, DataFilterCommand.self, DataAlignCommand.self, DataCalibrateCommand.self,
                      DataExportLeRobotCommand.self, DataImportLeRobotCommand.self, DataExportHDF5Command.self,
                      DataImportHDF5Command.self, DataStatsCommand.self]
    )
}

/// Opens an existing `EpisodeStore` directory (never creates one from a mistyped path).
func openStore(_ path: String) throws -> EpisodeStore {
    let url = URL(fileURLWithPath: path)
    guard FileManager.default.fileExists(atPath: url.appendingPathComponent("index.sqlite").path) else {
        throw ValidationError("\(path) is not an episode store (no index.sqlite)")
    }
    return try EpisodeStore(root: url)
}

/// Loads every readable episode of an `EpisodeStore` directory, reporting damaged ones.
func loadDataset(_ path: String) throws -> (store: EpisodeStore, episodes: [Episode]) {
    let store = try openStore(path)
    let (episodes, skipped) = try store.loadAll()
    for e in skipped { print("skipped: \(e)") }
    return (store, episodes)
}

func loadThresholds(_ path: String?) throws -> QualityThresholds {
    guard let path else { return QualityThresholds() }
    return try QualityThresholds.load(from: URL(fileURLWithPath: path))
}

/// `vla data stats STORE`: per-embodiment, per-slot normalization statistics next to the dataset.
struct DataStatsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stats", abstract: "Write the store's normalization statistics (mean/std, 1st/99th percentiles per embodiment and slot) to <store>/normalization.json.")

    @Argument(help: "Episode store directory.") var dataset: String

    func run() throws {
        let (store, episodes) = try loadDataset(dataset)
        let stats = NormalizationStats(episodes: episodes)
        let file = NormalizationStats.url(inStore: store.root)
        try stats.write(to: file)
        for (name, s) in stats.actions.sorted(by: { $0.key < $1.key }) {
            print("\(name): actions over \(s.mean.count) slots, states over \(stats.states[name]?.mean.count ?? 0) slots")
        }
        print("\(episodes.count) episodes → \(file.path)")
    }
}

struct DataQACommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "qa", abstract: "Score every episode; write quality.csv, quality.json and report.html.")

    @Argument(help: "Episode store directory.") var dataset: String
    @Option(help: "Output directory.") var out: String
    @Option(help: "Thresholds file (flat YAML key: value, or .json); defaults if omitted.") var thresholds: String?
    @Flag(help: "Do not write quality scores into the store's index.") var noStoreScores = false

    func run() throws {
        let (store, episodes) = try loadDataset(dataset)
        let t = try loadThresholds(thresholds)
        let table = DataQA(thresholds: t).assess(episodes)
        if !noStoreScores { for q in table { try store.setQualityScore(q.score, for: q.id) } }
        let report = QAReport(dataset: dataset, thresholds: t, table: table)
        let worst = Set(report.worst.map(\.id))
        try report.write(to: URL(fileURLWithPath: out),
                         episodes: Dictionary(uniqueKeysWithValues: episodes.filter { worst.contains($0.id) }.map { ($0.id, $0) }))
        let kept = table.filter { $0.failures.isEmpty }.count
        print("\(table.count) episodes, \(kept) pass every threshold; wrote \(out)/quality.csv, quality.json, report.html")
    }
}

struct DataFilterCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "filter", abstract: "Apply thresholds; write a filtered view (episode ids + thresholds), no frames copied.")

    @Argument(help: "Episode store directory.") var dataset: String
    @Option(help: "Thresholds file (flat YAML key: value, or .json).") var thresholds: String
    @Option(help: "Output view file (JSON).") var out: String

    func run() throws {
        let (_, episodes) = try loadDataset(dataset)
        let t = try loadThresholds(thresholds)
        let view = FilteredView(dataset: dataset, thresholds: t, table: DataQA(thresholds: t).assess(episodes))
        try view.write(to: URL(fileURLWithPath: out))
        print("kept \(view.episodeIDs.count) of \(episodes.count) episodes; wrote \(out)")
    }
}

struct DataAlignCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "align", abstract: "Measure optical-flow speed and resample episodes to a common speed into a new store.")

    @Argument(help: "Episode store directory.") var dataset: String
    @Option(help: "Output episode store for the aligned episodes.") var out: String
    @Option(help: "Target speed (pixels/step); default: the median speed of each embodiment.") var target: Float?
    @Option(help: "Camera that defines speed (default: mean over cameras).") var camera: String?
    @Option(help: "Frame pairs measured per episode (default: all).") var maxPairs: Int?

    func run() throws {
        let (_, episodes) = try loadDataset(dataset)
        let aligner = SpeedAlignment(camera: camera, maxPairs: maxPairs)
        let measured = try episodes.map { try aligner.measured($0) }
        let speeds = try SpeedAlignment.groupSpeeds(measured, by: \.embodiment)
        let output = try EpisodeStore(root: URL(fileURLWithPath: out))
        var rows: [[String: Any]] = []
        for e in measured {
            let goal = target ?? speeds[e.embodiment]!
            let (aligned, original, step) = try aligner.align(e, to: goal)
            try output.insert(aligned)
            rows.append(["id": e.id.uuidString, "embodiment": e.embodiment, "original_speed": Double(original),
                         "target": Double(goal), "aligned_speed": Double(aligned.speed ?? 0), "step": step,
                         "original_steps": e.stepCount, "aligned_steps": aligned.stepCount])
        }
        let report: [String: Any] = ["dataset": dataset, "embodiment_speeds": speeds.mapValues(Double.init), "episodes": rows]
        let data = try JSONSerialization.data(withJSONObject: report, options: [.prettyPrinted, .sortedKeys])
        try data.write(to: URL(fileURLWithPath: out).appendingPathComponent("alignment.json"), options: .atomic)
        for (e, v) in speeds.sorted(by: { $0.key < $1.key }) { print("\(e): median speed \(String(format: "%.3f", v)) px/step") }
        print("aligned \(rows.count) episodes into \(out) (report: \(out)/alignment.json)")
    }
}

struct DataCalibrateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "calibrate",
        abstract: "Record clean and imperfect-operator sim episodes, print their metrics and write calibrated thresholds.")

    @Option(help: "Seeds per (task, operator).") var episodes: Int = 4
    @Option(help: "Tasks (comma separated).") var tasks: String = "pick_place,push"
    @Option(help: "Embodiment.") var embodiment: String = "arm7"
    @Option(help: "Image side in pixels.") var size: Int = 48
    @Option(help: "Output thresholds file (flat YAML).") var out: String
    @Option(help: "Also write both datasets into this episode store.") var store: String?

    func run() throws {
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        let kinds = try tasks.split(separator: ",").map { name -> TaskKind in
            guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
            return t
        }
        let output = try store.map { try EpisodeStore(root: URL(fileURLWithPath: $0)) }
        var clean: [Episode] = [], imperfect: [Episode] = []
        for t in kinds {
            for seed in 0..<UInt64(episodes) {
                for sloppy in [false, true] {
                    let env = try RobotEnvironment(embodiment: e, task: t, seed: seed, config: EnvironmentConfig(imageWidth: size, imageHeight: size))
                    let recorder = EpisodeRecorder(environment: env)
                    try SimRunner.runExpert(env, profile: sloppy ? .imperfect(seed: seed) : .clean, recorder: recorder)
                    let episode = try recorder.episode()
                    try output?.insert(episode)
                    if sloppy { imperfect.append(episode) } else { clean.append(episode) }
                }
            }
        }
        let table = DataQA().assess(clean + imperfect)
        let cleanQ = Array(table.prefix(clean.count)), sloppyQ = Array(table.suffix(imperfect.count))
        let thresholds = QualityThresholds.calibrated(clean: cleanQ, imperfect: sloppyQ)
        func describe(_ name: String, _ key: (EpisodeQuality) -> Double) {
            let c = cleanQ.map(key), s = sloppyQ.map(key)
            print(String(format: "| %@ | %.4g | %.4g | %.4g | %.4g | %.4g | %.4g |", name, c.min()!, DataQA.median(c), c.max()!,
                         s.min()!, DataQA.median(s), s.max()!))
        }
        print("| metric | clean min | clean median | clean max | imperfect min | imperfect median | imperfect max |")
        print("|---|---:|---:|---:|---:|---:|---:|")
        describe("tremor") { $0.tremor }
        describe("sharpness") { $0.sharpness }
        describe("stateDiversity") { $0.stateDiversity }
        describe("visualDiversity") { $0.visualDiversity }
        describe("idleFraction") { $0.idleFraction }
        describe("durationZ") { $0.durationZ }
        describe("frozenFraction") { $0.frozenFraction }
        describe("gripperChatter") { Double($0.gripperChatter) }
        describe("steps") { Double($0.steps) }
        let rescored = (cleanQ + sloppyQ).map { q -> (Double, Bool) in (thresholds.score(q), thresholds.failures(q).isEmpty) }
        let cleanKept = rescored.prefix(clean.count).filter(\.1).count, sloppyKept = rescored.suffix(imperfect.count).filter(\.1).count
        print("with these thresholds: clean kept \(cleanKept)/\(clean.count), imperfect kept \(sloppyKept)/\(imperfect.count)")
        try Data(thresholds.yaml.utf8).write(to: URL(fileURLWithPath: out), options: .atomic)
        print(thresholds.yaml)
    }
}

struct DataExportLeRobotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-lerobot", abstract: "Write a store's episodes as a LeRobot v3.0 dataset (parquet + mp4 + meta JSON).")

    @Option(help: "Episode store directory.") var store: String
    @Option(help: "Output directory for the LeRobot dataset.") var out: String
    @Option(help: "Only this embodiment (a dataset has one state/action layout).") var embodiment: String?
    @Option(help: "Only this task.") var task: String?
    @Option(help: "Frames per second (default: from the timestamps).") var fps: Int?
    @Option(help: "H.264 constant rate factor (lower: better frames, bigger files).") var crf: Int = 18
    @Option(help: "Video colour: yuv420p (LeRobot's, plays anywhere) or yuv444p (full colour; with --crf 0 near lossless).")
    var pixFmt: String = LeRobotPixelFormat.yuv420p.rawValue
    @Option(help: "Python with pyarrow and av (default: .venv/bin/python of the package).") var python: String?
    @Option(help: "Path to scripts/lerobot_v3.py (default: found from the current directory).") var helper: String?

    func run() throws {
        let episodeStore = try openStore(store)
        let exchange = try LeRobotExchange.locate(python: python.map(URL.init(fileURLWithPath:)), helper: helper.map(URL.init(fileURLWithPath:)))
        let specs = Dictionary(uniqueKeysWithValues: EmbodimentKind.allCases.map { ($0.rawValue, $0.spec) })
        guard let pixelFormat = LeRobotPixelFormat(rawValue: pixFmt) else {
            throw ValidationError("--pix-fmt must be one of \(LeRobotPixelFormat.allCases.map(\.rawValue).joined(separator: ", "))")
        }
        let options = LeRobotExportOptions(query: EpisodeQuery(task: task, embodiment: embodiment), fps: fps, crf: crf,
                                           pixelFormat: pixelFormat, specs: specs)
        let summary = try exchange.exportDataset(from: episodeStore, to: URL(fileURLWithPath: out), options: options)
        print("exported \(summary.episodes) episodes, \(summary.frames) frames, \(summary.tasks) tasks at \(summary.fps) fps, cameras [\(summary.cameras.joined(separator: ", "))] into \(out)")
    }
}

struct DataImportLeRobotCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-lerobot", abstract: "Read a LeRobot v3 dataset into an episode store.")

    @Option(name: .customLong("from"), help: "LeRobot v3 dataset directory (meta/info.json inside).") var source: String
    @Option(help: "Episode store directory (created if missing).") var store: String
    @Option(help: "Python with pyarrow and av (default: .venv/bin/python of the package).") var python: String?
    @Option(help: "Path to scripts/lerobot_v3.py (default: found from the current directory).") var helper: String?

    func run() throws {
        let exchange = try LeRobotExchange.locate(python: python.map(URL.init(fileURLWithPath:)), helper: helper.map(URL.init(fileURLWithPath:)))
        let summary = try exchange.importDataset(from: URL(fileURLWithPath: source), into: try EpisodeStore(root: URL(fileURLWithPath: store)))
        print("imported \(summary.episodes) episodes (\(summary.inserted) new, \(summary.alreadyStored) already stored), \(summary.frames) frames at \(summary.fps) fps into \(store)")
    }
}

struct DataExportHDF5Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export-hdf5", abstract: "Write a store's episodes as a robomimic / LIBERO-style HDF5 file (exact).")

    @Option(help: "Episode store directory.") var store: String
    @Option(help: "Output .hdf5 file.") var out: String
    @Option(help: "Only this embodiment.") var embodiment: String?
    @Option(help: "Only this task.") var task: String?
    @Option(help: "gzip level for camera frames (0: none).") var gzip: Int = 4

    func run() throws {
        let episodeStore = try openStore(store)
        guard (0...9).contains(gzip) else { throw ValidationError("--gzip must be 0…9") }
        let summary = try RobomimicHDF5.export(from: episodeStore, query: EpisodeQuery(task: task, embodiment: embodiment),
                                               to: URL(fileURLWithPath: out), gzipLevel: gzip)
        print("exported \(summary.episodes) episodes, \(summary.steps) steps into \(out)")
    }
}

struct DataImportHDF5Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "import-hdf5", abstract: "Read a robomimic / LIBERO-style HDF5 file into an episode store.")

    @Option(name: .customLong("from"), help: "HDF5 file (data/demo_<i> groups).") var source: String
    @Option(help: "Episode store directory (created if missing).") var store: String

    func run() throws {
        let (episodes, inserted) = try RobomimicHDF5.importFile(URL(fileURLWithPath: source), into: try EpisodeStore(root: URL(fileURLWithPath: store)))
        print("imported \(episodes) episodes (\(inserted) new, \(episodes - inserted) already stored) into \(store)")
    }
}
