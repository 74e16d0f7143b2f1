import ArgumentParser
import Dashboard
import Fleet
import Foundation
import RobotData
import RobotSim
import TensorKit
import Training
import VLAModel

/// `vla learner`: the fleet's learner (gRPC server, episode store, BC training, weight
/// publication) until interrupted.
struct LearnerCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "learner", abstract: "Run the fleet learner (gRPC) until interrupted.")

    @Option(help: "Address to bind.") var host = "127.0.0.1"
    @Option(help: "Port (0 = any free port, printed at start).") var port = 50051
    @Option(help: "Episode store directory.") var store = "runs/learner/store"
    @Option(help: "Write the learner's curves (loss, ω_on, per-task success and operator share, policy lag) as TensorBoard event files here.") var tensorboard: String?
    @Option(help: "Embodiment the policy is trained for.") var embodiment = "arm7"
    @Option(help: "Comma-separated tasks to serve.") var tasks = "reach"
    @Option(help: "Serve a body declared in an embodiment file (embodiments/*.yaml format) instead of --embodiment, with --tasks as free task names; trains the linear policy, or post-trains --checkpoint (pretrained on the body's episodes).")
    var embodimentFile: String?
    @Option(help: "Publish a new policy version every N train steps.") var publishEvery = 200
    @Option(help: "Save the training state (weights, optimizer, sampler) every N train steps.") var checkpointEvery = 200
    @Option(help: "Lock-step rounds for this many actors (started with --lockstep-episodes): wait for every actor's round, train --publish-every steps on it in a fixed order, publish; a run is then a function of its seeds (default: SOP's asynchronous loop).") var lockstepActors: Int?
    @Option(help: "Lock-step: episodes per actor per round.") var lockstepEpisodes = 1
    @Option(help: "Shared token actors must present (empty = none).") var token = ""
    @Option(help: "YAML map actor-id: token; each actor must present its own (re-read when the file changes: remove a line to revoke).") var actorTokens: String?
    @Option(help: "Serve over TLS: certificate chain (PEM); needs --tls-key.") var tlsCert: String?
    @Option(help: "Serve over TLS: private key (PEM).") var tlsKey: String?
    @Option(help: "Seed.") var seed: UInt64 = 0
    @Option(help: "Post-train this VLA checkpoint (default: a linear policy trained from scratch).") var checkpoint: String?
    @Option(help: "Episode store with the offline demos (e.g. runs/demo/pretrain/demos); needs --checkpoint.") var demos: String?
    @Option(help: "Offline demos per task at most.") var demosPerTask = 30
    @Option(help: "Post-training algorithm: hg-dagger or recap.") var algorithm = "hg-dagger"
    @Option(help: "Parameter prefixes frozen in post-training, comma separated (\"\" trains everything).") var postTrainingFrozen = PostTrainingSetup.languageBackbone.joined(separator: ",")
    @Option(help: "RECAP: value-head steps on the offline demos.") var recapValueSteps = 400
    @Option(help: "Post-training learning rate (constant; lower for a checkpoint trained to convergence).") var postTrainingLr: Float = TrainingSchedule.postTraining.learningRate
    @Flag(help: "RECAP: keep training the value head on the online episodes (default: frozen after the demos).") var recapContinuousValue = false
    @Option(help: "Serve the dashboard and Prometheus /metrics on this port (0 = any free port; default: none).") var dashboardPort: Int?
    @Option(help: "Address the dashboard binds (default: --host).") var dashboardHost: String?
    @Option(help: "Run as one rank of a data-parallel learner over MLX distributed: ring or mpi (start every rank with `mlx.launch`, or MLX_RANK/MLX_HOSTFILE); needs --checkpoint.")
    var dataParallel: String?
    @Option(help: "Data-parallel: HOST:PORT each rank serves actors on, comma separated in rank order (default: --host with --port + rank).")
    var rankEndpoints: String?
    @Option(help: "Data-parallel: seconds a train step's collectives may take before this rank gives up (a peer died) and exits with status 75.")
    var collectiveTimeout = 120.0
    @Flag(help: "Data-parallel: send gradients as bfloat16 (half the bytes; fp32 master weights).") var bf16Gradients = false

    func run() async throws {
        let stopSignal = StopSignal()
        let backend: any LearnerBackend, catalog: TaskCatalog, serving: String
        var dataParallelRanks: (ranks: LearnerRanks, port: Int)?
        if let embodimentFile {
            (catalog, backend, serving) = try declaredBody(URL(fileURLWithPath: embodimentFile))
        } else {
            guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
            let taskKinds = try tasks.split(separator: ",").map { name in
                guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
                return t
            }
            catalog = TaskCatalog(taskKinds.map { (e, $0) })
            serving = "\(e.rawValue): \(tasks)"
            if let checkpoint {
                var setup = try postTrainingSetup()
                let kind = setup.algorithm
                // Without a launcher's environment: a job of one rank (e.g. restarted on fewer machines).
                setup.dataParallel = try dataParallel.map { try DistributedGroup.initialize(backend: $0, strict: false) }
                setup.bfloat16Gradients = bf16Gradients
                let url = URL(fileURLWithPath: checkpoint)
                let imageSize = try VLAPolicy.load(from: url).policy.model.config.imageSize
                let offline = try demos.map {
                    try PostTrainingSetup.offlineDemos(store: URL(fileURLWithPath: $0), embodiment: e, tasks: taskKinds,
                                                       imageSize: imageSize, perTask: demosPerTask)
                } ?? []
                if kind == .recap && offline.isEmpty { throw ValidationError("--algorithm recap fits its value on offline demos: pass --demos STORE") }
                say("post-training \(checkpoint) with \(kind.rawValue) on \(offline.count) offline demos")
                backend = try setup.learnerBackend(checkpoint: url, offline: offline, log: say).backend
                if let group = setup.dataParallel {
                    let endpoints = rankEndpoints.map { list in
                        list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
                    } ?? (0..<group.size).map { "\(host):\(port + $0)" }
                    guard endpoints.count == group.size, let own = endpoints[group.rank].split(separator: ":").last.flatMap({ Int($0) }) else {
                        throw ValidationError("--rank-endpoints needs \(group.size) HOST:PORT entries, one per rank")
                    }
                    var ranks = LearnerRanks(group: group, ingestEndpoints: endpoints)
                    ranks.collectiveTimeout = collectiveTimeout
                    dataParallelRanks = (ranks, own)
                }
            } else {
                guard dataParallel == nil else { throw ValidationError("--data-parallel trains the VLA: pass --checkpoint") }
                backend = try BehaviorCloningBackend(embodiment: e.spec, seed: seed)
            }
        }
        var config = FleetLearnerConfig(storeDirectory: URL(fileURLWithPath: store))
        config.tensorBoardDirectory = tensorboard.map { URL(fileURLWithPath: $0) }
        config.host = host
        config.port = dataParallelRanks?.port ?? port
        config.ranks = dataParallelRanks?.ranks
        config.catalog = catalog
        config.publishEveryTrainSteps = publishEvery
        config.checkpointEveryTrainSteps = checkpointEvery
        config.minPublishInterval = 1
        if let lockstepActors {
            guard lockstepActors >= 1, lockstepEpisodes >= 1 else { throw ValidationError("--lockstep-actors and --lockstep-episodes must be at least 1") }
            guard config.ranks == nil else { throw ValidationError("lock-step rounds run on one learner: not with --data-parallel") }
            config.lockstep = LockstepRounds(actors: lockstepActors, episodesPerRound: lockstepEpisodes)
        }
        config.trainStepPause = 0.001
        config.authToken = token.isEmpty ? nil : token
        let tokenFile = actorTokens.map { URL(fileURLWithPath: $0) }
        var tokenFileDate = tokenFile.flatMap(modificationDate)
        if let tokenFile { config.credentials.actorTokens = try FleetCredentials.actorTokens(from: tokenFile) }
        config.tls = try tlsOption(cert: tlsCert, key: tlsKey)
        let learner = try FleetLearner(config: config, backend: backend)
        let bound = try await learner.start()
        let rankNote = config.ranks.map { " as rank \($0.rank) of \($0.size)" } ?? ""
        say("learner listening on \(host):\(bound)\(rankNote), store \(learner.store.root.path) (\(learner.store.count) episodes), serving \(serving)")
        let start = learner.metrics.snapshot()
        if start.restoredFromCheckpoint { say("resumed from checkpoint at train step \(start.trainSteps)") }
        var dashboard: DashboardServer?
        if let dashboardPort { dashboard = await DashboardServer.start(learner: learner, host: dashboardHost ?? host, port: dashboardPort, log: say) }
        var last = learner.metrics.snapshot()
        var lastReport = ContinuousClock.now
        while !Task.isCancelled && !stopSignal.received && !learner.hasStoppedTraining {
            try await Task.sleep(for: .milliseconds(200))
            guard ContinuousClock.now - lastReport >= .seconds(5) else { continue }
            lastReport = .now
            if let tokenFile, let date = modificationDate(tokenFile), date != tokenFileDate {
                tokenFileDate = date
                do {
                    let tokens = try FleetCredentials.actorTokens(from: tokenFile)
                    learner.updateCredentials(FleetCredentials(sharedToken: config.authToken, actorTokens: tokens))
                    say("actor tokens reloaded: \(tokens.count) actors")
                } catch {
                    say("actor tokens not reloaded (keeping the previous ones): \(error)")
                }
            }
            let m = learner.metrics.snapshot()
            let peers = config.ranks == nil ? "" : ", from other ranks \(m.peerEpisodesIngested)"
            say("episodes \(m.episodesAccepted) (+\(m.episodesAccepted - last.episodesAccepted))\(peers), dup \(m.episodesDuplicate), rejected \(m.episodesRejected) \(m.rejections), train steps \(m.trainSteps), loss \(m.lastLoss.map { String(format: "%.4f", $0) } ?? "-"), version \(m.latestVersion) (\(m.lastPublicationBytes) B, delta \(m.lastPublicationDeltaBytes) B, in \(String(format: "%.1f", m.lastPublicationSeconds * 1000)) ms)")
                last = m
        }
        if learner.hasStoppedTraining { say("another rank stopped the job") }
        await dashboard?.stop()
        await learner.stop()
        let m = learner.metrics.snapshot()
        say("stopped at train step \(m.trainSteps): \(m.episodesAccepted) episodes accepted\(config.ranks == nil ? "" : ", \(m.peerEpisodesIngested) read from other ranks")")
        if let group = config.ranks?.group, let vla = backend as? PostTrainingBackend {
            // The ranks' parameters must be identical: print a checksum to compare across ranks.
            let sum = try await vla.parameterChecksum()
            say(String(format: "rank %d parameter checksum %.9e", group.rank, sum))
        }
    }
}

extension LearnerCommand {
    /// `--algorithm`, `--post-training-frozen`, `--recap-value-steps`, `--seed` as a setup.
    func postTrainingSetup() throws -> PostTrainingSetup {
        guard let kind = PostTrainingSetup.Algorithm(rawValue: algorithm) else { throw ValidationError("--algorithm must be hg-dagger or recap") }
        var setup = PostTrainingSetup()
        setup.algorithm = kind
        setup.frozen = parameterPrefixes(postTrainingFrozen)
        setup.recapValueSteps = recapValueSteps
        setup.recapContinuousValue = recapContinuousValue
        guard postTrainingLr.isFinite, postTrainingLr > 0 else { throw ValidationError("--post-training-lr must be a positive number") }
        setup.schedule.learningRate = postTrainingLr
        setup.seed = seed
        return setup
    }

    /// `--embodiment-file`: a body with no RobotSim code and `--tasks` as free task names,
    /// served with the linear policy on its native layout, or with `--checkpoint` the VLA
    /// (offline demos: `--demos STORE`'s successful all-operator episodes of the body).
    func declaredBody(_ file: URL) throws -> (TaskCatalog, any LearnerBackend, String) {
        guard dataParallel == nil else { throw ValidationError("--embodiment-file serves one learner: no --data-parallel") }
        let declared = try EmbodimentFile.load(file)
        let spec = declared.spec
        let taskNames = tasks.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        var catalog = TaskCatalog(specs: [spec], tasks: [spec.name: taskNames])
        if let cameras = declared.cameras { catalog.cameras = [spec.name: cameras] }
        if let checkpoint {
            let setup = try postTrainingSetup()
            let kind = setup.algorithm
            let url = URL(fileURLWithPath: checkpoint)
            let imageSize = try VLAPolicy.load(from: url).policy.model.config.imageSize
            catalog.imageSide = imageSize
            let offline = try demos.map {
                try StoredDemos.load(store: URL(fileURLWithPath: $0), embodiment: spec.name, tasks: taskNames, imageSize: imageSize, perTask: demosPerTask)
            } ?? []
            if kind == .recap && offline.isEmpty { throw ValidationError("--algorithm recap fits its value on offline demos: pass --demos STORE") }
            say("post-training \(checkpoint) for \(spec.name) with \(kind.rawValue) on \(offline.count) offline demos")
            let backend = try setup.learnerBackend(checkpoint: url, offline: offline, declared: [spec], log: say).backend
            return (catalog, backend, "\(spec.name) from \(file.path) (VLA, \(imageSize)-pixel cameras): \(taskNames.joined(separator: ","))")
        }
        return (catalog, try BehaviorCloningBackend(embodiment: spec, seed: seed),
                "\(spec.name) from \(file.path): \(taskNames.joined(separator: ","))\(declared.cameras.map { " (cameras \($0.joined(separator: ",")))" } ?? "")")
    }
}

/// SIGINT / SIGTERM ask the learner to stop cleanly (checkpoint, and in a data-parallel job
/// every rank stops with it).
final class StopSignal: @unchecked Sendable {
    private var sources: [DispatchSourceSignal] = []
    private let flag = NSLock()
    private var value = false
    var received: Bool { flag.withLock { value } }

    init() {
        for sig in [SIGINT, SIGTERM] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { [weak self] in self?.flag.withLock { self?.value = true } }
            source.resume()
            sources.append(source)
        }
    }
}

/// `vla actor --learner HOST:PORT`: one simulated robot that runs the learner's policy,
/// with the scripted operator taking over when needed, and streams its episodes back.
struct ActorCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(commandName: "actor", abstract: "Run one fleet actor (a simulated robot) against a learner.")

    @Option(help: "Learner address HOST:PORT.") var learner: String
    @Option(help: "Actor id (unique per learner).") var id = "actor-\(ProcessInfo.processInfo.processIdentifier)"
    @Option(help: "Embodiment.") var embodiment = "arm7"
    @Option(help: "Comma-separated tasks this actor can run.") var tasks = "reach"
    @Option(help: "Episodes to run.") var episodes = 20
    @Option(help: "Camera image side in pixels (0 = no rendering).") var size = 64
    @Option(help: "Token for the learner.") var token = ""
    @Option(help: "Connect over TLS, trusting the certificates in this PEM file (the learner's CA or self-signed certificate).") var tlsCa: String?
    @Option(help: "Run this VLA checkpoint (the one the learner post-trains; default: the linear policy).") var checkpoint: String?
    @Option(help: "The learner's algorithm (recap adds the advantage token and samples toward \"positive\").") var algorithm = "hg-dagger"
    @Option(help: "RECAP: classifier-free guidance weight on this actor's rollouts.") var advantageGuidance = 1.0
    @Option(help: "JPM guidance strength (0: off; needs a checkpoint with a pointing head).") var jpmStrength = 0.0
    @Option(help: "JPM point source: predicted (the checkpoint's pointing head) or oracle (the simulator's target).") var jpmPoint = "predicted"
    @Flag(help: "JPM's carry on pick/place: after the grasp, guide the block up, over the mat and down (with --jpm-point predicted the checkpoint's place head: vla train pointing-head --head place).") var jpmCarry = false
    @Option(help: "OOD guard from the checkpoint's ood-guard.json: off, monitor or correct.") var oodGuard = "off"
    @Option(help: "Control steps per second of robot time (0: as fast as possible).") var controlRate = 0.0
    @Option(help: "Request the next chunk when this fraction of the current one remains (0: synchronous inference).") var prefetch = 0.0
    @Option(help: "Seed of the policy's sampling.") var seed: UInt64 = 0
    @Option(help: "Load new weights between episodes (episode: one version per episode, SOP's rule) or also before every chunk (chunk).") var weightSwap = "episode"
    @Option(help: "Where unacknowledged episodes wait beyond --max-in-memory (default runs/actors/<id>/unacked; \"\": memory only). Leftovers of a crashed actor are re-sent.") var spillDir: String?
    @Option(help: "Unacknowledged episodes kept in memory at most.") var maxInMemory = 16
    @Option(help: "Operator takes over when the policy's progress head (a checkpoint trained with --progress-weight) has not risen by --progress-stall-minimum over this many policy steps (0: off).") var progressStallWindow = 0
    @Option(help: "See --progress-stall-window.") var progressStallMinimum: Float = 0.05
    @Option(help: operatorApproachHelp) var operatorApproach = "direct"
    @Flag(help: seenScenesOnlyHelp) var seenScenesOnly = false
    @Option(help: "Lock-step fleet (a learner started with --lockstep-actors): after this many episodes with one version, wait for the next before going on.") var lockstepEpisodes: Int?

    func run() async throws {
        let (learnerHost, port) = try hostAndPort(learner, option: "--learner")
        guard let e = EmbodimentKind(rawValue: embodiment) else { throw ValidationError("unknown embodiment \(embodiment)") }
        let taskKinds = try tasks.split(separator: ",").map { name in
            guard let t = TaskKind(rawValue: String(name)) else { throw ValidationError("unknown task \(name)") }
            return t
        }
        var config = FleetActorConfig(actorID: id, learnerPort: port, embodiment: e, tasks: taskKinds)
        config.learnerHost = learnerHost
        config.episodes = episodes
        config.authToken = token
        config.tlsTrustRoots = tlsCa
        config.environment = EnvironmentConfig(imageWidth: max(size, 1), imageHeight: max(size, 1), renderImages: size > 0)
        guard let swap = WeightSwap(rawValue: weightSwap) else { throw ValidationError("--weight-swap must be episode or chunk") }
        config.weightSwap = swap
        let spill = spillDir ?? "runs/actors/\(id)/unacked"
        config.spillDirectory = spill.isEmpty ? nil : URL(fileURLWithPath: spill)
        config.maxEpisodesInMemory = max(1, maxInMemory)
        config.gate.progressStallWindow = max(0, progressStallWindow)
        config.gate.progressStallMinimum = progressStallMinimum
        config.operatorApproach = try parseOperatorApproach(operatorApproach)
        if seenScenesOnly { config.sceneSplit = .standard }
        if let lockstepEpisodes {
            guard lockstepEpisodes >= 1 else { throw ValidationError("--lockstep-episodes must be at least 1") }
            config.lockstepEpisodesPerVersion = lockstepEpisodes
        }
        if controlRate > 0 { config.controlRate = controlRate }
        if prefetch > 0 { config.inference = .asynchronous(prefetchFraction: prefetch) }
        let policy: any ActorPolicy
        var vlaPolicy: VLAActorPolicy?
        if let checkpoint {
            guard let kind = PostTrainingSetup.Algorithm(rawValue: algorithm) else { throw ValidationError("--algorithm must be hg-dagger or recap") }
            var setup = PostTrainingSetup()
            setup.algorithm = kind
            setup.recapFleetGuidance = advantageGuidance
            let vla = try setup.actorPolicy(checkpoint: URL(fileURLWithPath: checkpoint))
            guard size == vla.model.config.imageSize else { throw ValidationError("--size must be the checkpoint's image size \(vla.model.config.imageSize)") }
            guard let point = JointPredictionModule.PointSource(rawValue: jpmPoint) else { throw ValidationError("--jpm-point must be predicted or oracle") }
            if jpmCarry {
                guard jpmStrength > 0 else { throw ValidationError("--jpm-carry needs --jpm-strength > 0") }
                guard point == .oracle || vla.model.placePointingHead != nil else {
                    throw ValidationError("--jpm-carry with the predicted point needs a place head (vla train pointing-head --head place --checkpoint \(checkpoint)) or --jpm-point oracle")
                }
            }
            let jpm = jpmStrength > 0
                ? JointPredictionModule(strength: jpmStrength, pointSource: point, carry: jpmCarry ? CarryGuidance() : nil) : nil
            guard let mode = OODGuardMode(rawValue: oodGuard) else { throw ValidationError("--ood-guard must be off, monitor or correct") }
            var ood: PolicyEvaluator.OODSettings?
            if mode != .off {
                let file = OODGuard.url(inCheckpoint: URL(fileURLWithPath: checkpoint))
                guard FileManager.default.fileExists(atPath: file.path) else { throw ValidationError("--ood-guard needs \(file.path) (written by `vla train bc`)") }
                ood = .init(guardModel: try OODGuard.read(file), mode: mode)
            }
            let actorPolicy = VLAActorPolicy(policy: vla, embodiment: e.spec, seed: seed, jpm: jpm, ood: ood)
            vlaPolicy = actorPolicy
            policy = actorPolicy
        } else {
            policy = try LinearPolicy(embodiment: e.spec, seed: 0)
        }
        let actor = FleetActor(config: config, policy: policy)
        let report = try await actor.run()
        for (i, ep) in report.episodes.enumerated() {
            say("episode \(i): \(ep.task) v\(ep.policyVersion) (lag \(ep.policyLag)) \(ep.steps) steps, operator \(ep.operatorSteps), \(ep.success ? "success" : "failure")")
        }
        if let c = vlaPolicy?.oodCounts, vlaPolicy?.ood != nil {
            say("OOD guard: \(c.outOfDistributionDecisions) of \(c.decisions) chunks planned from out-of-distribution states, \(c.correctedChunks) corrected, \(c.recoveredStates) recovered")
        }
        say("acked \(report.acked) (dup \(report.duplicates)), rejected \(report.rejected), unacked \(report.unacked), spilled to disk \(report.spilled), versions loaded \(report.versionsLoaded), \(String(format: "%.1f", report.seconds)) s")
    }
}

/// A `HOST:PORT` option's parts.
func hostAndPort(_ address: String, option: String) throws -> (host: String, port: Int) {
    let parts = address.split(separator: ":")
    guard parts.count == 2, let port = Int(parts[1]) else { throw ValidationError("\(option) must be HOST:PORT") }
    return (String(parts[0]), port)
}

let seenScenesOnlyHelp: ArgumentHelp = "Only seen scenes of SceneSplit.standard (no purple target, no target at x ≥ 0.52 m and y ≥ 0.08 m) for demos, L1 pointing scenes, grounding questions (none names a held-out colour or object) and fleet episodes, so `vla eval --scenes novel-color|novel-position` measures scenes nothing trained on."

let operatorApproachHelp: ArgumentHelp = "The operator's path when it takes over: direct (straight at the target from where the policy stalled) or from-above (the demos' phase machine: lift, move over, descend)."

/// `--operator-approach`: from-above or direct.
func parseOperatorApproach(_ name: String) throws -> OperatorProfile.Approach {
    guard let approach = OperatorProfile.Approach(rawValue: name) else {
        throw ValidationError("--operator-approach must be one of: \(OperatorProfile.Approach.allCases.map(\.rawValue).joined(separator: ", "))")
    }
    return approach
}

/// `--post-training-frozen`'s comma-separated parameter prefixes ("" = none).
func parameterPrefixes(_ list: String) -> [String] {
    list.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
}

/// `--tls-cert` / `--tls-key`: both (TLS) or neither (plaintext).
func tlsOption(cert: String?, key: String?) throws -> FleetTLS? {
    switch (cert, key) {
    case let (cert?, key?): return FleetTLS(certificateChain: cert, privateKey: key)
    case (nil, nil): return nil
    default: throw ValidationError("--tls-cert and --tls-key go together")
    }
}

/// Prints a line unbuffered, so a learner's progress shows up at once in logs and pipes.
private func modificationDate(_ url: URL) -> Date? {
    (try? FileManager.default.attributesOfItem(atPath: url.path))?[.modificationDate] as? Date
}

private func say(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
