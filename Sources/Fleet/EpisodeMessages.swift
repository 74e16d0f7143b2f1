import Foundation
import RobotData

/// Episode → the messages of one `UploadEpisode` call: header, step chunks, end.
public enum EpisodeMessages {
    public typealias Request = Swiftvla_Fleet_V1_UploadEpisodeRequest

    public static func encode(_ episode: Episode, actorID: String, stepsPerChunk: Int = 16) -> [Request] {
        let cameraNames = episode.cameras.keys.sorted()
        var header = Swiftvla_Fleet_V1_EpisodeHeader()
        header.episodeID = episode.id.uuidString
        header.actorID = actorID
        header.embodiment = episode.embodiment
        header.task = episode.task
        header.instruction = episode.instruction
        header.policyVersion = Int64(episode.policyVersion)
        header.cameras = cameraNames.map { name in
            var c = Swiftvla_Fleet_V1_CameraSpec()
            c.name = name
            c.height = UInt32(episode.cameras[name]!.height)
            c.width = UInt32(episode.cameras[name]!.width)
            return c
        }
        header.stateDim = UInt32(episode.states.columns)
        header.actionDim = UInt32(episode.nativeActions.columns)
        if let seed = episode.seed { header.seedKnown = true; header.seed = seed }

        var messages = [Request.with { $0.kind = .header(header) }]
        let t = episode.stepCount
        var start = 0
        while start < t {
            let end = min(t, start + max(1, stepsPerChunk))
            var chunk = Swiftvla_Fleet_V1_StepChunk()
            chunk.firstStep = UInt32(start)
            chunk.steps = (start..<end).map { i in
                var s = Swiftvla_Fleet_V1_Step()
                s.frames = cameraNames.map { Data(episode.cameras[$0]!.frame(i)) }
                s.state = Array(episode.states.row(i))
                s.nativeAction = Array(episode.nativeActions.row(i))
                s.unifiedAction = Array(episode.unifiedActions.row(i))
                s.reward = episode.rewards[i]
                s.done = episode.dones[i]
                s.source = wire(episode.sources[i])
                s.timestamp = episode.timestamps[i]
                s.policyVersion = Int64(episode.stepPolicyVersions?[i] ?? 0)
                return s
            }
            messages.append(Request.with { $0.kind = .chunk(chunk) })
            start = end
        }
        var finish = Swiftvla_Fleet_V1_EpisodeEnd()
        finish.success = episode.success
        finish.stepCount = UInt32(t)
        messages.append(Request.with { $0.kind = .end(finish) })
        return messages
    }

    public static func wire(_ source: StepSource) -> Swiftvla_Fleet_V1_StepSource {
        switch source {
        case .policy: .policy
        case .operator: .operator
        case .demo: .demo
        }
    }

    public static func source(_ wire: Swiftvla_Fleet_V1_StepSource) -> StepSource? {
        switch wire {
        case .policy: .policy
        case .operator: .operator
        case .demo: .demo
        default: nil
        }
    }

    /// Approximate serialized size, cheap to compute (frames dominate).
    public static func approximateBytes(_ request: Request) -> Int {
        switch request.kind {
        case .header(let h):
            return 64 + h.episodeID.utf8.count + h.actorID.utf8.count + h.embodiment.utf8.count
                + h.task.utf8.count + h.instruction.utf8.count + h.cameras.reduce(0) { $0 + 16 + $1.name.utf8.count }
        case .chunk(let c):
            return 8 + c.steps.reduce(0) { total, s in
                total + 32 + s.frames.reduce(0) { $0 + 4 + $1.count }
                    + 4 * (s.state.count + s.nativeAction.count + s.unifiedAction.count)
            }
        case .end: return 8
        case nil: return 0
        }
    }
}
