import Foundation
import TensorKit
import VLAModel

/// Time of one action chunk (backbone pass + `samplingSteps` Euler steps of the action expert)
/// for one observation, as the policy server and actors pay it, with the fast kernels on or off.
public enum InferenceBenchmark {
    public struct Latency: Sendable {
        public var p50Milliseconds: Double
        public var p99Milliseconds: Double
    }

    /// Nearest-rank percentiles over `requests` chunks after 2 warm-up chunks.
    public static func chunkLatency(config: VLAConfig = VLAConfig(), requests: Int = 30, fastKernels: Bool, seed: UInt64 = 0) throws -> Latency {
        try FastKernels.withEnabled(fastKernels) {
            let model = try FlowMatchingVLA(config: config, key: RandomKey(seed: seed))
            let inputs = try DataParallelBenchmark.syntheticBatch(config: config, globalSize: 1, step: 0, seed: seed).inputs
            var times: [Double] = []
            for i in 0..<(requests + 2) {
                let start = DispatchTime.now()
                try eval([try model.sampleActions(inputs, key: RandomKey(seed: UInt64(i)))])
                if i >= 2 { times.append(Double(DispatchTime.now().uptimeNanoseconds - start.uptimeNanoseconds) / 1e6) }
            }
            times.sort()
            let rank = { (q: Double) in times[min(times.count - 1, max(0, Int((q * Double(times.count)).rounded(.up)) - 1))] }
            return Latency(p50Milliseconds: rank(0.5), p99Milliseconds: rank(0.99))
        }
    }
}
