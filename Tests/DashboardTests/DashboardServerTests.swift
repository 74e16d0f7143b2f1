import Foundation
#if canImport(FoundationNetworking)
import FoundationNetworking
#endif
import RobotSim
import Testing
import TestSupport
@testable import Dashboard
@testable import Fleet

/// A learner with two simulated actors, its dashboard loaded in headless Chromium (Debian's
/// `chromium`, installed by `scripts/bootstrap`): the rendered page, `/metrics` and an
/// episode GIF carry the numbers the actors themselves reported.
@Suite(.serialized, .timeLimit(.minutes(5)))
struct DashboardServerTests {
    static func get(_ url: URL) async throws -> (status: Int, body: Data) {
        let (data, response) = try await URLSession.shared.data(from: url)
        return ((response as? HTTPURLResponse)?.statusCode ?? -1, data)
    }

    static func chromium() -> URL? {
        ["/usr/bin/chromium", "/usr/bin/chromium-browser", "/usr/bin/google-chrome"].map(URL.init(fileURLWithPath:))
            .first { FileManager.default.isExecutableFile(atPath: $0.path) }
    }

    /// `data-metric` cells of a DOM dump: name → text.
    static func metrics(inDOM dom: String) throws -> [String: String] {
        let regex = try NSRegularExpression(pattern: "data-metric=\"([^\"]+)\"[^>]*>([^<]*)<")
        var out: [String: String] = [:]
        for m in regex.matches(in: dom, range: NSRange(dom.startIndex..., in: dom)) {
            out[String(dom[Range(m.range(at: 1), in: dom)!])] = String(dom[Range(m.range(at: 2), in: dom)!])
        }
        return out
    }

    @Test func chromiumRendersTheFleetTableMetricsAndEpisodeClips() async throws {
        let browser = try #require(Self.chromium(), "no Chromium: run scripts/bootstrap (it installs Debian's chromium)")
        var config = FleetLearnerConfig(storeDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-\(UUID().uuidString)"))
        config.catalog = TaskCatalog([(.arm7, .reach)])
        config.publishEveryTrainSteps = 10
        config.minPublishInterval = 0.2
        config.trainStepPause = 0.002
        let learner = try FleetLearner(config: config, backend: try BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 1, batchSize: 32))
        defer { try? FileManager.default.removeItem(at: config.storeDirectory) }
        let learnerPort = try await learner.start()
        let dashboard = DashboardServer(learner: learner)
        let port = try await dashboard.start()

        func actorConfig(_ id: String) -> FleetActorConfig {
            var c = FleetActorConfig(actorID: id, learnerPort: learnerPort, embodiment: .arm7, tasks: [.reach])
            c.episodes = 3
            var env = EnvironmentConfig(imageWidth: 24, imageHeight: 24)
            env.stepLimit = 30
            c.environment = env
            c.gate.policyStepBudget = 12
            c.gate.handBackAfter = 6
            c.stepsPerChunk = 8
            c.heartbeatInterval = 0.05
            return c
        }
        async let first = FleetActor(config: actorConfig("actor-1"), policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9)).run()
        async let second = FleetActor(config: actorConfig("actor-2"), policy: try LinearPolicy(embodiment: EmbodimentKind.arm7.spec, seed: 9)).run()
        let reports = try await ["actor-1": first, "actor-2": second]
        // Stopped, the learner's figures hold still while the page is read.
        await learner.stop()

        let base = "http://127.0.0.1:\(port)"
        let dump = try await ChildProcess.run(browser, ["--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", base + "/"], timeout: 90)
        try #require(dump.status == 0 && dump.stdout.contains("SwiftVLA learner"), "chromium: \(dump.stderr.suffix(2000))")
        let cells = try Self.metrics(inDOM: dump.stdout)
        let m = learner.metrics.snapshot()
        let total = reports.values.reduce(0) { $0 + $1.episodes.count }
        #expect(cells["episodes-accepted"] == "\(total)" && m.episodesAccepted == total)
        #expect(cells["train-steps"] == "\(m.trainSteps)" && cells["policy-version"] == "\(learner.latestVersion)")
        for (id, report) in reports {
            // The actor's own counts: episodes, operator share, successes.
            let steps = report.episodes.reduce(0) { $0 + $1.steps }, op = report.episodes.reduce(0) { $0 + $1.operatorSteps }
            #expect(cells["actor-\(id)-episodes"] == "\(report.episodes.count)")
            #expect(cells["actor-\(id)-intervention-rate"] == String(format: "%.1f%%", 100 * Double(op) / Double(steps)))
            let successes = report.episodes.filter(\.success).count
            #expect(cells["actor-\(id)-success-rate"] == String(format: "%.1f%%", 100 * Double(successes) / Double(report.episodes.count)))
            #expect(cells["actor-\(id)-policy-version"] != nil && cells["actor-\(id)-policy-lag"] != nil)
        }
        #expect(cells["task-arm7/reach-episodes"] == "\(total)")
        #expect(dump.stdout.components(separatedBy: "<svg").count - 1 >= 2)  // success + loss

        // Prometheus: the same counters.
        let metrics = try await Self.get(URL(string: base + "/metrics")!)
        let text = String(decoding: metrics.body, as: UTF8.self)
        #expect(metrics.status == 200)
        #expect(prometheusValue(text, "swiftvla_learner_episodes_accepted_total") == Double(total))
        #expect(prometheusValue(text, "swiftvla_learner_train_steps_total") == Double(m.trainSteps))
        #expect(prometheusValue(text, "swiftvla_actor_episodes_per_second", labels: ["actor": "actor-1"]).map { $0 > 0 } == true)

        // The newest episode's clip, as the page links it, decoded by Pillow: 24 px frames
        // upscaled 8× to 192, one frame per step up to 48.
        let newest = try #require(learner.history.snapshot().episodes.last)
        #expect(dump.stdout.contains("/episodes/\(newest.id.uuidString).gif"))
        let gif = try await Self.get(URL(string: base + "/episodes/\(newest.id.uuidString).gif")!)
        #expect(gif.status == 200 && gif.body.starts(with: Data("GIF89a".utf8)))
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("clip-\(UUID().uuidString).gif")
        try gif.body.write(to: file)
        defer { try? FileManager.default.removeItem(at: file) }
        let decoded = try await ChildProcess.run(ChildProcess.python, ["-c", "import sys; from PIL import Image; im = Image.open(sys.argv[1]); print(im.size[0], im.size[1], im.n_frames)", file.path], timeout: 60)
        #expect(decoded.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == "192 192 \(min(48, newest.steps))", "\(decoded.stderr)")
        #expect(try await Self.get(URL(string: base + "/episodes/\(UUID().uuidString).gif")!).status == 404)
        #expect(try await Self.get(URL(string: base + "/episodes/nonsense.png")!).status == 400)

        let status = try await Self.get(URL(string: base + "/api/status.json")!)
        let snapshot = try JSONDecoder().decode(DashboardSnapshot.self, from: status.body)
        #expect(snapshot.metrics.episodesAccepted == total && snapshot.actors.map(\.id) == ["actor-1", "actor-2"])
        #expect(dashboard.requests.current["page"] == 1)
        await dashboard.stop()
        await #expect(throws: (any Error).self) { _ = try await Self.get(URL(string: base + "/metrics")!) }
    }

    @Test func aTakenPortIsAClearError() async throws {
        var config = FleetLearnerConfig(storeDirectory: FileManager.default.temporaryDirectory.appendingPathComponent("dashboard-\(UUID().uuidString)"))
        config.catalog = TaskCatalog([(.arm7, .reach)])
        let learner = try FleetLearner(config: config, backend: try BehaviorCloningBackend(embodiment: EmbodimentKind.arm7.spec, seed: 1))
        defer { try? FileManager.default.removeItem(at: config.storeDirectory) }
        let first = DashboardServer(learner: learner)
        let port = try await first.start()
        let second = DashboardServer(learner: learner, port: port)
        await #expect(throws: DashboardError.couldNotBind(host: "127.0.0.1", port: port)) { try await second.start() }
        await first.stop()
    }
}
